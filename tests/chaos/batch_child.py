"""A batch task process for the chaos suite: ``python -m tests.chaos.batch_child SPEC_JSON RESULT_JSON``.

Runs one try of ``TikTokHashtagBatchOperator`` (see :func:`tests.chaos.batch_runs.batch_try`) with
the ``unifapi_default`` connection from the environment, and writes its outcome as JSON. The parent
SIGKILLs it mid-run; logs go to stdout/stderr (the parent scans them for the key).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from tests.chaos.batch_runs import BatchSpec, batch_try


def main(argv: list[str]) -> int:
    spec_path, result_path = argv[1], argv[2]
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")
    spec = BatchSpec.from_json(Path(spec_path).read_text(encoding="utf-8"))
    outcome = batch_try(spec)
    tmp = Path(result_path + ".tmp")
    tmp.write_text(outcome.to_json(), encoding="utf-8")
    tmp.replace(result_path)  # the parent never reads half a result
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
