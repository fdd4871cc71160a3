"""The operator mapped over upstream results: ``.expand(hashtag_id=...)`` and ``.expand_kwargs(...)``."""

from __future__ import annotations

import os

import pendulum

from airflow_provider_unifapi._compat import DAG, task
from airflow_provider_unifapi.operators.hashtag_videos import TikTokHashtagVideosOperator

OUT = os.environ.get("UNIFAPI_TEST_OUTPUT", "/tmp/unifapi-test-output")
TAGS = os.environ.get("UNIFAPI_TEST_TAGS", "4242,4243").split(",")

with DAG(
    "operator_mapped", schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False
) as dag:

    @task
    def tags() -> list[str]:
        return TAGS

    @task
    def jobs() -> list[dict[str, object]]:
        # A budget as text, as a rendered template would give it.
        return [
            {"hashtag_id": TAGS[0], "output_path": f"file://{OUT}/kwargs/a/", "max_records": 30},
            {"hashtag_id": TAGS[1], "output_path": f"file://{OUT}/kwargs/b/", "max_credits": "45"},
        ]

    TikTokHashtagVideosOperator.partial(
        task_id="collect_expand",
        output_path=f"file://{OUT}/expand/{{{{ ti.map_index }}}}/",
        max_records=60,
        retries=0,
    ).expand(hashtag_id=tags())

    TikTokHashtagVideosOperator.partial(task_id="collect_kwargs", retries=0).expand_kwargs(jobs())
