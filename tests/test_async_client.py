"""AsyncUnifAPIClient behaves exactly like UnifAPIClient on the same sandbox scenario."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from airflow_provider_unifapi import exceptions as ex
from airflow_provider_unifapi.client import AsyncUnifAPIClient
from tests.conftest import API_KEY, async_sandbox_client, sandbox_client

SCENARIO = (
    {"kind": "error", "status": 429, "type": "rate_limited", "retry_after": 0, "at": [2]},
    {"kind": "error", "status": 503, "type": "upstream_unavailable", "at": [4]},
    {"kind": "reset", "at": [6]},
)


def _summary(pages):
    return {
        "ids": [v.id for p in pages for v in p.data],
        "attempts": [p.call_stats.attempts for p in pages],
        "possibly_billed_credits": [p.call_stats.possibly_billed_credits for p in pages],
        "credits": [p.billing.credits_charged for p in pages],
        "cursors": [p.pagination.next_cursor for p in pages],
    }


def _run_sync(sandbox):
    sandbox.reset(hashtags=[{"id": "8080", "name": "parity", "video_count": 333}])
    sandbox.faults(*SCENARIO)
    with sandbox_client(sandbox) as client:
        pages = list(client.iter_video_pages("8080", limit=25))
        balance = client.last_balance.balance
    return _summary(pages), [c["status"] for c in sandbox.calls()], balance


def _run_async(sandbox):
    sandbox.reset(hashtags=[{"id": "8080", "name": "parity", "video_count": 333}])
    sandbox.faults(*SCENARIO)

    async def go():
        async with async_sandbox_client(sandbox) as client:
            pages = [page async for page in client.iter_video_pages("8080", limit=25)]
            return pages, client.last_balance.balance

    pages, balance = asyncio.run(go())
    return _summary(pages), [c["status"] for c in sandbox.calls()], balance


def test_async_matches_sync_on_the_same_scenario(sandbox):
    sync_result = _run_sync(sandbox)
    async_result = _run_async(sandbox)
    assert sync_result == async_result
    summary, statuses, _ = sync_result
    assert 429 in statuses and 503 in statuses  # the scenario really injected its faults
    assert list(dict.fromkeys(summary["ids"])) == sandbox.truth("8080")


def test_async_errors_are_the_same_types(sandbox):
    sandbox.set_balance(0)

    async def go():
        async with async_sandbox_client(sandbox) as client:
            with pytest.raises(ex.UnifAPIInsufficientCreditsError) as caught:
                await client.get_video_page("5050")
            assert client.last_balance.balance == 0
            with pytest.raises(ex.UnifAPIInputError):
                await client.get_video_page("../5050")
            return caught.value

    err = asyncio.run(go())
    assert err.balance_remaining == 0 and err.request_id.startswith("unif_")
    assert len(sandbox.calls()) == 1


def test_async_search_and_resolve(sandbox):
    sandbox.add_hashtag("9100", "asyncparity", 3)

    async def go():
        async with async_sandbox_client(sandbox) as client:
            return await client.resolve_hashtag_id("asyncparity")

    resolved = asyncio.run(go())
    assert resolved.hashtag.id == "9100"
    assert resolved.credits_charged == sandbox.credits_charged()


class _BreaksMidBody(httpx.AsyncByteStream):
    async def __aiter__(self):
        yield b'{"request_id": "unif_cut", "data": ['
        raise httpx.ReadError("connection lost mid-body")


@pytest.mark.parametrize(("status", "billed"), [(200, True), (503, False)])
def test_async_body_cut_short_is_typed_and_billed_only_on_success(status, billed):
    # The sandbox cannot break an error body mid-way; a MockTransport can.
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, stream=_BreaksMidBody())

    async def go():
        async with AsyncUnifAPIClient(
            API_KEY, "https://api.unifapi.com", transport=httpx.MockTransport(handler), max_retries=0
        ) as client:
            with pytest.raises(ex.UnifAPIError) as caught:
                await client.get_video_page("42", limit=4)
            return caught.value, client.possibly_billed_credits

    err, client_total = asyncio.run(go())
    expected = ex.UnifAPIInvalidResponseError if billed else ex.UnifAPITransportError
    assert type(err) is expected and err.status == status and err.may_have_been_billed is billed
    assert err.possibly_billed_credits == client_total == (4 if billed else 0)
