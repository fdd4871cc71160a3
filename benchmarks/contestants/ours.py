"""Ours: ``TikTokHashtagVideosOperator`` as a real Airflow task, writing ``jsonl.gz`` or ``parquet``, with the ``fast`` extra (python-isal gzip) installed.

The window opens inside ``execute()``: connection lookup, client, every page, the parts and the
manifest are measured; Airflow's start-up and the XCom push of the small summary are not.
Restarting with the same output folder resumes from the checkpoint (the kill test does that).
"""

from __future__ import annotations

from typing import Any

from benchmarks import airflow_env
from benchmarks.spec import RunSpec
from benchmarks.window import Window

_SPEC: RunSpec | None = None


def _timed_operator_class() -> type:
    from airflow_provider_unifapi.operators.hashtag_videos import TikTokHashtagVideosOperator

    class TimedTikTokHashtagVideosOperator(TikTokHashtagVideosOperator):
        """The operator, unchanged, with the benchmark window around ``execute()``."""

        def execute(self, context: Any) -> Any:
            assert _SPEC is not None
            if _SPEC.profile:
                from benchmarks import profile_ours

                profile_ours.install()
            with Window(_SPEC) as window:
                if _SPEC.profile:
                    from benchmarks import profile_ours

                    profile_ours.mark_start()
                summary = super().execute(context)
                window.records = int(summary["records"])
                window.pages = int(summary["pages"])
                if _SPEC.profile:
                    from benchmarks import profile_ours

                    window.result.profile = profile_ours.report()
            return summary

    return TimedTikTokHashtagVideosOperator


def build_dag(spec: RunSpec) -> Any:
    global _SPEC
    _SPEC = spec
    import pendulum

    from airflow_provider_unifapi._compat import DAG

    operator = _timed_operator_class()
    with DAG(
        spec.dag_id, schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False
    ) as dag:
        operator(
            task_id="collect",
            hashtag_id=spec.hashtag_id,
            page_size=spec.page_size,
            output_path=f"file://{spec.out_dir}",
            output_format=spec.option,
            retries=0,
        )
    return dag


def run(spec: RunSpec) -> None:
    airflow_env.run_dag(__name__, spec)
