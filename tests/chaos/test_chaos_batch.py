"""Chaos through the batch operator: ``TikTokHashtagBatchOperator`` pages 3-5 sandbox hashtags with
2-3 concurrent chains under one shared ``max_credits``, and is retried try after try until it succeeds
through one kind of trouble per run:

- ``sigkill``: the task process is SIGKILLed at a seeded moment (1-3 times), with a light fault plan;
- ``faults``: the collector chaos runs' fault plan at a high rate (429s, 5xx, resets, timeouts,
  truncated, malformed and schema-breaking bodies, 402s);
- ``squeeze``: the workspace balance is set low mid-try (1-2 times) and topped up before the retry;
- ``floor``: a shared ``min_balance`` a little below the starting balance stops some hashtags;
- ``raise``, ``alias``, ``aged`` (:mod:`tests.chaos.batch_kinds`): a small cap raised step by step
  between tries, hashtags listed by name and by id, a remembered balance far too high and hours old;
- ``writers`` (:mod:`tests.chaos.batch_writers`): two batch tries and a single-hashtag task on one
  folder at once and staggered, on local files and on S3 (moto).

Then the same figures as every chaos run, summed over the batch's hashtags: no record lost or
written twice, the shared cap never crossed (ledger and worst case), ledger credits == what each
hashtag reports, no committed page paid again and at most one page per chain in flight at each
kill, no untyped error, no key anywhere, and the run finished; each new kind adds its own checks.
``CHAOS_RUNS`` scales the number of runs (by default 1 ``sigkill`` run and 2 of every other kind;
``CHAOS_RUNS``/10 and /5 under ``make chaos``), ``CHAOS_SOAK=1`` the hashtags' size; ``CHAOS_SEEDS``
replays seeds.
"""

from __future__ import annotations

import contextlib
import os

import pytest

from tests.chaos import report, settings
from tests.chaos.batch_kinds import (
    AGED_MAX_AGE,
    KIND_ZERO,
    expected_rows,
    forget_remembered,
    plan_for,
    variables_in_db,
)
from tests.chaos.batch_runs import KINDS, BatchCase, check_batch, run_batch
from tests.chaos.batch_writers import WRITERS_ZERO, Storage, WritersCase, check_writers, moto_s3, run_writers
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
    # aged: readings stand in for AGED_MAX_AGE seconds, so the hours between a top-up and a rerun fit
    # in a test (the plan waits that long after each top-up)
    extra = {"balance_max_age": AGED_MAX_AGE} if kind == "aged" else {}
    monkeypatch.setenv("AIRFLOW_CONN_UNIFAPI_DEFAULT", conn_uri_json(sandbox.url, **CLIENT, **extra))
    case = BatchCase.from_seed(seed, kind, long=settings.long_mode())

    def capture() -> str:
        captured = capfd.readouterr()
        return captured.out + captured.err

    if kind == "aged":
        forget_remembered(API_KEY)
    try:
        with variables_in_db() if kind == "aged" else contextlib.nullcontext():
            run = run_batch(
                case, sandbox, tmp_path, API_KEY, capture, plan_for(case, sandbox, tmp_path, API_KEY)
            )
    finally:
        if kind == "aged":  # a remembered balance of this workspace must not stand in for another test's
            forget_remembered(API_KEY)
    figures = check_batch(case, sandbox, tmp_path, run, API_KEY)
    report.record(f"batch-{kind}", figures)
    assert_zero(figures, KIND_ZERO.get(kind, ()))  # first: the kind's own checks name what broke
    assert_promises(figures)
    assert figures["manifest_mismatch"] == 0, f"the batch manifest disagrees with its hashtags: {figures}"
    # the run went through what its kind is about
    if kind == "raise":  # hashtags stopped part-way on the cap, and the cap was raised
        assert figures["rows_stopped"] >= 1 and figures["raises"] >= 1, figures
    elif kind == "alias":  # some hashtag was listed twice and some name was resolved
        assert figures["names"] >= 1 and any(len(t) > 1 for t in _listed(case)), figures
    elif kind == "aged":  # the floor stopped hashtags, and the workspace was topped up
        assert figures["rows_stopped_on_floor"] >= 1 and figures["top_ups"] >= 1, figures
    elif kind == "sigkill":
        assert figures["kills_sigkill"] >= 1, figures
    elif kind == "squeeze":
        assert figures["squeezes"] >= 1, figures
    elif kind == "floor":  # the floor was reached, not left far away
        assert figures["stop_reasons"].get("min_balance", 0) >= 1, figures
    else:
        assert sum(figures["faults"].values()) > 0, figures


def _listed(case: BatchCase) -> list[list[str]]:
    """The inputs of each hashtag of an ``alias`` case."""
    return [[key, *same] for key, same in expected_rows(case.inputs or []).values()]


def assert_zero(figures: dict, names: tuple[str, ...]) -> None:
    broken = {name: figures.get(name) for name in names if figures.get(name)}
    assert not broken, f"seed {figures.get('seed')} ({figures.get('kind')}): {broken}\nfigures: {figures}"


@pytest.mark.timeout(900)
@pytest.mark.parametrize("seed", batch_seeds("writers"), ids=lambda v: f"writers-{v}")
def test_batch_writers_chaos_run(seed: int, sandbox, tmp_path, capfd, monkeypatch) -> None:
    """Two batch tries and a single-hashtag task on one folder, together and staggered (local / S3)."""
    monkeypatch.setenv("AIRFLOW_CONN_UNIFAPI_DEFAULT", conn_uri_json(sandbox.url, **CLIENT))
    case = WritersCase.from_seed(seed, long=settings.long_mode())
    storage = Storage(case, tmp_path)

    def capture() -> str:
        captured = capfd.readouterr()
        return captured.out + captured.err

    with moto_s3(monkeypatch) if case.storage == "s3" else contextlib.nullcontext((None, None)) as (s3, conn):
        storage.s3, storage.conn_id = s3, conn
        run = run_writers(case, sandbox, tmp_path, storage, capture)
        figures = check_writers(case, sandbox, tmp_path, storage, run, API_KEY)
    report.record("batch-writers", figures)
    assert_zero(figures, WRITERS_ZERO)
    assert_promises(figures)
    # a writer was refused, and in the staggered round one started mid-run
    assert figures["refused"] >= 1 and figures["started_mid_run"] >= 1, figures
