"""Fault plans, seen by a raw httpx client: errors, resets, broken bodies, slow answers."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import pytest

from airflow_provider_unifapi.sandbox import SandboxServer

from . import ERROR_SCHEMA, PAGE_SCHEMA, api_client, serve, validate

VIDEOS = "/tiktok/hashtags/5050/videos"


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    yield from serve(hashtags=[{"id": "5050", "name": "cats", "video_count": 500}], short_page_rate=0.0)


def _plan(admin: httpx.Client, *rules: dict[str, Any]) -> None:
    admin.post("/_sandbox/faults", json={"plan": list(rules)}).raise_for_status()


def _calls(admin: httpx.Client) -> list[dict[str, Any]]:
    return admin.get("/_sandbox/ledger").json()["calls"]


def _balance(admin: httpx.Client) -> int:
    return admin.get("/_sandbox/balance").json()["balance"]


def test_error_at_call_numbers_with_retry_after(client: httpx.Client, admin: httpx.Client) -> None:
    admin.get("/_sandbox/health")  # admin calls are not API calls
    _plan(
        admin,
        {"kind": "error", "status": 503, "at": [2, 4], "retry_after": 2},
        {"kind": "error", "status": 429, "at": [3], "retry_after": 0.5},
    )
    responses = [client.get(VIDEOS, params={"limit": 5}) for _ in range(5)]
    assert [r.status_code for r in responses] == [200, 503, 429, 503, 200]
    assert responses[1].headers["Retry-After"] == "2" and responses[2].headers["Retry-After"] == "0.5"
    assert "Retry-After" not in responses[0].headers
    for r in responses[1:4]:
        validate(ERROR_SCHEMA, r.json())
        assert r.json()["error"]["request_id"] == r.headers["X-Request-Id"]
    assert responses[1].json()["error"]["type"] == "upstream_unavailable"
    assert _balance(admin) == 1_000_000 - 10, "errors are never charged"
    calls = _calls(admin)
    assert [c["fault"] for c in calls] == [None, "error", "error", "error", None]
    assert [c["credits_charged"] for c in calls] == [5, 0, 0, 0, 5]
    assert calls[2]["error_type"] == "rate_limited" and calls[2]["status"] == 429
    view = admin.get("/_sandbox/faults").json()
    assert view["fired"] == [2, 1] and view["calls"] == 5


def test_html_error_page(client: httpx.Client, admin: httpx.Client) -> None:
    _plan(
        admin,
        {"kind": "error", "status": 502, "html": True, "at": [1]},
        {"kind": "error", "status": 504, "at": [2]},
    )  # no usual type for 504: HTML too
    for status in (502, 504):
        resp = client.get(VIDEOS)
        assert resp.status_code == status
        assert resp.headers["Content-Type"].startswith("text/html")
        assert f"{status}" in resp.text and "<html>" in resp.text
        assert resp.headers["X-Request-Id"].startswith("unif_")


def test_reset_unbilled_and_billed(client: httpx.Client, admin: httpx.Client) -> None:
    _plan(admin, {"kind": "reset", "at": [1]}, {"kind": "reset", "billed": True, "at": [2]})
    for _ in range(2):
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            client.get(VIDEOS, params={"limit": 10})
    assert client.get(VIDEOS, params={"limit": 10}).status_code == 200  # a new connection works
    calls = _calls(admin)
    assert [(c["status"], c["fault"], c["credits_charged"]) for c in calls] == [
        (None, "reset", 0),
        (None, "reset", 10),
        (200, None, 10),
    ]
    assert _balance(admin) == 1_000_000 - 20
    assert admin.get("/_sandbox/ledger").json()["totals"]["by_status"] == {"no_response": 2, "200": 1}


def test_truncated_body_is_billed(client: httpx.Client, admin: httpx.Client) -> None:
    _plan(admin, {"kind": "truncated", "at": [1]})
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        client.get(VIDEOS, params={"limit": 20})
    calls = _calls(admin)
    assert (calls[0]["status"], calls[0]["fault"], calls[0]["credits_charged"]) == (200, "truncated", 20)
    assert _balance(admin) == 1_000_000 - 20
    # Streaming shows the half body arriving before the connection dies.
    _plan(admin, {"kind": "truncated", "at": [1]})
    received = b""
    expected = 0
    with (
        pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)),
        client.stream("GET", VIDEOS, params={"limit": 20}) as resp,
    ):
        assert resp.status_code == 200
        expected = int(resp.headers["Content-Length"])
        for chunk in resp.iter_raw():
            received += chunk
    assert 0 < len(received) < expected


def test_malformed_body_is_billed_and_not_json(client: httpx.Client, admin: httpx.Client) -> None:
    _plan(admin, {"kind": "malformed", "at": [1]}, {"kind": "malformed", "billed": False, "at": [2]})
    for _ in range(2):
        resp = client.get(VIDEOS, params={"limit": 7})
        assert resp.status_code == 200 and resp.headers["Content-Type"] == "application/json"
        assert resp.content.startswith(b'{"request_id":"unif_')
        with pytest.raises(json.JSONDecodeError):
            json.loads(resp.content)
    assert [c["credits_charged"] for c in _calls(admin)] == [7, 0]
    assert client.get(VIDEOS).status_code == 200  # the connection stays usable


def test_slow_answer_is_billed_only_when_written(
    client: httpx.Client, admin: httpx.Client, server: SandboxServer
) -> None:
    _plan(admin, {"kind": "slow", "delay_s": 0.3, "at": [1]}, {"kind": "slow", "delay_s": 0.8, "at": [2]})
    started = time.perf_counter()
    resp = client.get(VIDEOS, params={"limit": 3})
    assert resp.status_code == 200 and time.perf_counter() - started >= 0.3
    with pytest.raises(httpx.ReadTimeout), api_client(server, timeout=0.2) as impatient:
        impatient.get(VIDEOS, params={"limit": 3})
    deadline = time.monotonic() + 5
    while len(_calls(admin)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    calls = _calls(admin)
    assert [(c["status"], c["fault"], c["credits_charged"]) for c in calls] == [
        (200, "slow", 3),
        (None, "slow", 0),
    ]
    assert calls[1]["error_type"] == "client_disconnected"
    assert _balance(admin) == 1_000_000 - 3


def test_a_call_in_flight_across_a_reset_is_not_the_new_workspaces(
    client: httpx.Client, admin: httpx.Client, server: SandboxServer
) -> None:
    # A test's abandoned call (its client timed out) must not land in the next test's ledger and
    # balance: it arrived in a workspace that the reset replaced.
    _plan(admin, {"kind": "slow", "delay_s": 0.6, "at": [1]})
    with pytest.raises(httpx.ReadTimeout), api_client(server, timeout=0.2) as impatient:
        impatient.get(VIDEOS, params={"limit": 7})
    admin.post("/_sandbox/reset", json={"balance": 5_000}).raise_for_status()
    time.sleep(0.8)  # the slow call wakes up in the new workspace
    assert _calls(admin) == [] and _balance(admin) == 5_000
    assert client.get(VIDEOS, params={"limit": 2}).status_code == 200
    assert [(c["status"], c["credits_charged"]) for c in _calls(admin)] == [(200, 2)]
    assert _balance(admin) == 5_000 - 2


def test_rate_rules_replay_identically(client: httpx.Client, admin: httpx.Client) -> None:
    def pattern(seed: int) -> list[int]:
        _plan(admin, {"kind": "error", "status": 500, "rate": 0.3, "seed": seed})
        return [client.get("/tiktok/hashtags/5050").status_code for _ in range(40)]

    first = pattern(7)
    assert 3 <= first.count(500) <= 25
    assert pattern(7) == first
    assert pattern(8) != first


def test_times_and_path_filters(client: httpx.Client, admin: httpx.Client) -> None:
    _plan(
        admin,
        {"kind": "error", "status": 503, "path": "hashtag", "times": 2},
        {"kind": "error", "status": 500, "path": "search"},
    )
    statuses = [
        client.get(p).status_code
        for p in ("/tiktok/hashtags/5050", VIDEOS, "/tiktok/hashtags/5050", "/tiktok/hashtags/5050")
    ]
    assert statuses == [503, 200, 503, 200]
    assert client.get("/tiktok/search/hashtags", params={"q": "cats"}).status_code == 500
    assert admin.get("/_sandbox/faults").json()["fired"] == [2, 1]
    admin.delete("/_sandbox/faults").raise_for_status()
    assert client.get("/tiktok/search/hashtags", params={"q": "cats"}).status_code == 200


def test_installing_a_plan_restarts_call_numbers(client: httpx.Client, admin: httpx.Client) -> None:
    for _ in range(3):
        client.get("/tiktok/hashtags/5050")
    _plan(admin, {"kind": "error", "status": 500, "at": [1]})
    assert client.get("/tiktok/hashtags/5050").status_code == 500
    assert client.get("/tiktok/hashtags/5050").status_code == 200


def test_bad_plans_are_refused(admin: httpx.Client) -> None:
    for rule in (
        {"kind": "explode"},
        {"kind": "error", "status": 200},
        {"kind": "slow"},
        {"kind": "error", "rate": 2},
        {"kind": "reset", "at": [0]},
        {"kind": "error", "typo": 1},
        {"kind": "error", "path": "nowhere"},
    ):
        resp = admin.post("/_sandbox/faults", json={"plan": [rule]})
        assert resp.status_code == 400, rule
    assert admin.get("/_sandbox/faults").json()["plan"] == []


def test_shape_fault_page_is_valid_json_but_not_the_schema(client: httpx.Client, admin: httpx.Client) -> None:
    _plan(admin, {"kind": "shape", "at": [1]})
    doc = client.get(VIDEOS, params={"limit": 4}).json()
    assert all("id" not in v for v in doc["data"]) and doc["billing"]["credits_charged"] == 4
    with pytest.raises(jsonschema.ValidationError):
        validate(PAGE_SCHEMA, doc)
    assert _calls(admin)[0]["fault"] == "shape"
