"""The operator with Jinja strings in its template fields, rendered from the DAG's params."""

from __future__ import annotations

import os

import pendulum

from airflow_provider_unifapi._compat import DAG
from airflow_provider_unifapi.operators.hashtag_videos import TikTokHashtagVideosOperator

OUT = os.environ.get("UNIFAPI_TEST_OUTPUT", "/tmp/unifapi-test-output")
TAG = os.environ.get("UNIFAPI_TEST_TAG", "4242")

with DAG(
    "operator_jinja",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    params={"tag": TAG, "budget": 77, "page": 20, "format": "jsonl"},
) as dag:
    TikTokHashtagVideosOperator(
        task_id="collect",
        hashtag_id="{{ params.tag }}",
        max_credits="{{ params.budget }}",
        page_size="{{ params.page }}",
        output_format="{{ params.format }}",
        output_path=f"file://{OUT}/jinja/{{{{ params.tag }}}}/",
        retries=0,
    )
