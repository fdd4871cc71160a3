"""The operator fed by TaskFlow values: ``hashtag_id`` and ``max_credits`` are XComArgs at parse time."""

from __future__ import annotations

import os

import pendulum

from airflow_provider_unifapi._compat import DAG, task
from airflow_provider_unifapi.operators.hashtag_videos import TikTokHashtagVideosOperator

OUT = os.environ.get("UNIFAPI_TEST_OUTPUT", "/tmp/unifapi-test-output")
TAG = os.environ.get("UNIFAPI_TEST_TAG", "4242")

with DAG(
    "operator_xcomarg", schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False
) as dag:

    @task
    def pick() -> str:
        return TAG

    @task
    def budget() -> int:
        return 120

    TikTokHashtagVideosOperator(
        task_id="collect",
        hashtag_id=pick(),
        max_credits=budget(),
        output_path=f"file://{OUT}/xcomarg/",
        retries=0,
    )
