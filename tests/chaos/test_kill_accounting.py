"""Exact kill scenarios: a try dies at a chosen point of a chosen page, and the next try resumes.

The seeded chaos runs hit these points by chance; here each one is hit on purpose, with a clean
feed (no short pages, no duplicates) so the expected ledger is known call by call.
"""

from __future__ import annotations

import pytest

from tests.chaos import report
from tests.chaos.cases import ChaosCase, Kill
from tests.chaos.harness import assert_promises, check_case, run_case
from tests.conftest import API_KEY

pytestmark = pytest.mark.chaos

CLEAN_FEED = {"short_page_rate": 0.0, "duplicate_rate": 0.0}


def exact_case(
    seed: int,
    *,
    kills: list[Kill],
    faults: list[dict],
    max_credits: int | None = None,
    video_count: int = 430,
    page_size: int = 50,
    records_per_part: int = 100,
    start_balance: int = 10_000_000,
    min_balance: int | None = None,
) -> ChaosCase:
    return ChaosCase(
        seed=seed,
        hashtag_id=str(800_000 + seed),
        video_count=video_count,
        page_size=page_size,
        records_per_part=records_per_part,
        output_format="jsonl.gz",
        max_credits=max_credits,
        fail_on_low_balance=True,
        start_balance=start_balance,
        top_ups=[10_000_000],
        faults=faults,
        kills=kills,
        sandbox_settings=CLEAN_FEED,
        min_balance=min_balance,
    )


@pytest.mark.parametrize("point", ["before_call", "after_call", "on_page"])
@pytest.mark.parametrize("nth", [1, 2, 5, 9])
def test_kill_at_every_point_of_a_page_resumes_exactly_once(point: str, nth: int, sandbox, tmp_path) -> None:
    # 430 records in pages of 50: 9 pages; parts close every 100 records, so kills land before,
    # on and after a part boundary, and on the last page (9) before the manifest.
    case = exact_case(10 + nth, kills=[Kill(point, nth)], faults=[])
    run, spec = run_case(case, sandbox, tmp_path, API_KEY)
    figures = check_case(case, sandbox, tmp_path, run, spec, API_KEY)
    report.record("exact-kills", figures)
    assert figures["kills_simulated"] == 1
    assert_promises(figures)
    if point == "after_call":
        # the page in flight was paid, lost, and paid again: exactly one refetch, counted as possibly billed
        assert figures["refetched_pages"] == 1
        page = min(50, 430 - 50 * (nth - 1))
        assert figures["possibly_billed_credits"] >= figures["unknown_billed_credits"] == page
    else:
        assert figures["refetched_pages"] == 0
        assert figures["ledger_credits"] == figures["credits_charged"] == 430


def test_kill_after_a_retried_billed_attempt_keeps_the_budget(sandbox, tmp_path) -> None:
    # Call 4 is billed by the sandbox and its connection reset (the client cannot know it was
    # billed); the client retries inside the same call, which is billed again and returns. The try
    # dies right then, before committing the page. Both attempts were paid: the next try must count
    # both against max_credits, or the run spends past its budget.
    case = exact_case(
        40,
        kills=[Kill("after_call", 4)],
        faults=[
            {
                "kind": "reset",
                "billed": True,
                "at": [4],
                "path": "videos",
                "note": "connection reset (billed)",
            }
        ],
        max_credits=300,
    )
    run, spec = run_case(case, sandbox, tmp_path, API_KEY)
    figures = check_case(case, sandbox, tmp_path, run, spec, API_KEY)
    report.record("exact-kills", figures)
    assert figures["kills_simulated"] == 1
    assert figures["ledger_credits"] <= 300, f"spent {figures['ledger_credits']} credits with max_credits=300"
    assert_promises(figures)


def test_kill_after_a_page_truncated_by_balance(sandbox, tmp_path) -> None:
    # Balance 130 with pages of 50: page 3 is truncated to 30 records and the try stops; the top-up
    # try is killed right after re-fetching that page; the third try completes.
    case = exact_case(41, kills=[Kill("after_call", 1)], faults=[], start_balance=130)
    run, spec = run_case(case, sandbox, tmp_path, API_KEY)
    figures = check_case(case, sandbox, tmp_path, run, spec, API_KEY)
    report.record("exact-kills", figures)
    assert figures["balance_stops"] == 1 and figures["kills_simulated"] == 1
    assert_promises(figures)
    # the truncated page (paid once, kept) and the killed re-fetch of it were both paid again
    assert figures["refetched_pages"] == 2


def test_kill_after_the_last_page_is_committed_does_not_pay_it_again(sandbox, tmp_path) -> None:
    # The last page (9 of 9) is fetched and its checkpoint committed; the try dies before writing the
    # manifest. The checkpoint already says everything was fetched, so the next try must only close
    # the run (parts, manifest), not pay for the last page a second time.
    case = exact_case(42, kills=[Kill("on_page", 9)], faults=[])
    run, spec = run_case(case, sandbox, tmp_path, API_KEY)
    figures = check_case(case, sandbox, tmp_path, run, spec, API_KEY)
    report.record("exact-kills", figures)
    assert figures["kills_simulated"] == 1
    assert figures["ledger_credits"] == 430, f"paid {figures['ledger_credits']} credits for 430 records"
    assert_promises(figures)


@pytest.mark.parametrize("fault", ["truncated", "malformed", "reset"])
def test_min_balance_holds_after_a_billed_page_the_try_could_not_read(fault: str, sandbox, tmp_path) -> None:
    # Balance 1,000 and min_balance 900: two pages of 50 may be bought. The second is billed but
    # unreadable (cut short, garbled, or its connection reset after billing) and the try fails; its
    # charge is unknown but possible. The next try must count it against the floor, not spend another
    # 50 from a balance it last saw at 950: the workspace must never go below 900.
    label = {
        "truncated": "truncated body (billed)",
        "malformed": "malformed body (billed)",
        "reset": "connection reset (billed)",
    }
    rule = {"kind": fault, "at": [2], "path": "videos", "note": label[fault]}
    if fault == "reset":
        rule["billed"] = True
    case = exact_case(43, kills=[], faults=[rule], start_balance=1_000, min_balance=900)
    run, spec = run_case(case, sandbox, tmp_path, API_KEY)
    figures = check_case(case, sandbox, tmp_path, run, spec, API_KEY)
    report.record("exact-kills", figures)
    assert figures["stop_reason"] == "min_balance"
    assert sandbox.balance() >= 900, f"balance {sandbox.balance()} went below min_balance=900"
    assert_promises(figures)


def test_a_fresh_run_over_leftover_parts_writes_each_record_once(sandbox, tmp_path) -> None:
    # A folder without _manifest.json is incomplete, and without _checkpoint.json there is nothing
    # to resume: the next run starts afresh (here: a finished run whose manifest was deleted, which
    # is what is left when a checkpoint is lost). Its parts must replace the old ones, not be
    # appended to them.
    from upath import UPath

    from airflow_provider_unifapi.storage.run_folder import iter_run_records
    from tests.chaos.runner import TrySpec, run_try

    sandbox.reset(hashtags=[{"id": "4545", "name": "leftover", "video_count": 230}], **CLEAN_FEED)
    out = tmp_path / "out"
    for fmt in ("jsonl", "jsonl.gz"):
        folder = out / fmt.replace(".", "_")
        spec = TrySpec(
            base_url=sandbox.url,
            hashtag_id="4545",
            folder_url=f"file://{folder}",
            output_format=fmt,
            page_size=50,
        )
        assert run_try(spec, API_KEY).outcome == "done"
        (folder / "_manifest.json").unlink()
        again = run_try(spec, API_KEY)
        assert again.outcome == "done", again.error_text
        ids = [str(r["id"]) for r in iter_run_records(UPath(f"file://{folder}"))]
        assert len(ids) == len(set(ids)) == again.summary["records"] == 230, (
            f"{fmt}: {len(ids)} records in the parts ({len(set(ids))} distinct), the manifest says {again.summary['records']}"
        )
