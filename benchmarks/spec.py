"""What the harness hands a contestant's process (``RunSpec``) and what comes back (``RunResult``).

Both travel as JSON files so the child process imports nothing of the harness it does not need.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

PAGE_SIZE = 50
#: Any Bearer key works against the sandbox; this one is obviously fake.
API_KEY = "bench-key-not-a-secret"
#: Environment variable carrying the path of the spec file into the child (and its DAG file).
SPEC_ENV = "UNIFAPI_BENCH_SPEC"
#: The snapshot of the provider a run measures (unset: the working tree); the child checks its import.
CODE_PATH_ENV = "UNIFAPI_BENCH_CODE_PATH"


@dataclass
class RunSpec:
    """One run of one contestant."""

    contestant: str
    base_url: str
    hashtag_id: str
    size: int
    out_dir: str
    result_path: str
    state_dir: str  # tool state that survives a restart (dlt's pipelines dir)
    page_size: int = PAGE_SIZE
    api_key: str = API_KEY
    option: str = ""  # contestant variant, e.g. the output format of ours
    dag_id: str = ""
    profile: bool = False
    sandbox_pid: int = 0  # the window also reads the sandbox process's CPU (same machine)

    def dump(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, path: str | Path) -> RunSpec:
        return cls(**json.loads(Path(path).read_text()))


@dataclass
class RunResult:
    """What one child measured inside its window (the job only: no interpreter or Airflow start-up)."""

    ok: bool = False
    wall_s: float = 0.0
    cpu_s: float = 0.0
    records: int = 0  # as the contestant reports them (rows written, or records parsed for the ceiling)
    pages: int = 0
    rss_start_kb: int = 0  # RSS when the window opened (interpreter + imports + Airflow)
    window_hwm_kb: int = 0  # peak RSS inside the window (the high-water mark is reset as it opens)
    startup_hwm_kb: int = 0  # peak RSS before the window (start-up)
    final_hwm_kb: int = 0  # peak RSS from the window's start to the process's end (read by benchmarks.child)
    hwm_reset: bool = False
    sandbox_cpu_s: float | None = None  # CPU of the sandbox process during the window
    error: str | None = None
    profile: dict[str, Any] = field(default_factory=dict)

    def dump(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, path: str | Path) -> RunResult:
        return cls(**json.loads(Path(path).read_text()))
