"""XCom mode's budget across tries: Airflow >= 3.3 keeps what earlier tries spent in the task state
store; older Airflow keeps nothing across tries (each try has the whole budget), as the README says."""

from __future__ import annotations

import pytest

from airflow_provider_unifapi._compat import AIRFLOW_VERSION
from tests.conftest import assert_no_key

TAG = "4545"
VIDEOS = 430
MAX_CREDITS = 250
HAS_STATE_STORE = tuple(int(p) for p in AIRFLOW_VERSION.split(".")[:2]) >= (3, 3)


@pytest.fixture
def sb(unifapi_conn):
    unifapi_conn.add_hashtag(TAG, "xcombudget", VIDEOS)
    # Calls 4-9 fail (the client's 5 retries run out: the first try fails after paying 3 pages);
    # call 10 fails once more, then the retry pages normally.
    unifapi_conn.faults(
        {"kind": "error", "status": 503, "type": "upstream_unavailable", "at": list(range(4, 11))}
    )
    return unifapi_conn


def _state_rows(dag_id: str) -> int:
    from airflow.utils.session import create_session
    from sqlalchemy import text

    with create_session() as session:
        return int(
            session.execute(
                text("select count(*) from task_state_store where dag_id = :d"), {"d": dag_id}
            ).scalar_one()
        )


def test_a_retry_counts_what_earlier_tries_spent(sb, dag_runner, capfd):
    path = dag_runner.write(
        "xcom_budget",
        f"""
        TikTokHashtagVideosOperator(
            task_id="collect", hashtag_id={TAG!r}, max_records=400, max_credits={MAX_CREDITS},
            retries=1, retry_delay=0,
        )
        """,
    )
    result = dag_runner.run(path, capsys=capfd)
    assert result.state == "success"
    records = result.xcoms["collect"]
    paid = [c for c in sb.calls("videos") if c["status"] == 200]
    first_try = sum(c["credits_charged"] for c in paid[:3])
    assert first_try == 150  # three full pages before the first try failed
    truth = sb.truth(TAG)
    if HAS_STATE_STORE:
        # the retry had only what was left: never past max_credits over both tries
        assert sb.credits_charged() == MAX_CREDITS
        assert 0 < len(records) <= MAX_CREDITS - first_try  # (duplicates across pages are dropped)
        assert "earlier tries spent 150 credits confirmed" in result.log_text
        assert _state_rows("xcom_budget") == 0  # a finished run's spend is settled: nothing left behind
    else:
        # documented: before Airflow 3.3 nothing survives a try in XCom mode, so each try has the
        # whole budget (here 150 + 250 credits over the two tries)
        assert sb.credits_charged() == first_try + MAX_CREDITS
        assert MAX_CREDITS - first_try < len(records) <= MAX_CREDITS
    # records are never kept across tries: the retry paged from the start, without duplicates
    assert [r["id"] for r in records] == truth[: len(records)]
    assert_no_key(result.log_text, records)


def test_a_retry_counts_possibly_billed_credits_too(sb, dag_runner, capfd):
    sb.clear_faults()
    sb.faults({"kind": "truncated", "at": [2]})  # billed, body cut short: the try fails, cost unknown
    path = dag_runner.write(
        "xcom_budget_spent",
        f"""
        TikTokHashtagVideosOperator(
            task_id="collect", hashtag_id={TAG!r}, max_records=400, max_credits=100,
            retries=1, retry_delay=0,
        )
        """,
    )
    result = dag_runner.run(path, capsys=capfd)
    assert result.state == "success"
    calls = sb.calls("videos")
    if HAS_STATE_STORE:
        # page 1 (50) + the unreadable page 2 (50, possibly billed): the budget is gone, so the retry
        # makes no call at all and returns no records
        assert sb.credits_charged() == 100 and result.xcoms["collect"] == []
        assert len(calls) == 2
    else:  # documented: a fresh budget per try
        assert sb.credits_charged() == 200 and len(result.xcoms["collect"]) == 100
        assert len(calls) == 4
