"""dlt: the ``rest_api`` source with a cursor paginator into the ``filesystem`` destination (jsonl),
run inside an Airflow task (``@task`` via ``dag.test()``) so it carries the same Airflow baseline as
the operators, with dlt's Airflow-Variable config lookups turned off in its favour (see
``benchmarks.harness.child_env``).

Defaults everywhere, as its docs show: dlt normalises nested objects into columns and child tables,
gzips its files, and appends (so duplicates the API sends are written). The pipeline's working
directory lives in ``state_dir``, so a restart after a kill finds whatever dlt kept.
"""

from __future__ import annotations

from typing import Any

from benchmarks import airflow_env
from benchmarks.spec import RunSpec
from benchmarks.window import Window

DATASET = "tiktok"
TABLE = "videos"


def rest_api_client(base_url: str, api_key: str) -> dict[str, Any]:
    """The ``client`` part of a ``rest_api`` config for UnifAPI: bearer key, cursor paginator
    (this contestant and the fleet scenario's dlt share it)."""
    return {
        "base_url": base_url + "/",
        "auth": {"type": "bearer", "token": api_key},
        "paginator": {
            "type": "cursor",
            "cursor_path": "pagination.next_cursor",
            "cursor_param": "cursor",
        },
    }


def run_pipeline(spec: RunSpec) -> dict[str, int]:
    import dlt
    from dlt.sources.rest_api import rest_api_source

    source = rest_api_source(
        {
            "client": rest_api_client(spec.base_url, spec.api_key),
            "resources": [
                {
                    "name": TABLE,
                    "endpoint": {
                        "path": f"tiktok/hashtags/{spec.hashtag_id}/videos",
                        "params": {"limit": spec.page_size},
                        "data_selector": "data",
                    },
                }
            ],
        }
    )
    pipeline = dlt.pipeline(
        pipeline_name="unifapi_bench",
        destination=dlt.destinations.filesystem(bucket_url=f"file://{spec.out_dir}"),
        dataset_name=DATASET,
        pipelines_dir=spec.state_dir,
    )
    pipeline.run(source, loader_file_format="jsonl")
    trace = pipeline.last_trace
    info = trace.last_normalize_info if trace is not None else None
    rows = info.row_counts.get(TABLE, 0) if info is not None else 0
    return {"records": int(rows)}


def build_dag(spec: RunSpec) -> Any:
    # What a DAG file imports at parse time, outside the window (as the operators' imports are);
    # whatever dlt imports lazily while it runs stays inside, as in any fresh task process.
    import dlt  # noqa: F401
    import pendulum
    from dlt.sources.rest_api import rest_api_source  # noqa: F401

    from airflow_provider_unifapi._compat import DAG, task

    @task(task_id="collect", retries=0)
    def collect() -> dict[str, int]:
        with Window(spec) as window:
            written = run_pipeline(spec)
            window.records = written["records"]
        return written

    with DAG(
        spec.dag_id, schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False
    ) as dag:
        collect()
    return dag


def run(spec: RunSpec) -> None:
    airflow_env.run_dag(__name__, spec)
