"""Collect one TikTok hashtag's videos every day into dated object-storage folders.

Copy this DAG and change the settings at the top. It runs as is against the local sandbox
(``make demo``) and against the real API once the ``unifapi_default`` connection holds a real key.

- ``UNIFAPI_HASHTAG_ID``: the numeric hashtag id (default: the sandbox's ``#cats``), or
  ``UNIFAPI_HASHTAG_NAME``: a name without ``#``, resolved by exact match (costs search credits).
- ``UNIFAPI_OUTPUT_BASE``: where runs go: ``s3://my-bucket/tiktok``, ``gs://...``, or
  ``file:///data/tiktok`` (default ``file:///tmp/unifapi-demo``). Set ``UNIFAPI_OUTPUT_CONN_ID`` to
  the object store's connection (e.g. ``aws_default``) for cloud storage.
- ``UNIFAPI_MAX_CREDITS``: the hard budget of one day's run (default 5,000 credits = $5).

``wait_for_credits`` holds the run until the workspace balance covers its whole budget, so it never
stops half-way for want of credits (it reads a fresh remembered balance for free, else pays 1 credit
a check; see docs/balance-sensor.md). Each day's folder holds ``part-*.jsonl.gz`` files and a
``_manifest.json`` written last; the downstream task reads the manifest and prints the day's top
videos by views.
"""

from __future__ import annotations

import heapq
import os

import pendulum

try:  # Airflow 3
    from airflow.sdk import DAG, ObjectStoragePath, task
except ImportError:  # Airflow 2.11
    from airflow import DAG
    from airflow.decorators import task
    from airflow.io.path import ObjectStoragePath

from airflow_provider_unifapi.operators.hashtag_videos import TikTokHashtagVideosOperator
from airflow_provider_unifapi.sensors.balance import UnifAPIBalanceSensor
from airflow_provider_unifapi.storage.run_folder import iter_run_records

# Give an id, or a name (resolved once by exact match through hashtag search, which costs credits).
HASHTAG_NAME = os.environ.get("UNIFAPI_HASHTAG_NAME") or None
HASHTAG_ID = None if HASHTAG_NAME else os.environ.get("UNIFAPI_HASHTAG_ID", "5050")
OUTPUT_BASE = os.environ.get("UNIFAPI_OUTPUT_BASE", "file:///tmp/unifapi-demo").rstrip("/")
OUTPUT_CONN_ID = os.environ.get("UNIFAPI_OUTPUT_CONN_ID") or None
MAX_CREDITS = int(os.environ.get("UNIFAPI_MAX_CREDITS", "5000"))
# The run's day: the logical date of scheduled runs, and on Airflow 3 the trigger time of runs
# started from the UI, CLI or REST API without a logical date (where ``{{ ds }}`` is undefined).
RUN_DATE = "{{ (dag_run.logical_date or dag_run.run_after) | ds }}"

with DAG(
    dag_id="example_unifapi_hashtag_videos",
    description="Daily TikTok hashtag videos through UnifAPI into object storage",
    schedule="@daily",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["unifapi", "tiktok", "example"],
    default_args={"retries": 2, "retry_delay": pendulum.duration(minutes=5)},
) as dag:
    wait_for_credits = UnifAPIBalanceSensor(
        task_id="wait_for_credits",
        unifapi_conn_id="unifapi_default",
        min_balance=MAX_CREDITS,  # the run below can spend at most this much
        poke_interval=15 * 60,  # at most 96 one-credit checks a day while waiting
        timeout=6 * 60 * 60,
        retries=0,  # a retry would only restart the same wait
    )

    collect = TikTokHashtagVideosOperator(
        task_id="collect_hashtag_videos",
        unifapi_conn_id="unifapi_default",
        hashtag_id=HASHTAG_ID,
        hashtag_name=HASHTAG_NAME,
        # One folder per hashtag and day: a retried try resumes in it; a finished one is reused.
        output_path=f"{OUTPUT_BASE}/hashtag={HASHTAG_ID or HASHTAG_NAME}/ds={RUN_DATE}/",
        output_conn_id=OUTPUT_CONN_ID,
        output_format="jsonl.gz",
        max_credits=MAX_CREDITS,
    )

    @task
    def top_videos(summary: dict, how_many: int = 10) -> list[dict]:
        """Read the run's parts (one at a time) and print the most viewed videos."""
        folder = ObjectStoragePath(summary["output_path"], conn_id=OUTPUT_CONN_ID)
        top = heapq.nlargest(how_many, iter_run_records(folder), key=lambda video: video["view_count"])
        print(
            f"{summary['records']} videos of hashtag {summary['hashtag_id']} in {len(summary['files'])} file(s), "
            f"{summary['credits_charged']} credits, stop reason {summary['stop_reason']}"
        )
        for rank, video in enumerate(top, 1):
            print(
                f"{rank:2d}. {video['view_count']:>14,d} views  @{video['author']['username']}  {video['share_url']}"
            )
        return [{"id": v["id"], "view_count": v["view_count"], "share_url": v["share_url"]} for v in top]

    wait_for_credits >> collect
    top_videos(collect.output)
