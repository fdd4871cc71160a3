"""One contestant-day in a process of its own: ``python -m benchmarks.tracking.child CTX.json OUT.json``.

Imports only the contestant's module, runs its ``run_day``, and writes its :class:`DayResult` with
the process's peak RSS (``VmHWM``) to ``OUT.json``. Exit 0 when the day finished.

``python -m benchmarks.tracking.child --probe MODULE IDS WORKDIR OUT.json`` runs the module's
``index_probe(ids, workdir) -> dict`` instead (an index of ``IDS`` ids, built and used as the
contestant would), adding the process's peak RSS.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

from benchmarks.tracking.contestant import DayContext, load
from benchmarks.window import proc_status_kb


def probe(module_name: str, ids: int, workdir: str, out: str) -> int:
    started = time.monotonic()
    figures = dict(getattr(load(module_name), "index_probe")(ids, Path(workdir)))  # noqa: B009
    figures.update(run_s=round(time.monotonic() - started, 3), hwm_kb=proc_status_kb("VmHWM"))
    Path(out).write_text(json.dumps(figures))
    return 0


def main(argv: list[str]) -> int:
    if argv[0] == "--probe":
        return probe(argv[1], int(argv[2]), argv[3], argv[4])
    ctx = DayContext(**json.loads(Path(argv[0]).read_text()))
    module = load(ctx.module)
    started = time.monotonic()
    result = module.run_day(ctx)
    out = {**asdict(result), "run_s": round(time.monotonic() - started, 3), "hwm_kb": proc_status_kb("VmHWM")}
    Path(argv[1]).write_text(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
