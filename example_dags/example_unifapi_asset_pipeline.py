"""A collector DAG that updates an asset, and a downstream DAG scheduled on that asset.

``example_unifapi_asset_collect`` pages one hashtag into a dated folder with ``outlets=[ASSET]``: every
asset event it emits carries the run's summary in its ``extra`` (hashtag id, output path, records,
credits charged and possibly billed, dollars, stop reason, whether the folder was reused). So
``example_unifapi_asset_report`` (scheduled on the asset) knows what arrived, and can tell a run
that stopped at its credit cap from a complete one, without opening a file.

Settings (environment): ``UNIFAPI_HASHTAG_ID`` (default the sandbox's ``#cats``, 5050),
``UNIFAPI_OUTPUT_BASE`` (default ``file:///tmp/unifapi-demo``), ``UNIFAPI_OUTPUT_CONN_ID``,
``UNIFAPI_MAX_CREDITS`` (default 5,000 credits = $5).

Works on Airflow 3 (``Asset``, ``airflow.sdk``) and on Airflow 2.11 (``Dataset``).
"""

from __future__ import annotations

import os

import pendulum

try:  # Airflow 3
    from airflow.sdk import DAG, Asset, task
except ImportError:  # Airflow 2.11: assets are called datasets
    from airflow import DAG
    from airflow.datasets import Dataset as Asset
    from airflow.decorators import task

from airflow_provider_unifapi.operators.hashtag_videos import TikTokHashtagVideosOperator

HASHTAG_ID = os.environ.get("UNIFAPI_HASHTAG_ID", "5050")
OUTPUT_BASE = os.environ.get("UNIFAPI_OUTPUT_BASE", "file:///tmp/unifapi-demo").rstrip("/")
OUTPUT_CONN_ID = os.environ.get("UNIFAPI_OUTPUT_CONN_ID") or None
MAX_CREDITS = int(os.environ.get("UNIFAPI_MAX_CREDITS", "5000"))
# The run's day; on Airflow 3 a run triggered without a logical date uses the time it was triggered.
RUN_DATE = "{{ (dag_run.logical_date or dag_run.run_after) | ds }}"

#: One asset per hashtag: an event means "a run of this hashtag finished" (see its extra for which).
ASSET = Asset(f"{OUTPUT_BASE}/hashtag={HASHTAG_ID}/")

with DAG(
    dag_id="example_unifapi_asset_collect",
    description="Collect a TikTok hashtag's videos and announce each run as an asset event",
    schedule="@daily",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["unifapi", "tiktok", "example", "assets"],
    default_args={"retries": 2, "retry_delay": pendulum.duration(minutes=5)},
) as collect_dag:
    TikTokHashtagVideosOperator(
        task_id="collect_hashtag_videos",
        hashtag_id=HASHTAG_ID,
        output_path=f"{OUTPUT_BASE}/hashtag={HASHTAG_ID}/ds={RUN_DATE}/",
        output_conn_id=OUTPUT_CONN_ID,
        max_credits=MAX_CREDITS,
        outlets=[ASSET],  # each success emits one event whose extra is the run's summary
    )

with DAG(
    dag_id="example_unifapi_asset_report",
    description="Runs after each collection and reports what arrived and what it cost",
    schedule=[ASSET],
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["unifapi", "tiktok", "example", "assets"],
) as report_dag:

    @task
    def report(triggering_asset_events=None, triggering_dataset_events=None) -> list[dict]:
        """Read each triggering event's extra: the collector run's summary.

        Airflow 3 passes ``triggering_asset_events``, Airflow 2.11 ``triggering_dataset_events``:
        both map the asset to its events.
        """
        events_by_asset = triggering_asset_events or triggering_dataset_events or {}
        runs = []
        for events in events_by_asset.values():
            for event in events:
                run = dict(event.extra or {})
                complete = run.get("stop_reason") == "exhausted"
                print(
                    f"hashtag {run.get('hashtag_id')}: {run.get('records')} records in {run.get('output_path')}, "
                    f"{run.get('credits_spent')} credits ({run.get('dollars_spent')}), stop reason "
                    f"{run.get('stop_reason')}" + ("" if complete else " (NOT the whole hashtag)")
                )
                runs.append(run)
        return runs

    report()
