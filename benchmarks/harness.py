"""Run contestants one at a time against the sandbox, measure, verify, and kill on demand (parent side).

Every run gets a process of its own (its peak RSS is its own: the child reads its kernel high-water
marks), a reset sandbox (so the ledger holds that run
only), and an emptied output folder. The sandbox and the contestant are the only busy processes:
the harness sleeps meanwhile (it polls ``waitpid`` every 50 ms).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from benchmarks import airflow_env
from benchmarks.contestants import Contestant
from benchmarks.sandbox import SandboxProcess, hashtag_id_for
from benchmarks.spec import CODE_PATH_ENV, SPEC_ENV, RunResult, RunSpec
from benchmarks.verify import check

REPO = Path(__file__).resolve().parents[1]
#: ``Sample.kind`` of the runs on a feed without repeated records (credits per unique record).
NODUP_KIND = "nodup"


@dataclass
class Sample:
    """One run of one contestant, as measured and checked."""

    contestant: str
    size: int
    latency_ms: float
    round: int
    kind: str  # clean | killed | restart | profile | nodup
    ok: bool = False
    problem: str | None = None
    exit_code: int | None = None
    wall_s: float = 0.0
    cpu_s: float = 0.0
    peak_rss_kb: int = 0  # the whole process: start-up, window and tear-down
    rss_start_kb: int = 0
    window_hwm_kb: int = 0
    rows: int = 0
    unique: int = 0
    duplicates: int = 0
    calls: int = 0
    credits: int = 0
    records_served: int = 0
    #: the sandbox was restarted before its ledger was read: calls and credits are unknown, not 0
    ledger_lost: bool = False
    killed_at_calls: int | None = None
    elapsed_process_s: float = 0.0
    #: CPU seconds the sandbox process spent in the window (serving this run's calls)
    sandbox_cpu_s: float | None = None
    profile: dict[str, Any] = field(default_factory=dict)
    log: str = ""

    @property
    def records_per_s(self) -> float:
        """Unique records of the hashtag per second of window: every contestant does the same job."""
        return self.size / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def job_rss_kb(self) -> int:
        """What the job added on top of the process as it stood when the window opened."""
        return max(self.window_hwm_kb - self.rss_start_kb, 0)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["records_per_s"] = self.records_per_s
        data["job_rss_kb"] = self.job_rss_kb
        return data


def child_env(
    base: dict[str, str], *, work: Path, run_dir: Path, code_path: Path | None, airflow_home: Path
) -> dict[str, str]:
    """Environment of every child (sandbox included): bytecode cache, import path, Airflow home."""
    env = dict(base)
    # Some shells here set PYTHONDONTWRITEBYTECODE: Airflow then recompiles ~2,000 modules (4 s) per
    # process. Cache bytecode under the work dir instead (never next to the sources).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    paths = ([str(code_path)] if code_path else []) + [str(REPO)]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    # `python -m` puts the working directory (the repo) first on sys.path, ahead of PYTHONPATH, which
    # would import the working tree's package instead of the snapshot being measured. PYTHONSAFEPATH
    # (Python 3.11+, like -P) leaves it out; the child checks what it imported (CODE_PATH_ENV).
    env["PYTHONSAFEPATH"] = "1"
    env.pop(CODE_PATH_ENV, None)
    if code_path:
        env[CODE_PATH_ENV] = str(code_path)
    env.update(airflow_env.airflow_env(airflow_home, run_dir / "dags"))
    env["RUNTIME__DLTHUB_TELEMETRY"] = "false"  # no network calls from dlt's usage telemetry
    # Inside an Airflow task dlt (1.x) by default looks every config key up as an Airflow Variable:
    # ~580 lookups per run, ~9 s through dag.test()'s in-process API here -- a cost of the deployment,
    # not of dlt's pipeline, and nothing here is configured through Variables. Off, in dlt's favour.
    env["PROVIDERS__ENABLE_AIRFLOW_SECRETS"] = "false"
    return env


class Harness:
    """Runs samples; owns the run directory and the sandbox handle."""

    def __init__(
        self,
        sandbox: SandboxProcess,
        env: dict[str, str],
        run_dir: Path,
        *,
        timeout_s: float,
        verbose: bool = True,
    ) -> None:
        self.sandbox = sandbox
        self.env = env
        self.run_dir = run_dir
        self.timeout_s = timeout_s
        self.verbose = verbose
        self.count = 0
        self.env["AIRFLOW_CONN_UNIFAPI_DEFAULT"] = json.dumps(
            {"conn_type": "unifapi", "host": sandbox.url, "password": "x", "extra": {"timeout": 60}}
        )
        self.env["AIRFLOW_CONN_UNIFAPI_HTTP"] = json.dumps({"conn_type": "http", "host": sandbox.url})

    def say(self, text: str) -> None:
        if self.verbose:
            print(text, file=sys.stderr, flush=True)

    def _dirs(self, c: Contestant, size: int) -> tuple[Path, Path]:
        return self.run_dir / "out" / f"{c.name}-{size}", self.run_dir / "state" / f"{c.name}-{size}"

    def run(
        self,
        c: Contestant,
        size: int,
        latency_ms: float,
        round_no: int,
        *,
        kind: str = "clean",
        reset: bool = True,
        fresh: bool = True,
        kill_at_calls: int | None = None,
        profile: bool = False,
        sandbox_settings: dict[str, Any] | None = None,
    ) -> Sample:
        """One run of ``c``; ``kill_at_calls`` SIGKILLs it once the ledger shows that many calls.

        ``sandbox_settings`` change the sandbox for this run only (the next reset drops them).
        """
        from benchmarks.spec import API_KEY

        self.count += 1
        out, state = self._dirs(c, size)
        if fresh:
            for folder in (out, state):
                shutil.rmtree(folder, ignore_errors=True)
        out.mkdir(parents=True, exist_ok=True)
        state.mkdir(parents=True, exist_ok=True)
        if reset:
            self.sandbox.reset(latency_ms, **(sandbox_settings or {}))
        tag = f"{self.count:04d}-{c.name}-{size}-{int(latency_ms)}ms-{kind}"
        result_path = self.run_dir / "results" / f"{tag}.json"
        result_path.parent.mkdir(parents=True, exist_ok=True)
        spec = RunSpec(
            contestant=c.name,
            base_url=self.sandbox.url,
            hashtag_id=hashtag_id_for(size),
            size=size,
            out_dir=str(out),
            result_path=str(result_path),
            state_dir=str(state),
            api_key=API_KEY,
            option=c.option,
            dag_id="bench_" + c.name.replace("-", "_").replace(".", "_"),
            profile=profile,
            sandbox_pid=self.sandbox.pid,
        )
        spec_path = self.run_dir / "specs" / f"{tag}.json"
        spec_path.parent.mkdir(parents=True, exist_ok=True)
        spec.dump(spec_path)
        log_path = self.run_dir / "logs" / f"{tag}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        sample = Sample(c.name, size, latency_ms, round_no, kind, log=str(log_path))
        env = dict(self.env)
        env[SPEC_ENV] = str(spec_path)
        # A DAGs folder per contestant: dag.test() parses the whole folder, and must find this DAG only.
        env["AIRFLOW__CORE__DAGS_FOLDER"] = str(self.run_dir / "dags" / c.name)
        started = time.monotonic()
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "benchmarks.child", str(spec_path)],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        status, killed_at = self._wait(proc, started, kill_at_calls)
        sample.elapsed_process_s = time.monotonic() - started
        sample.exit_code = os.waitstatus_to_exitcode(status)
        sample.killed_at_calls = killed_at
        try:
            totals = self.sandbox.totals()
        except httpx.TimeoutException:
            # A safety net: before the sandbox capped its open connections, HttpOperator's 1M run (a
            # socket per page, ~20k) left it unable to answer. Start a fresh one for the runs that
            # follow; this run's ledger figures are lost with it.
            self.sandbox.restart()
            sample.ledger_lost = True
            sample.problem = "the sandbox stopped answering after this run (restarted); " + _tail(log_path)
            return self._done(sample)
        sample.calls = int(totals["calls"])
        sample.credits = int(totals["credits_charged"])
        sample.records_served = int(totals["records_served"])
        result = RunResult.load(result_path) if result_path.exists() else None
        if result is not None:
            # Not wait4's ru_maxrss: Linux carries the parent's RSS across fork+exec into it, so a child
            # of a harness holding 1M truth ids would "peak" at the harness's size. The child's own
            # high-water marks (start-up, then window to exit) are exact.
            sample.peak_rss_kb = max(result.startup_hwm_kb, result.final_hwm_kb, result.window_hwm_kb)
            sample.wall_s, sample.cpu_s = result.wall_s, result.cpu_s
            sample.rss_start_kb, sample.window_hwm_kb = result.rss_start_kb, result.window_hwm_kb
            sample.rows = result.records
            sample.sandbox_cpu_s = result.sandbox_cpu_s
            sample.profile = result.profile
        if kill_at_calls is not None:
            sample.ok = killed_at is not None
            if not sample.ok:
                sample.problem = f"finished before the ledger showed {kill_at_calls} calls: not killed"
            return self._done(sample)
        if sample.exit_code != 0 or result is None or not result.ok:
            sample.problem = (result.error if result and result.error else None) or (
                f"exit code {sample.exit_code}; last log lines:\n" + _tail(log_path)
            )
            return self._done(sample)
        self._verify(c, sample, out, result)
        return self._done(sample)

    def _verify(self, c: Contestant, sample: Sample, out: Path, result: RunResult) -> None:
        truth = self.sandbox.truth(sample.size)
        if c.output == "none":
            # The ceiling keeps nothing: it must have parsed every record the sandbox served.
            sample.unique = 0
            sample.ok = result.records == sample.records_served and sample.records_served >= len(truth)
            if not sample.ok:
                sample.problem = (
                    f"parsed {result.records} records, the sandbox served {sample.records_served}"
                )
            return
        delivery = check(c.output, out, truth, dedupes=c.dedupes, ordered=c.output != "dlt")
        sample.rows, sample.unique, sample.duplicates = delivery.rows, delivery.unique, delivery.duplicates
        sample.ok = delivery.correct
        sample.problem = delivery.problem

    def _wait(
        self, proc: subprocess.Popen[bytes], started: float, kill_at_calls: int | None
    ) -> tuple[int, int | None]:
        """Wait for the child; poll the ledger meanwhile when a kill is due."""
        killed_at: int | None = None
        while True:
            pid, status = os.waitpid(proc.pid, os.WNOHANG)
            if pid:
                proc.returncode = os.waitstatus_to_exitcode(status)  # Popen must not wait again
                _kill_group(proc.pid)  # anything the child left behind
                return status, killed_at
            if kill_at_calls is not None and killed_at is None:
                calls = int(self.sandbox.totals()["calls"])
                if calls >= kill_at_calls:
                    _kill_group(proc.pid)
                    killed_at = calls
                time.sleep(0.005)
                continue
            if time.monotonic() - started > self.timeout_s:
                self.say(f"  timeout after {self.timeout_s:.0f} s: killing pid {proc.pid}")
                _kill_group(proc.pid)
            time.sleep(0.05)

    def _done(self, sample: Sample) -> Sample:
        if sample.kind == "killed":
            what = (
                f"killed at {sample.killed_at_calls} calls" if sample.ok else f"NOT KILLED: {sample.problem}"
            )
        elif sample.ok:
            what = (
                f"{sample.records_per_s:10,.0f} rec/s  wall {sample.wall_s:7.2f} s  "
                f"cpu {sample.cpu_s:7.2f} s  "
                f"peak {sample.peak_rss_kb / 1024:7.1f} MB  job {sample.job_rss_kb / 1024:7.1f} MB  "
                f"credits {sample.credits}"
            )
        else:
            what = f"FAILED: {sample.problem}"
        self.say(
            f"  [{sample.kind:7}] {sample.contestant:14} {sample.size:>9,} @ {sample.latency_ms:g} ms "
            f"r{sample.round}: {what}"
        )
        return sample


def git(*args: str) -> str:
    """``git`` in the repository, its output stripped; ``""`` when git or the repository is missing."""
    try:
        return subprocess.run(
            ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def run_meta(scenario: dict[str, Any], skipped: dict[str, str]) -> dict[str, Any]:
    """What a benchmark's results record about the run: scenario, code, time, machine."""
    return {
        "scenario": scenario,
        "commit": git("rev-parse", "--short=12", "HEAD"),
        "dirty": bool(git("status", "--porcelain", "--", "airflow_provider_unifapi")),
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "skipped": skipped,
    }


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def failure_reason(problem: str | None, log: str | None = None) -> str:
    """One line for a failure: the root ``SomeError: message`` of its log when there is one.

    Among the exception lines of the log, one naming an OS error (``[Errno ...]``) wins, shortest
    first (chained tracebacks repeat it with more decoration); else the last exception line.
    """
    lines: list[str] = []
    if log:
        try:
            lines = Path(log).read_text(errors="replace").splitlines()
        except OSError:
            lines = []
    lines += (problem or "").splitlines()
    errors = []
    for line in (raw.strip() for raw in lines):
        head = line.split(":", 1)[0]
        if head.endswith(("Error", "Exception")) and " " not in head and 0 < len(line) < 400:
            errors.append(line)
    with_errno = [line for line in errors if "[Errno" in line]
    if with_errno:
        return min(with_errno, key=len)
    if errors:
        return errors[-1]
    first = (problem or "unknown").strip().splitlines()
    return first[0][:300] if first else "unknown"


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class KillOutcome:
    """A run SIGKILLed once the ledger showed half a clean run's pages, then restarted its own way."""

    contestant: str
    size: int
    latency_ms: float
    clean_credits: int
    clean_calls: int
    killed_at_calls: int | None
    killed_credits: int
    total_credits: int
    correct_after_restart: bool
    duplicates_after_restart: int
    problem: str | None = None

    @property
    def respent(self) -> int:
        return self.total_credits - self.clean_credits


def kill_test(h: Harness, c: Contestant, size: int, latency_ms: float, clean: Sample) -> KillOutcome:
    """Kill at 50% of a clean run's calls, restart (same folder/state), and count credits re-spent."""
    half = max(1, (clean.calls + 1) // 2)
    killed = h.run(c, size, latency_ms, 0, kind="killed", kill_at_calls=half)
    outcome = KillOutcome(
        c.name,
        size,
        latency_ms,
        clean.credits,
        clean.calls,
        killed.killed_at_calls,
        killed.credits,
        0,
        False,
        0,
    )
    if not killed.ok:
        outcome.problem = killed.problem
        outcome.total_credits = killed.credits
        return outcome
    # The restart keeps the ledger (no reset) and the output folder / tool state (not fresh).
    restart = h.run(c, size, latency_ms, 0, kind="restart", reset=False, fresh=False)
    outcome.total_credits = restart.credits
    outcome.correct_after_restart = restart.ok
    outcome.duplicates_after_restart = restart.duplicates
    outcome.problem = restart.problem
    return outcome
