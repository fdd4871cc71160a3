"""A task process for the chaos suite: ``python -m tests.chaos.child SPEC_JSON RESULT_JSON``.

Runs one collector try (see :mod:`tests.chaos.runner`) and writes its :class:`TryOutcome` as JSON.
The parent SIGKILLs it at a chosen point of the run, or lets it finish. The API key comes from the
``UNIFAPI_CHAOS_API_KEY`` environment variable; logs go to stderr (the parent scans them for the key).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.chaos.runner import TrySpec, env_api_key, run_try


def serve(argv: list[str], run: Callable[[str], Any]) -> int:
    """``argv`` = ``[prog, SPEC_JSON, RESULT_JSON]``: ``run(spec text)``, its outcome's ``to_json()``
    written to RESULT_JSON whole (this child and :mod:`tests.chaos.batch_child`)."""
    spec_path, result_path = argv[1], argv[2]
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")
    outcome = run(Path(spec_path).read_text(encoding="utf-8"))
    tmp = Path(result_path + ".tmp")
    tmp.write_text(outcome.to_json(), encoding="utf-8")
    tmp.replace(result_path)  # the parent never reads half a result
    return 0


def main(argv: list[str]) -> int:
    logger = logging.getLogger("chaos.child")
    return serve(argv, lambda text: run_try(TrySpec.from_json(text), env_api_key(), logger=logger))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
