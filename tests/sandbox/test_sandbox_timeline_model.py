"""Timeline mode's model, measured over HTTP through the free truth endpoint: arrivals per day, where
new videos enter for ``entry_rank`` low and high, and old videos decaying out of the visible cap."""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from airflow_provider_unifapi.sandbox import SandboxServer
from tests.sandbox import serve

START = 1_748_736_000
BIG, SMALL = "9200", "9201"


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    yield from serve(
        timeline=True,
        hashtags=[
            {"id": BIG, "name": "bigtimeline", "video_count": 5_000},
            {"id": SMALL, "name": "smalltimeline", "video_count": 300},
        ],
        daily_new_videos_by_hashtag={SMALL: 20},
    )


def timeline(admin: httpx.Client, hid: str, **params: Any) -> dict[str, Any]:
    resp = admin.get(f"/_sandbox/hashtags/{hid}/timeline", params=params)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def test_new_videos_per_day_around_the_rate(admin: httpx.Client) -> None:
    admin.post("/_sandbox/clock", json={"advance_days": 30}).raise_for_status()
    for hid, rate in ((BIG, 200), (SMALL, 20)):
        days = timeline(admin, hid, ids="false")["days"][:30]
        counts = [d["created"] for d in days]
        assert abs(statistics.mean(counts) - rate) < 4 * (rate / 30) ** 0.5, (hid, counts)
        assert 0.4 * rate < statistics.pvariance(counts) < 2.5 * rate, "Poisson-like: variance ~ mean"
        assert [d["from"] for d in days] == [START + k * 86_400 for k in range(30)]


def entry_ranks(admin: httpx.Client, entry_rank: str) -> list[float]:
    """Rank (0 = top, 1 = bottom of the cap) of each new video at the first hourly clock it is visible."""
    admin.post("/_sandbox/reset", json={"entry_rank": entry_rank}).raise_for_status()
    entered: dict[str, float] = {}
    for _ in range(48):
        admin.post("/_sandbox/clock", json={"advance_hours": 1}).raise_for_status()
        ids = timeline(admin, BIG)["ids"]
        for rank, vid in enumerate(ids):
            if int(vid) >> 32 >= START and vid not in entered:
                entered[vid] = rank / len(ids)
    return list(entered.values())


def test_entry_rank_low_and_high_put_new_videos_at_opposite_ends(admin: httpx.Client) -> None:
    low, high = entry_ranks(admin, "low"), entry_ranks(admin, "high")
    created = sum(d["created"] for d in timeline(admin, BIG, ids="false")["days"])
    assert len(high) == created and len(low) >= 0.95 * created, "(nearly) every new video shows up"

    def share(ranks: list[float], lo: float, hi: float) -> float:
        return sum(lo <= r < hi for r in ranks) / len(ranks)

    # low: most enter in the bottom half, a few (the viral ones) high up
    assert share(low, 0.5, 1.0) > 0.65 and 0 < share(low, 0.0, 0.1) < 0.05
    # high: most enter in the top quarter, a third or more in the top tenth, hardly any low
    assert share(high, 0.0, 0.25) > 0.6 and share(high, 0.0, 0.1) > 0.3 and share(high, 0.5, 1.0) < 0.1
    assert statistics.median(low) > 0.5 > 0.2 > statistics.median(high)


def test_old_videos_decay_out_of_the_visible_cap(admin: httpx.Client) -> None:
    admin.post("/_sandbox/reset", json={"visible_cap": 600, "decay_days": 2}).raise_for_status()
    backlog, cohort, oldest = [], [], []
    for day in range(1, 26):
        admin.post("/_sandbox/clock", json={"advance_days": 1}).raise_for_status()
        info = timeline(admin, BIG)
        assert info["visible_count"] == 600
        backlog.append(info["backlog"]["visible_now"])
        cohort.append(info["days"][0]["visible_now"])
        oldest.append((info["clock"] - min(int(v) >> 32 for v in info["ids"])) / 86_400)
        first_day = info["days"][0]
        assert first_day["visible_now"] <= first_day["ever_visible"] <= first_day["created"], f"day {day}"
    assert backlog[0] > 100 and backlog[-1] == 0, backlog
    assert max(cohort) > 100 and cohort[-1] < 10, cohort
    assert max(oldest) < 20, "nothing stays visible for ever: the decay wins over any heat"
    # the backlog's ever-visible count is the truth's memory: it never goes down
    assert timeline(admin, BIG, ids="false")["backlog"]["ever_visible"] >= backlog[0]
