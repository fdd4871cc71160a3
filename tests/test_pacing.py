"""The client-side pacer: chains sharing one client use the workspace limit without 429 storms.

Judged on the sandbox's ledger (server timestamps and statuses), not on the test's wall time.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from airflow_provider_unifapi.client.pacing import RatePacer
from airflow_provider_unifapi.models import RateLimitInfo
from tests.conftest import sandbox_client

CHAINS = 8
LIMIT = 600  # requests a minute: 10 a second
BURST = 5
LATENCY_MS = 100  # 8 chains x 10 pages/s each = 80/s wanted, 8x the limit


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def info(limit: int, remaining: int) -> RateLimitInfo:
    from datetime import datetime, timezone

    return RateLimitInfo(limit=limit, remaining=remaining, reset=None, seen_at=datetime.now(timezone.utc))


def test_pacer_probes_first_then_spaces_reservations_at_the_limit():
    clock = FakeClock()
    pacer = RatePacer(clock)
    assert pacer.reserve() == (0.0, True)  # the probe
    wait, reserved = pacer.reserve()
    assert not reserved and wait > 0  # the others wait for the probe's answer
    pacer.observe(info(60, 2))  # 1 token a second, 2 left
    waits = [pacer.reserve()[0] for _ in range(5)]
    assert waits == pytest.approx([0.0, 0.0, 1.0, 2.0, 3.0])
    clock.now += 3.0
    # Another worker spent the bucket: the server's word lowers the local one, never raises it.
    pacer.observe(info(60, 0))
    assert pacer.reserve()[0] == pytest.approx(1.0)


def test_pacer_holds_every_chain_for_retry_after_and_stays_off_without_headers():
    clock = FakeClock()
    pacer = RatePacer(clock)
    pacer.reserve()
    pacer.observe(None)  # no headers: the server does not limit
    assert [pacer.reserve() for _ in range(3)] == [(0.0, True)] * 3
    pacer.observe(None, retry_after=2)  # a 429 came anyway (another client)
    assert pacer.reserve()[0] == pytest.approx(2.0)


def _page_all(client: Any, hashtag_id: str, errors: list[BaseException]) -> None:
    try:
        for _ in client.iter_video_pages(hashtag_id, limit=50):
            pass
    except BaseException as exc:  # pragma: no cover - reported by the test
        errors.append(exc)


def _run_chains(sandbox: Any, *, pace: bool) -> list[dict[str, Any]]:
    tags = [{"id": str(91000 + i), "name": f"pace{i}", "video_count": 600} for i in range(CHAINS)]
    sandbox.reset(
        rate_limit_per_minute=LIMIT, rate_limit_burst=BURST, latency_ms=LATENCY_MS, hashtags=tags, seed=3
    )
    errors: list[BaseException] = []
    with sandbox_client(sandbox, pace_requests=pace, max_connections=CHAINS, max_retry_wait=2.0) as client:
        threads = [threading.Thread(target=_page_all, args=(client, t["id"], errors)) for t in tags]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert not errors
    return sandbox.calls("videos")


def test_chains_sharing_a_paced_client_meet_no_429s_and_run_at_the_limit(sandbox):
    calls = _run_chains(sandbox, pace=True)
    statuses = [c["status"] for c in calls]
    ok = [c for c in calls if c["status"] == 200]
    assert len(ok) >= CHAINS * 12  # every chain paged its 600 records (12+ pages of 50)
    assert statuses.count(429) <= 1
    # The rate past the burst, by the sandbox's own clock: within 10 % of the limit (never above).
    span = ok[-1]["ts"] - ok[0]["ts"]
    rate = (len(ok) - BURST) / span * 60
    print(f"paced: {len(ok)} pages, {statuses.count(429)} 429s, {rate:.0f}/min of {LIMIT}/min")
    assert 0.9 * LIMIT <= rate <= 1.05 * LIMIT


def test_unpaced_chains_meet_a_429_storm(sandbox):
    # The control: the same job without the pacer, so the test above proves something.
    calls = _run_chains(sandbox, pace=False)
    statuses = [c["status"] for c in calls]
    print(f"unpaced: {statuses.count(200)} pages, {statuses.count(429)} 429s")
    assert statuses.count(429) > statuses.count(200) // 4
