"""A process running the operator itself: ``python -m tests.chaos.operator_child HASHTAG_ID OUTPUT_URL RESULT_JSON``.

Used by the full concurrency run: 20 of these at once against one sandbox workspace, each with the
``unifapi_default`` connection from the environment (the connection's default retry settings).
``execute`` is called directly, as a worker's task runner would, without a metadata database.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path


def main(argv: list[str]) -> int:
    hashtag_id, output_url, result_path = argv[1], argv[2], argv[3]
    from airflow_provider_unifapi.operators.hashtag_videos import TikTokHashtagVideosOperator

    operator = TikTokHashtagVideosOperator(
        task_id=f"collect_{hashtag_id}", hashtag_id=hashtag_id, output_path=output_url
    )
    try:
        result = {"outcome": "done", "summary": operator.execute({})}
    except Exception as exc:
        result = {
            "outcome": "failed",
            "error_type": type(exc).__name__,
            "error_text": "".join(traceback.format_exception(exc)),
        }
    Path(result_path).write_text(json.dumps(result, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
