"""The measured window, opened by each contestant around the job itself (child side).

Wall time is ``perf_counter``; CPU is user+system of the process (all threads) and of any child
process it waited for; memory uses Linux's per-process high-water mark, which is reset when the
window opens (``/proc/self/clear_refs`` ``5``) so the window's own peak is known, after the peak of
start-up is read.
"""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path
from types import TracebackType

from benchmarks.spec import RunResult, RunSpec


def proc_status_kb(field: str) -> int:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``), 0 where there is no procfs."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def reset_peak_rss() -> bool:
    """Reset this process's RSS high-water mark (Linux >= 4.0); False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of another process (all its threads), ``None`` where unreadable."""
    if pid <= 0:
        return None
    try:
        # After the command name's closing parenthesis, utime and stime are the 12th and 13th fields.
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


class Window:
    """``with Window(spec) as w: ...; w.records = n`` -- writes the :class:`RunResult` on exit."""

    def __init__(self, spec: RunSpec) -> None:
        self.spec = spec
        self.result = RunResult()
        self.records = 0
        self.pages = 0
        self._t0 = 0.0
        self._cpu0 = 0.0
        self._sandbox_cpu0: float | None = None

    def __enter__(self) -> Window:
        r = self.result
        r.startup_hwm_kb = proc_status_kb("VmHWM")
        r.hwm_reset = reset_peak_rss()
        r.rss_start_kb = proc_status_kb("VmRSS")
        self._sandbox_cpu0 = process_cpu_seconds(self.spec.sandbox_pid)
        self._cpu0 = cpu_seconds()
        self._t0 = time.perf_counter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        r = self.result
        r.wall_s = time.perf_counter() - self._t0
        r.cpu_s = cpu_seconds() - self._cpu0
        sandbox_cpu = process_cpu_seconds(self.spec.sandbox_pid)
        if sandbox_cpu is not None and self._sandbox_cpu0 is not None:
            r.sandbox_cpu_s = sandbox_cpu - self._sandbox_cpu0
        r.window_hwm_kb = proc_status_kb("VmHWM")
        r.records = self.records
        r.pages = self.pages
        r.ok = exc_type is None
        if exc is not None:
            r.error = f"{type(exc).__name__}: {exc}"[:2000]
        r.dump(self.spec.result_path)
