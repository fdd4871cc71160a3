"""The example DAGs parse on this Airflow, and the main one runs end to end against the sandbox."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO

EXAMPLES = sorted((REPO / "example_dags").glob("example_*.py"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_dag_parses(path, monkeypatch):
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"parse_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dags = [v for v in vars(module).values() if type(v).__name__ in ("DAG", "SerializedDAG")]
    assert dags and all(d.task_ids for d in dags)


def test_example_dag_runs_end_to_end(unifapi_conn, dag_runner, tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("UNIFAPI_OUTPUT_BASE", f"file://{tmp_path}/lake")
    monkeypatch.delenv("UNIFAPI_HASHTAG_NAME", raising=False)
    monkeypatch.setenv("UNIFAPI_HASHTAG_ID", "5050")
    target = Path(dag_runner.folder) / "example_unifapi_hashtag_videos.py"
    shutil.copy(REPO / "example_dags" / "example_unifapi_hashtag_videos.py", target)
    result = dag_runner.run(target, capsys=capfd)
    assert result.state == "success"
    collect = next(v for k, v in result.xcoms.items() if k.startswith("collect"))
    assert collect["stop_reason"] == "exhausted"
    folder = tmp_path / "lake" / "hashtag=5050" / "ds=2024-01-01"
    manifest = json.loads((folder / "_manifest.json").read_text())
    assert manifest["records"] == len(unifapi_conn.truth("5050"))
    top = result.xcoms["top_videos"]
    assert len(top) == 10
    views = [v["view_count"] for v in top]
    assert views == sorted(views, reverse=True)
    assert "1." in result.log_text and "views" in result.log_text


def test_lineage_names_the_endpoint_and_the_folder(monkeypatch):
    from airflow_provider_unifapi.operators.hashtag_videos import TikTokHashtagVideosOperator
    from tests.conftest import conn_uri_json

    monkeypatch.setenv("AIRFLOW_CONN_UNIFAPI_DEFAULT", conn_uri_json("http://127.0.0.1:8377"))
    op = TikTokHashtagVideosOperator(task_id="x", hashtag_id="123", output_path="s3://lake/tiktok/day=1/")
    lineage = op.get_openlineage_facets_on_start()
    assert [(d.namespace, d.name) for d in lineage.inputs] == [
        ("http://127.0.0.1:8377", "/tiktok/hashtags/123/videos")
    ]
    assert [(d.namespace, d.name) for d in lineage.outputs] == [("s3://lake", "tiktok/day=1")]
