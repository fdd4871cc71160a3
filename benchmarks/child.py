"""Entry point of a contestant's process: ``python -m benchmarks.child SPEC.json``.

Imports only the contestant's module, runs it, and exits non-zero when it did not produce a
successful :class:`~benchmarks.spec.RunResult` (the harness reads the result file either way).
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

from benchmarks.contestants import BY_NAME
from benchmarks.spec import CODE_PATH_ENV, RunResult, RunSpec
from benchmarks.window import proc_status_kb


def _check_measured_code() -> None:
    """Refuse to measure another copy of the provider than the snapshot the report names."""
    expected = os.environ.get(CODE_PATH_ENV)
    if not expected:
        return
    import airflow_provider_unifapi

    imported = Path(airflow_provider_unifapi.__file__).resolve()
    if not imported.is_relative_to(Path(expected).resolve()):
        raise SystemExit(f"benchmark child: imported {imported}, not the snapshot under {expected}")


def main(argv: list[str]) -> int:
    _check_measured_code()
    spec = RunSpec.load(argv[0])
    contestant = BY_NAME[spec.contestant]
    importlib.import_module(contestant.module).run(spec)
    path = Path(spec.result_path)
    if not path.exists():
        print(f"benchmark child: {spec.contestant} produced no result (did its task run?)", file=sys.stderr)
        return 3
    result = RunResult.load(path)
    # The high-water mark was reset as the window opened: it now covers the window and the task's
    # tear-down (XCom push, DAG run bookkeeping) -- the process's peak after start-up.
    result.final_hwm_kb = proc_status_kb("VmHWM")
    result.dump(path)
    if not result.ok:
        print(f"benchmark child: {spec.contestant} failed: {result.error}", file=sys.stderr)
        return 4
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
