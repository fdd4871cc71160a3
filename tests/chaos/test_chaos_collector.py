"""Seeded chaos runs of the operator's paging loop (``HashtagVideoCollector``) on the sandbox.

Each case mixes 429s (with and without ``Retry-After``), 500/502/503/504, resets, timeouts,
malformed, truncated and schema-breaking bodies at a high rate, balance squeezes (truncated pages,
402s) and kills (SIGKILL of a child process, or exact simulated kills), retrying like Airflow until
the run ends. Then: output == ground truth exactly once, budget never crossed, ledger credits ==
what the summary reports, no page before the last checkpoint paid twice, no key anywhere.
"""

from __future__ import annotations

import pytest

from tests.chaos import report, settings
from tests.chaos.cases import ChaosCase
from tests.chaos.harness import assert_promises, check_case, run_case
from tests.conftest import API_KEY

pytestmark = pytest.mark.chaos


@pytest.mark.timeout(900)
@pytest.mark.parametrize("seed", settings.seeds())
def test_chaos_run_keeps_every_promise(seed: int, sandbox, tmp_path) -> None:
    case = ChaosCase.from_seed(seed)
    run, spec = run_case(case, sandbox, tmp_path, API_KEY)
    figures = check_case(case, sandbox, tmp_path, run, spec, API_KEY)
    report.record("collector", figures)
    assert_promises(figures)
