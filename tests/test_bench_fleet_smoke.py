"""The rate-limit benchmark's smoke (``python -m benchmarks.fleet --smoke``) runs in CI so it cannot rot.

Every contestant this environment can run goes once over 3 tiny hashtags against a real sandbox
process: ours batched and the ceiling everywhere; ours mapped under a real scheduler where Airflow 3
runs a LocalExecutor; HttpOperator and dlt where installed (the bench environment). Each output is
read back and compared with the sandbox's truth per hashtag; a wrong or missing record fails the
run (exit 1) and this test. No timing is asserted: speed is the benchmark's business.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_provider_unifapi._compat import AIRFLOW_V_3
from benchmarks.fleet.__main__ import available
from benchmarks.fleet.config import CONTESTANTS, hashtag_id
from benchmarks.fleet.measure import check_output, delivered_ids

pytestmark = pytest.mark.airflow

REPO = Path(__file__).resolve().parents[1]


def test_fleet_smoke_every_runnable_contestant_delivers_the_truth(tmp_path: Path) -> None:
    work = tmp_path / "fleet"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.fleet", "--smoke", "--work", str(work)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    results = json.loads((work / "results.json").read_text())["results"]
    names, _skipped = available(list(CONTESTANTS))
    assert {"ours-batched", "ceiling"} <= set(names)
    assert AIRFLOW_V_3 is ("ours-mapped" in names), "the mapped run is skipped on 2.x only"
    assert [r["contestant"] for r in results] == names, "every runnable contestant ran, once"
    for r in results:
        assert r["state"] == "success" and r["correct"] is True, (
            r["contestant"],
            r["problem"],
            r["log_tail"],
        )
        assert r["n"] == 3 and r["unique"] == r["unique_truth"] > 0
        assert r["ok_calls"] > 0 and r["credits"] >= r["unique_truth"], r["contestant"]
        assert r["rss_mb"], "a peak RSS was sampled"
        if r["contestant"].startswith("ours"):  # ours dedupes: one row per unique record
            assert r["rows"] == r["unique"] and r["duplicates"] == 0
    ceiling = next(r for r in results if r["contestant"] == "ceiling")
    assert ceiling["calls_429"] == 0, "the ceiling paces itself under the limit"
    report = (work / "BENCHMARKS.md").read_text()
    assert "<!-- fleet:start" in report and "<!-- fleet:end -->" in report


def test_fleet_check_fails_on_a_missing_or_foreign_record(tmp_path: Path) -> None:
    """The output check is what makes the smoke fail: it must catch one record wrong."""
    ids = [hashtag_id(i) for i in range(2)]
    truth = {hid: [f"{hid}{k}" for k in range(5)] for hid in ids}
    for hid, records in truth.items():
        lines = [json.dumps({"id": r}) for r in records]
        (tmp_path / f"{hid}.jsonl").write_text("\n".join(lines + lines[:1]) + "\n")  # a repeat is fine
    assert delivered_ids("ceiling", tmp_path, ids)[ids[0]][-1] == truth[ids[0]][0]
    assert check_output("ceiling", tmp_path, truth)[0] is True
    missing = {**truth, ids[1]: [*truth[ids[1]], "999"]}
    correct, problem, _ = check_output("ceiling", tmp_path, missing)
    assert correct is False and problem is not None and "1 missing" in problem
    foreign = {**truth, ids[0]: truth[ids[0]][1:]}
    correct, problem, _ = check_output("ceiling", tmp_path, foreign)
    assert correct is False and problem is not None and "1 unknown" in problem
    correct, problem, _ = check_output("ours-batched", tmp_path, truth)
    assert correct is False and problem is not None and problem.startswith("unreadable output")
