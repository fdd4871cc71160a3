"""Chaos through the batch operator: ``TikTokHashtagBatchOperator`` pages 3-5 sandbox hashtags with
2-3 concurrent chains under one shared ``max_credits``, and is retried try after try until it succeeds
through one kind of trouble per run:

- ``sigkill``: the task process is SIGKILLed at a seeded moment (1-3 times), with a light fault plan;
- ``faults``: the collector chaos runs' fault plan at a high rate (429s, 5xx, resets, timeouts,
  truncated, malformed and schema-breaking bodies, 402s);
- ``squeeze``: the workspace balance is set low mid-try (1-2 times) and topped up before the retry.

Then the same figures as every chaos run, summed over the batch's hashtags: no record lost or
written twice, the shared cap never crossed (ledger and worst case), ledger credits == what each
hashtag reports, no committed page paid again and at most one page per chain in flight at each
kill, no untyped error, no key anywhere, and the run finished. ``CHAOS_RUNS`` scales the number of
runs (5 by default, 20 under ``make chaos``), ``CHAOS_SOAK=1`` the hashtags' size;
``CHAOS_SEEDS`` replays seeds.
"""

from __future__ import annotations

import os

import pytest

from tests.chaos import report, settings
from tests.chaos.batch_runs import KINDS, BatchCase, check_batch, run_batch
from tests.chaos.cases import CLIENT
from tests.chaos.harness import assert_promises
from tests.conftest import API_KEY, conn_uri_json

pytestmark = [pytest.mark.chaos, pytest.mark.airflow]

FIRST_BATCH_SEED = 7000


def batch_seeds(kind: str) -> list[int]:
    """``CHAOS_SEEDS`` if given; else a SIGKILL run (a child process starting Airflow each try) per
    10 ``CHAOS_RUNS``, and 2 in-process runs per 10 of the other kinds (at least 1 and 2)."""
    explicit = os.environ.get("CHAOS_SEEDS", "").strip()
    if explicit:
        return [int(s) for s in explicit.replace(",", " ").split()]
    count = max(1, settings.runs() // 10) if kind == "sigkill" else max(2, settings.runs() // 5)
    return list(range(FIRST_BATCH_SEED, FIRST_BATCH_SEED + count))


@pytest.mark.timeout(900)
@pytest.mark.parametrize(
    ("kind", "seed"), [(k, s) for k in KINDS for s in batch_seeds(k)], ids=lambda v: str(v)
)
def test_batch_chaos_run(kind: str, seed: int, sandbox, tmp_path, capfd, monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_UNIFAPI_DEFAULT", conn_uri_json(sandbox.url, **CLIENT))
    case = BatchCase.from_seed(seed, kind, long=settings.long_mode())

    def capture() -> str:
        captured = capfd.readouterr()
        return captured.out + captured.err

    run = run_batch(case, sandbox, tmp_path, API_KEY, capture)
    figures = check_batch(case, sandbox, tmp_path, run, API_KEY)
    report.record(f"batch-{kind}", figures)
    assert_promises(figures)
    assert figures["manifest_mismatch"] == 0, f"the batch manifest disagrees with its hashtags: {figures}"
    # the run went through what its kind is about
    if kind == "sigkill":
        assert figures["kills_sigkill"] >= 1, figures
    elif kind == "squeeze":
        assert figures["squeezes"] >= 1, figures
    elif kind == "floor":  # the floor was reached, not left far away
        assert figures["stop_reasons"].get("min_balance", 0) >= 1, figures
    else:
        assert sum(figures["faults"].values()) > 0, figures
