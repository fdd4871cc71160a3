"""A task process for the chaos suite: ``python -m tests.chaos.child SPEC_JSON RESULT_JSON``.

Runs one collector try (see :mod:`tests.chaos.runner`) and writes its :class:`TryOutcome` as JSON.
The parent SIGKILLs it at a chosen point of the run, or lets it finish. The API key comes from the
``UNIFAPI_CHAOS_API_KEY`` environment variable; logs go to stderr (the parent scans them for the key).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from tests.chaos.runner import TrySpec, env_api_key, run_try


def main(argv: list[str]) -> int:
    spec_path, result_path = argv[1], argv[2]
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")
    spec = TrySpec.from_json(Path(spec_path).read_text(encoding="utf-8"))
    outcome = run_try(spec, env_api_key(), logger=logging.getLogger("chaos.child"))
    tmp = Path(result_path + ".tmp")
    tmp.write_text(outcome.to_json(), encoding="utf-8")
    tmp.replace(result_path)  # the parent never reads half a result
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
