"""The batches example DAG runs end to end against the sandbox: chunks, sensor, mapped batches."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from airflow_provider_unifapi.operators.hashtag_batch import chunk
from tests.conftest import REPO


def test_chunk_splits_in_order_and_refuses_a_bad_size():
    assert chunk(["a", "b", "c", "d", "e"], 2) == [["a", "b"], ["c", "d"], ["e"]]
    assert chunk([], 3) == []
    for bad in (0, -1, True, "2"):
        try:
            chunk([1], bad)
        except ValueError as exc:
            assert "size" in str(exc)
        else:
            raise AssertionError(f"chunk accepted size={bad!r}")


def test_example_batches_dag_runs_mapped_batches(unifapi_conn, dag_runner, tmp_path, monkeypatch):
    sb = unifapi_conn
    sb.reset(rate_limit_per_minute=1200, latency_ms=10)
    monkeypatch.setenv("UNIFAPI_OUTPUT_BASE", f"file://{tmp_path}/out")
    monkeypatch.setenv("UNIFAPI_HASHTAGS_PER_TASK", "2")
    monkeypatch.setenv("UNIFAPI_POOL", "default_pool")
    target = Path(dag_runner.folder) / "example_unifapi_batches.py"
    shutil.copy(REPO / "example_dags" / "example_unifapi_batches.py", target)
    result = dag_runner.run(target)
    assert result.state == "success", {k: result.ti_state(k) for k in result.tis}
    manifests = sorted((tmp_path / "out").glob("ds=*/batch=*/_batch_manifest.json"))
    assert len(manifests) == 2  # 4 hashtags in chunks of 2
    rows = [row for m in manifests for row in json.loads(m.read_text())["hashtags"]]
    assert sorted(r["hashtag_id"] for r in rows) == ["404040", "4242", "5050", "6021"]
    for row in rows:
        folder = Path(row["output_path"].removeprefix("file://"))
        assert (folder / "_manifest.json").exists()
        assert row["records"] == len(sb.truth(row["hashtag_id"]))
