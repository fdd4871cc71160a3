"""Bad values that only show once the task runs: each task must fail at once, before any paid call."""

from __future__ import annotations

import os

import pendulum

from airflow_provider_unifapi._compat import DAG, task
from airflow_provider_unifapi.operators.hashtag_videos import TikTokHashtagVideosOperator

OUT = os.environ.get("UNIFAPI_TEST_OUTPUT", "/tmp/unifapi-test-output")
TAG = os.environ.get("UNIFAPI_TEST_TAG", "4242")

with DAG(
    "operator_bad_input",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    params={"tag": "abc"},
) as dag:

    @task
    def bad_budget() -> str:
        return "0"

    # retries=2 each: a bad argument must not be retried (AirflowFailException).
    TikTokHashtagVideosOperator(
        task_id="bad_jinja_id",
        hashtag_id="{{ params.tag }}",
        output_path=f"file://{OUT}/bad/jinja/",
        retries=2,
        retry_delay=0,
    )
    TikTokHashtagVideosOperator(
        task_id="bad_xcom_budget",
        hashtag_id=TAG,
        max_credits=bad_budget(),
        output_path=f"file://{OUT}/bad/xcom/",
        retries=2,
        retry_delay=0,
    )
    TikTokHashtagVideosOperator(
        task_id="bad_gzip_level",
        hashtag_id=TAG,
        gzip_level=12,
        output_path=f"file://{OUT}/bad/gzip/",
        retries=2,
        retry_delay=0,
    )
