"""Billing: 1 credit a record, 1 minimum, truncation, 402, the max-credits cap, and the ledger."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from airflow_provider_unifapi.sandbox import SandboxServer

from . import ERROR_SCHEMA, PAGE_SCHEMA, api_client, page_all, serve, validate

HASHTAGS = [
    {"id": "5050", "name": "cats", "video_count": 500},
    {"id": "404040", "name": "emptytag", "video_count": 0},
]


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    # No duplicates or short pages here: page contents are then plain slices of the truth.
    yield from serve(hashtags=HASHTAGS, duplicate_rate=0.0, short_page_rate=0.0)


def _page(client: httpx.Client, cursor: str | None = None, limit: int = 50, **headers: str) -> httpx.Response:
    params: dict[str, Any] = {"limit": limit}
    if cursor:
        params["cursor"] = cursor
    return client.get("/tiktok/hashtags/5050/videos", params=params, headers=headers)


def _ids(resp: httpx.Response) -> list[str]:
    return [v["id"] for v in resp.json()["data"]]


def test_one_credit_per_record_and_the_ledger_agrees(client: httpx.Client, admin: httpx.Client) -> None:
    balance = 1_000_000
    for limit in (1, 7, 50):
        billing = _page(client, limit=limit).json()["billing"]
        balance -= limit
        assert billing == {
            "credits_charged": limit,
            "records_charged": limit,
            "balance_remaining": balance,
            "truncated_due_to_balance": False,
        }
    assert client.get("/tiktok/hashtags/5050").json()["billing"]["credits_charged"] == 1
    empty = client.get("/tiktok/hashtags/404040/videos").json()["billing"]
    assert empty["credits_charged"] == 1 and empty["records_charged"] == 0
    assert admin.get("/_sandbox/balance").json() == {"balance": balance - 2}
    ledger = admin.get("/_sandbox/ledger").json()
    assert ledger["totals"]["credits_charged"] == 1_000_000 - (balance - 2)
    assert ledger["totals"]["records_served"] == 1 + 7 + 50 + 1
    assert [c["credits_charged"] for c in ledger["calls"]] == [1, 7, 50, 1, 1]
    assert [c["balance_after"] for c in ledger["calls"]][-1] == balance - 2
    first = ledger["calls"][0]
    assert first["endpoint"] == "videos" and first["hashtag_id"] == "5050" and first["offset"] == 0
    assert first["limit"] == 1 and first["status"] == 200 and first["fault"] is None
    assert first["records"] == 1 and first["request_id"].startswith("unif_")


def test_truncated_page_skips_the_unpaid_records(client: httpx.Client, admin: httpx.Client) -> None:
    truth = admin.get("/_sandbox/hashtags/5050/truth").json()["ids"]
    admin.post("/_sandbox/balance", json={"set": 30})
    resp = _page(client, limit=50)
    validate(PAGE_SCHEMA, resp.json())
    doc = resp.json()
    assert _ids(resp) == truth[:30]
    assert doc["billing"] == {
        "credits_charged": 30,
        "records_charged": 30,
        "balance_remaining": 0,
        "truncated_due_to_balance": True,
    }
    assert doc["pagination"]["has_more"] is True
    admin.post("/_sandbox/balance", json={"add": 1000})
    # Worst case on purpose: the next cursor jumps past records 30..49, which are lost to a client
    # that follows it. Re-asking with the input cursor (none here) gets them back.
    assert _ids(_page(client, doc["pagination"]["next_cursor"], limit=10)) == truth[50:60]
    assert _ids(_page(client, None, limit=50))[30:] == truth[30:50]


def test_402_when_the_minimum_cannot_be_paid(client: httpx.Client, admin: httpx.Client) -> None:
    admin.post("/_sandbox/balance", json={"set": 0})
    resp = _page(client, limit=42)
    assert resp.status_code == 402
    validate(ERROR_SCHEMA, resp.json())
    assert resp.json()["error"]["type"] == "insufficient_credits"
    assert resp.json()["error"]["billing"] == {
        "balance_remaining": 0,
        "credits_required": 42,
        "credits_charged": 0,
        "records_charged": 0,
        "truncated_due_to_balance": False,
    }
    empty = client.get("/tiktok/hashtags/404040/videos")
    assert empty.status_code == 402 and empty.json()["error"]["billing"]["credits_required"] == 1
    assert client.get("/tiktok/hashtags/5050").status_code == 402
    assert client.get("/tiktok/search/hashtags", params={"q": "cats"}).status_code == 402
    ledger = admin.get("/_sandbox/ledger").json()
    assert ledger["totals"]["credits_charged"] == 0
    assert ledger["totals"]["by_status"] == {"402": 4}
    assert all(c["error_type"] == "insufficient_credits" for c in ledger["calls"])
    assert admin.get("/_sandbox/balance").json()["balance"] == 0


def test_max_credits_header_caps_without_skipping(client: httpx.Client, admin: httpx.Client) -> None:
    truth = admin.get("/_sandbox/hashtags/5050/truth").json()["ids"]
    resp = _page(client, limit=50, **{"X-Unifapi-Max-Credits": "5"})
    doc = resp.json()
    assert _ids(resp) == truth[:5]
    assert doc["billing"]["credits_charged"] == 5 and doc["billing"]["truncated_due_to_balance"] is False
    assert doc["pagination"]["has_more"] is True
    assert _ids(_page(client, doc["pagination"]["next_cursor"], limit=3)) == truth[5:8]
    assert admin.get("/_sandbox/ledger").json()["calls"][0]["max_credits"] == 5
    for bad in ("0", "-1", "abc", "1.5"):
        bad_resp = _page(client, **{"X-Unifapi-Max-Credits": bad})
        assert bad_resp.status_code == 400, bad
        assert bad_resp.json()["error"]["type"] == "validation_error"
    # A cap above the page changes nothing.
    assert len(_ids(_page(client, limit=10, **{"X-Unifapi-Max-Credits": "1000"}))) == 10


def test_admin_balance_set_and_add(admin: httpx.Client) -> None:
    assert admin.post("/_sandbox/balance", json={"set": 10}).json() == {"balance": 10}
    assert admin.post("/_sandbox/balance", json={"add": 5}).json() == {"balance": 15}
    assert admin.post("/_sandbox/balance", json={"set": -1}).status_code == 400
    assert admin.post("/_sandbox/balance", json={}).status_code == 400
    assert admin.get("/_sandbox/balance").json() == {"balance": 15}


def test_concurrent_clients_are_charged_exactly(server: SandboxServer, admin: httpx.Client) -> None:
    server.state.reset({"balance": 10_000})
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with api_client(server) as c:
                page_all(c, "5050", 50)
        except BaseException as exc:  # reported by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    ledger = admin.get("/_sandbox/ledger").json()
    assert ledger["totals"]["calls"] == 4 * 10 and ledger["totals"]["credits_charged"] == 4 * 500
    assert admin.get("/_sandbox/balance").json()["balance"] == 10_000 - 2000
    assert [c["seq"] for c in ledger["calls"]] == list(range(1, 41))
    assert len(admin.get("/_sandbox/ledger", params={"since": 35}).json()["calls"]) == 5
