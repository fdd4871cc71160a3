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
    # A folder without its manifest is not a dataset yet: START names no output (COMPLETE names the
    # parts; tests/test_lineage.py checks those against real runs).
    assert lineage.outputs == []


def test_example_dag_runs_without_a_logical_date(unifapi_conn, dag_runner, tmp_path, monkeypatch):
    """Runs triggered from the UI, CLI or REST API on Airflow 3 have no logical date, so ``{{ ds }}``
    is undefined; the example's default path must still render (to the day the run was triggered).

    ``dag.test(logical_date=None)`` creates exactly such a run (run_type manual, logical_date None).
    Airflow 2.11 has no such run: every run there has a logical date, which the path must use.
    """
    import importlib.util

    import pendulum

    from airflow_provider_unifapi._compat import AIRFLOW_V_3, dag_test

    monkeypatch.setenv("UNIFAPI_OUTPUT_BASE", f"file://{tmp_path}/lake")
    monkeypatch.delenv("UNIFAPI_HASHTAG_NAME", raising=False)
    monkeypatch.setenv("UNIFAPI_HASHTAG_ID", "4242")
    target = Path(dag_runner.folder) / "example_unifapi_hashtag_videos.py"
    shutil.copy(REPO / "example_dags" / "example_unifapi_hashtag_videos.py", target)
    spec = importlib.util.spec_from_file_location("example_no_logical_date", target)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    logical_date = None if AIRFLOW_V_3 else pendulum.datetime(2024, 3, 9, tz="UTC")
    dr = dag_test(module.dag, logical_date)
    assert str(dr.state).split(".")[-1].lower() == "success"
    if AIRFLOW_V_3:
        assert dr.logical_date is None
        day = pendulum.instance(dr.run_after).to_date_string()
    else:
        day = "2024-03-09"
    manifest = json.loads((tmp_path / "lake" / "hashtag=4242" / f"ds={day}" / "_manifest.json").read_text())
    assert manifest["records"] == len(unifapi_conn.truth("4242"))
