"""What the mapped HttpOperator DAG imports at parse time: its paging and writing callables.

Kept apart from :mod:`benchmarks.fleet.mapped` so a task process imports nothing of the harness.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from benchmarks.contestants.http_operator import next_page

__all__ = ["next_page", "records_writer", "retry_args"]


def records_writer(out_dir: str) -> Callable[[list[Any]], dict[str, int]]:
    """A ``response_filter`` writing every page's records to ``<out_dir>/<hashtag id>.jsonl``.

    The hashtag id comes from the first request's path (``/tiktok/hashtags/<id>/videos``): the
    mapped operator's filter sees the responses only.
    """

    def write(responses: list[Any]) -> dict[str, int]:
        # requests' PreparedRequest.url is a plain string
        hashtag_id = urlsplit(str(responses[0].request.url)).path.rstrip("/").split("/")[-2]
        records = 0
        with open(Path(out_dir) / f"{hashtag_id}.jsonl", "w", encoding="utf-8") as handle:
            for response in responses:
                for record in response.json()["data"]:
                    handle.write(json.dumps(record, ensure_ascii=False) + "\n")
                    records += 1
        return {"records": records, "pages": len(responses)}

    return write


def retry_args() -> dict[str, Any]:
    """HttpOperator's ``retry_args`` as its docs show (tenacity): what makes it survive 429s.

    Without them the first 429 fails the task, and Airflow's retry starts the hashtag again from
    its first page. Exponential waits (0.5 s doubling, at most 30 s), 30 attempts per call.
    """
    import tenacity

    return {
        "wait": tenacity.wait_exponential(multiplier=0.5, max=30),
        "stop": tenacity.stop_after_attempt(30),
        "retry": tenacity.retry_if_exception_type(Exception),
        "reraise": True,
    }
