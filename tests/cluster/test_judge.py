"""The cluster test's judge on small hand-made runs: a clean one is all zero, each fault is counted.

Pure functions, no cluster: collected by ``make test`` too (the cluster run itself is not).
"""

from __future__ import annotations

from typing import Any

from tests.cluster.judge import MUST_BE_ZERO, Kill, Lake, judge

KEY = "sk_test_" + "ab" * 16
KILL_AT = 1000.0


def call(seq: int, hashtag: str, offset: int, ts: float, credits: int = 50) -> dict[str, Any]:
    return {
        "seq": seq,
        "ts": ts,
        "endpoint": "videos",
        "hashtag_id": hashtag,
        "offset": offset,
        "credits_charged": credits,
        "status": 200,
    }


def clean_run() -> dict[str, Any]:
    """Two batches of one hashtag; batch 0 was killed with its page at offset 50 in flight."""
    truths = {"1": ["a", "b", "c"], "2": ["d", "e"]}
    lake = Lake(
        manifests={
            0: {"hashtags": [{"hashtag_id": "1", "status": "ok"}], "totals": {"credits_spent": 150}},
            1: {"hashtags": [{"hashtag_id": "2", "status": "ok"}], "totals": {"credits_spent": 50}},
        },
        ids={h: list(ids) for h, ids in truths.items()},
        stray={"1": [], "2": []},
        texts=[b'{"id": "a"}'],
    )
    calls = [
        call(1, "1", 0, KILL_AT - 2),
        call(2, "1", 50, KILL_AT + 0.01),  # in flight at the kill: answered just after it
        call(3, "2", 0, KILL_AT + 1),
        call(4, "1", 50, KILL_AT + 40),  # the retry pays it again
    ]
    return {
        "chunks": {0: ["1"], 1: ["2"]},
        "lake": lake,
        "truths": truths,
        "calls": calls,
        "kills": [Kill("worker-a", KILL_AT, [0])],
        "max_concurrency": 1,
        "max_credits": 150,
        "api_key": KEY,
        "texts": ["a task log"],
    }


def zeros(figures: dict[str, Any]) -> dict[str, Any]:
    return {n: figures[n] for n in MUST_BE_ZERO if figures[n]}


def test_a_clean_run_is_all_zero_and_counts_the_page_in_flight():
    figures = judge(**clean_run())
    assert zeros(figures) == {}
    assert figures["repaid_pages"] == 1 and figures["repaid_credits"] == 50
    assert figures["records"] == figures["expected_records"] == 5


def test_each_fault_is_counted():
    cases: dict[str, Any] = {}
    run = clean_run()
    run["lake"].ids["1"] = ["a", "c"]
    cases["records_lost"] = run
    run = clean_run()
    run["lake"].ids["2"] = ["d", "e", "d"]
    cases["duplicates"] = run
    run = clean_run()
    run["lake"].stray["2"] = ["_checkpoint.json"]
    cases["stray_objects"] = run
    run = clean_run()
    run["calls"].append(call(5, "2", 0, KILL_AT + 50))  # batch 1 was not killed
    cases["repaid_pages_unexplained"] = run
    run = clean_run()
    run["calls"].append(call(5, "1", 0, KILL_AT + 50))  # a second page re-paid: one chain, one page
    cases["repaid_pages_unexplained "] = run
    run = clean_run()
    run["lake"].manifests[0]["totals"]["credits_spent"] = 100  # less than the ledger charged
    cases["credits_unaccounted"] = run
    run = clean_run()
    run["max_credits"] = 149
    cases["budget_breaches"] = run
    run = clean_run()
    run["lake"].texts.append(f"Bearer {KEY}".encode())
    cases["key_hits"] = run
    for name, spoiled in cases.items():
        figures = judge(**spoiled)
        assert figures[name.strip()] >= 1, (name, zeros(figures))
