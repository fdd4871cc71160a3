"""A batch task process for the chaos suite: ``python -m tests.chaos.batch_child SPEC_JSON RESULT_JSON``.

Runs one try of ``TikTokHashtagBatchOperator`` (see :func:`tests.chaos.batch_runs.batch_try`) with
the ``unifapi_default`` connection from the environment, and writes its outcome as JSON. The parent
SIGKILLs it mid-run; logs go to stdout/stderr (the parent scans them for the key).
"""

from __future__ import annotations

import sys

from tests.chaos.batch_runs import BatchSpec, batch_try
from tests.chaos.child import serve


def main(argv: list[str]) -> int:
    return serve(argv, lambda text: batch_try(BatchSpec.from_json(text)))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
