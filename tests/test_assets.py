"""Asset (Dataset on 2.11) events carry the run's summary, and a downstream DAG sees it.

``test_scheduler_runs_the_downstream_dag_with_the_summary`` starts a real Airflow on 127.0.0.1 (Airflow
3: api-server + scheduler + dag-processor with the LocalExecutor; 2.11: the scheduler with the
SequentialExecutor, the only one SQLite allows there) on a fresh SQLite database, with the example
pair of DAGs in its DAGs folder, and waits for the asset-scheduled DAG to run and return what it read.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_unifapi._compat import AIRFLOW_V_3
from airflow_provider_unifapi.collector import dollars
from tests.airflow_stack import AirflowStack
from tests.conftest import API_KEY, REPO, assert_no_key, conn_uri_json

TAG = "4343"
VIDEOS = 180
SUMMARY_KEYS = {"hashtag_id", "output_path", "records", "credits_charged", "possibly_billed_credits"}
SUMMARY_KEYS |= {"stop_reason", "files", "tries", "credits_spent", "dollars_spent", "reused"}


@pytest.fixture
def sb(unifapi_conn):
    unifapi_conn.add_hashtag(TAG, "assettest", VIDEOS)
    return unifapi_conn


def asset_events(url: str) -> list[dict[str, Any]]:
    """The extras of every asset (dataset) event whose summary names ``url``, oldest first."""
    from airflow.utils.session import create_session

    if AIRFLOW_V_3:
        from airflow.models.asset import AssetEvent as Event
    else:
        from airflow.models.dataset import DatasetEvent as Event  # type: ignore[no-redef]
    with create_session() as session:
        extras = [dict(e.extra or {}) for e in session.query(Event).order_by(Event.id).all()]
    return [e for e in extras if e.get("output_path") == url]


def outlet_dag(dag_runner, dag_id: str, url: str, operator: str) -> Any:
    """A DAG file whose one task (``operator``, with ``{outlet}`` where its outlets go) emits an asset
    event for ``url``; on 2.11 the dataset is made known to the metadata DB first."""
    asset = "Asset" if AIRFLOW_V_3 else "Dataset"
    module = "airflow.sdk" if AIRFLOW_V_3 else "airflow.datasets"
    body = f"from {module} import {asset}\n" + operator.replace("{outlet}", f"[{asset}({url!r})]")
    path = dag_runner.write(dag_id, body)
    if not AIRFLOW_V_3:
        # 2.11's dag.test() records events only for datasets already known to the metadata DB, which
        # the scheduler's DAG processing writes; do its part here.
        import importlib.util

        spec = importlib.util.spec_from_file_location(f"{dag_id}_sync", path)
        loaded = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(loaded)
        loaded.dag.sync_to_db()
    return path


def test_every_event_carries_the_summary_and_a_reused_folder_says_so(sb, dag_runner, tmp_path):
    url = f"file://{tmp_path}/lake/"
    path = outlet_dag(
        dag_runner,
        "asset_producer",
        url,
        f'TikTokHashtagVideosOperator(task_id="collect", hashtag_id={TAG!r}, output_path={url!r}, '
        "max_credits=150, outlets={outlet})",
    )
    first = dag_runner.run(path)
    assert first.state == "success"
    events = asset_events(url)
    assert len(events) == 1
    extra = events[0]
    assert set(extra) >= SUMMARY_KEYS
    summary = first.xcoms["collect"]
    assert {k: extra[k] for k in summary} == summary  # the whole summary, as returned
    # a run stopped at its cap is told apart from a complete one
    assert extra["stop_reason"] == "max_credits" and extra["records"] < VIDEOS
    assert extra["credits_charged"] == sb.credits_charged() <= 150
    assert extra["credits_spent"] == extra["credits_charged"] + extra["possibly_billed_credits"]
    assert extra["dollars_spent"] == dollars(extra["credits_spent"])
    assert extra["reused"] is False and extra["credits_spent_this_run"] == extra["credits_spent"]

    assert extra["status"] == "stopped"

    # The same limit again: the stopped folder stays as it is, for free, and the event says so.
    second = dag_runner.run(path)
    assert second.state == "success"
    again = asset_events(url)[-1]
    assert again["status"] == "stopped" and again["credits_spent_this_run"] == 0
    assert again["records"] == extra["records"] and sb.credits_charged() == extra["credits_charged"]

    # Raised, it continues to the end: a done folder is then reused for free.
    raised = path.read_text().replace("max_credits=150", "max_credits=1000")
    path.write_text(raised)
    assert dag_runner.run(path).state == "success"
    assert asset_events(url)[-1]["status"] == "done"
    third = dag_runner.run(path)
    assert third.state == "success"
    last = asset_events(url)[-1]
    assert last["reused"] is True and last["credits_spent_this_run"] == 0 and last["records"] == VIDEOS
    assert_no_key(events, last)


def _value(raw: Any) -> Any:
    if isinstance(raw, bytes):
        raw = raw.decode()
    value = json.loads(raw)
    return json.loads(value) if isinstance(value, str) else value


@pytest.mark.airflow
def test_scheduler_runs_the_downstream_dag_with_the_summary(sb, tmp_path):
    env = {
        "AIRFLOW_CONN_UNIFAPI_DEFAULT": conn_uri_json(sb.url),
        "UNIFAPI_HASHTAG_ID": TAG,
        "UNIFAPI_OUTPUT_BASE": f"file://{tmp_path}/lake",
        "UNIFAPI_MAX_CREDITS": "100000",
    }
    stack = AirflowStack(tmp_path, [REPO / "example_dags" / "example_unifapi_asset_pipeline.py"], env)
    try:
        stack.start()
        stack.wait_for_success("example_unifapi_asset_collect")
        stack.wait_for_success("example_unifapi_asset_report")
        run_types = stack.query("select run_type from dag_run where dag_id = 'example_unifapi_asset_report'")
        assert run_types and {r[0] for r in run_types} <= {"asset_triggered", "dataset_triggered"}
        table = "asset_event" if AIRFLOW_V_3 else "dataset_event"
        extras = [_value(row[0]) for row in stack.query(f"select extra from {table}")]
        assert len(extras) == 1
        extra = extras[0]
        assert set(extra) >= SUMMARY_KEYS
        assert extra["hashtag_id"] == TAG and extra["records"] == VIDEOS == len(sb.truth(TAG))
        assert extra["stop_reason"] == "exhausted" and extra["credits_charged"] == sb.credits_charged()
        assert extra["output_path"].startswith(f"file://{tmp_path}/lake/hashtag={TAG}/ds=")
        # the downstream task read the same summary from triggering_asset_events and returned it
        rows = stack.query(
            "select value from xcom where dag_id = 'example_unifapi_asset_report' and key = 'return_value'"
        )
        assert [_value(row[0]) for row in rows] == [[extra]]
        logs = "".join(p.read_text(errors="replace") for p in tmp_path.rglob("*.log"))
        assert_no_key(logs, extra)
        assert API_KEY not in logs
    finally:
        stack.stop()


def test_a_batch_event_carries_its_totals(sb, dag_runner, tmp_path):
    url = f"file://{tmp_path}/batch"
    path = outlet_dag(
        dag_runner,
        "asset_batch",
        url,
        "from airflow_provider_unifapi.operators.hashtag_batch import TikTokHashtagBatchOperator\n"
        f'TikTokHashtagBatchOperator(task_id="batch", hashtags=[{TAG!r}], output_path={url!r}, '
        "max_credits=150, outlets={outlet})",
    )
    result = dag_runner.run(path)
    assert result.state == "success"
    (extra,) = asset_events(url)
    totals = result.xcoms["batch"]["totals"]
    assert extra["totals"] == totals and totals["by_status"]["stopped"] == 1
    assert extra["credits_spent"] == totals["credits_spent"] == sb.credits_charged() <= 150
    assert extra["dollars_spent"] == dollars(extra["credits_spent"]) and extra["max_credits"] == 150
    assert_no_key(extra)
