"""The benchmark harness's smoke (``make bench-smoke``) runs in CI so the harness cannot rot.

It runs every contestant installed in this environment (the ceiling and ours always; HttpOperator
and dlt where installed) on a tiny hashtag, once, and checks what each delivered. No timing is
asserted anywhere: speed is the benchmark's business (BENCHMARKS.md), not the tests'.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from benchmarks.contestants import BY_NAME, select
from benchmarks.run import SMOKE_SIZES, smoke

pytestmark = pytest.mark.airflow


def test_bench_smoke_every_installed_contestant_delivers_the_truth(tmp_path: Path) -> None:
    chosen, _skipped = select()
    names = {c.name for c in chosen}
    assert {"ceiling", "ours-jsonl.gz"} <= names  # always installed in the test environments

    code = smoke(tmp_path / "run", airflow_home=Path(os.environ["AIRFLOW_HOME"]))

    results = json.loads((tmp_path / "run" / "results.json").read_text())
    samples = results["samples"]
    clean = [s for s in samples if s["kind"] == "clean"]
    assert sorted(s["contestant"] for s in clean) == sorted(names), "every installed contestant ran, once"
    nodup = {s["contestant"]: s for s in samples if s["kind"] == "nodup"}
    assert set(nodup) == names, "and once more on a feed without repeated records"
    size = SMOKE_SIZES[0]
    # Without repeats every record served is new: ours pays exactly one credit per record delivered.
    assert nodup["ours-jsonl.gz"]["credits"] == nodup["ours-jsonl.gz"]["unique"] == size
    for s in samples:
        assert s["ok"], f"{s['contestant']}: {s['problem']}"
        assert s["size"] == size and s["credits"] >= size
        contestant = BY_NAME[s["contestant"]]
        if contestant.dedupes:  # ours: exactly the truth, in order, nothing twice
            assert s["unique"] == size and s["duplicates"] == 0 and s["rows"] == size
        elif contestant.output != "none":  # peers: every unique id, plus the duplicates the API sent
            assert s["unique"] == size and s["rows"] == size + s["duplicates"]
        else:  # the ceiling parsed every record the sandbox served
            assert s["rows"] == s["records_served"]
        # The window reads the sandbox process's CPU too (the report's "where the machine's time goes").
        assert s["sandbox_cpu_s"] is not None and s["sandbox_cpu_s"] >= 0, s["contestant"]
    assert code == 0
    report = (tmp_path / "run" / "BENCHMARKS.md").read_text()
    assert report.startswith("# Benchmarks")
    assert "## Where the machine's time goes at 0 ms" in report
