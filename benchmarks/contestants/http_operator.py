"""HttpOperator + ``pagination_function``, as the provider's docs show, as a real Airflow task.

The pagination function reads ``next_cursor`` from each response; the operator collects every
response and hands the list to ``response_filter``, which writes the records to a local JSON-lines
file the way a user would (every record the API sent: it has no notion of duplicates). A restart
starts from the first page: the operator keeps no state.
"""

from __future__ import annotations

import json
from typing import Any

from benchmarks import airflow_env
from benchmarks.spec import RunSpec
from benchmarks.window import Window

OUTPUT_NAME = "videos.jsonl"
_SPEC: RunSpec | None = None


def next_page(response: Any) -> dict[str, Any] | None:
    """The docs' cursor example: the next call's parameters, or ``None`` on the last page."""
    pagination = response.json()["pagination"]
    if pagination.get("has_more") and pagination.get("next_cursor"):
        return {"data": {"cursor": pagination["next_cursor"]}}
    return None


def _timed_operator_class() -> type:
    from airflow.providers.http.operators.http import HttpOperator

    class TimedHttpOperator(HttpOperator):
        """HttpOperator, unchanged, with the benchmark window around ``execute()``."""

        def execute(self, context: Any) -> Any:
            assert _SPEC is not None
            with Window(_SPEC) as window:
                written = super().execute(context)
                window.records = int(written["records"])
                window.pages = int(written["pages"])
            return written

    return TimedHttpOperator


def build_dag(spec: RunSpec) -> Any:
    global _SPEC
    _SPEC = spec
    import pendulum

    from airflow_provider_unifapi._compat import DAG

    out = f"{spec.out_dir}/{OUTPUT_NAME}"

    def write_records(responses: list[Any]) -> dict[str, int]:
        """``response_filter``: every page's records to one JSON-lines file; a small XCom."""
        records = 0
        with open(out, "w", encoding="utf-8") as handle:
            for response in responses:
                for record in response.json()["data"]:
                    handle.write(json.dumps(record, ensure_ascii=False) + "\n")
                    records += 1
        return {"records": records, "pages": len(responses)}

    operator = _timed_operator_class()
    with DAG(
        spec.dag_id, schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False
    ) as dag:
        operator(
            task_id="collect",
            http_conn_id="unifapi_http",
            method="GET",
            endpoint=f"tiktok/hashtags/{spec.hashtag_id}/videos",
            data={"limit": spec.page_size},
            headers={"Authorization": f"Bearer {spec.api_key}"},
            pagination_function=next_page,
            response_filter=write_records,
            retries=0,
        )
    return dag


def run(spec: RunSpec) -> None:
    airflow_env.run_dag(__name__, spec)
