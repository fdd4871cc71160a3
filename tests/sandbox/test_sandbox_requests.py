"""Auth, validation, configured 404/invalid ids, request ids and rate limits."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from airflow_provider_unifapi.sandbox import SandboxServer
from airflow_provider_unifapi.sandbox.ratelimit import TokenBucket

from . import ERROR_SCHEMA, KEY, admin_client, api_client, serve, validate

VIDEOS = "/tiktok/hashtags/5050/videos"
RID = re.compile(r"^unif_[0-9a-f]{16}$")


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    yield from serve(not_found_ids=["666"], invalid_ids=["777"])


def _error(resp: httpx.Response, status: int, etype: str) -> dict:
    assert resp.status_code == status, resp.text
    doc = resp.json()
    validate(ERROR_SCHEMA, doc)
    assert doc["error"]["type"] == etype
    return doc["error"]


@pytest.mark.parametrize("auth", [None, "", "Bearer", "Bearer  x", "Basic abc", "Token abc", "Bearer a b"])
def test_missing_or_malformed_authorization(
    server: SandboxServer, admin: httpx.Client, auth: str | None
) -> None:
    headers = {"Authorization": auth} if auth is not None else {}
    with httpx.Client(base_url=server.url) as raw:
        _error(raw.get(VIDEOS, headers=headers), 401, "unauthorized")


def test_any_key_accepted_unless_keys_configured_or_revoked(
    server: SandboxServer, admin: httpx.Client
) -> None:
    with api_client(server, "anything-goes") as c:
        assert c.get("/tiktok/hashtags/5050").status_code == 200
    with httpx.Client(base_url=server.url, headers={"Authorization": f"bearer {KEY}"}) as c:
        assert c.get("/tiktok/hashtags/5050").status_code == 200  # scheme is case-insensitive
    settings = admin.post("/_sandbox/reset", json={"api_keys": [KEY]}).json()
    assert settings["api_keys_configured"] == 1 and KEY not in str(settings)
    with api_client(server, "anything-goes") as c:
        err = _error(c.get("/tiktok/hashtags/5050"), 401, "unauthorized")
        assert "anything-goes" not in err["message"]
    with api_client(server) as c:
        assert c.get("/tiktok/hashtags/5050").status_code == 200
        admin.post("/_sandbox/keys/revoke", json={"key": KEY}).raise_for_status()
        assert "revoked" in _error(c.get("/tiktok/hashtags/5050"), 401, "unauthorized")["message"]
    assert admin.get("/_sandbox/ledger").json()["totals"]["credits_charged"] == 1


@pytest.mark.parametrize(
    "path",
    [
        "/tiktok/hashtags/abc/videos",
        "/tiktok/hashtags/12a/videos",
        "/tiktok/hashtags/-1/videos",
        "/tiktok/hashtags/1%202",
        "/tiktok/hashtags/x",
        "/tiktok/hashtags/%D9%A3/videos",
        "/tiktok/hashtags/123%0A",
    ],
)
def test_bad_ids(client: httpx.Client, path: str) -> None:
    err = _error(client.get(path), 400, "validation_error")
    assert any(i.startswith("id:") for i in err["issues"])


@pytest.mark.parametrize("limit", ["0", "51", "abc", "-1", "1.5", "", "1e1"])
def test_bad_limits(client: httpx.Client, limit: str) -> None:
    for path, extra in ((VIDEOS, {}), ("/tiktok/search/hashtags", {"q": "cats"})):
        err = _error(client.get(path, params={"limit": limit, **extra}), 400, "validation_error")
        assert any(i.startswith("limit:") for i in err["issues"])


@pytest.mark.parametrize("cursor", ["nope", "!!!", "AAAAAAAAAAAAAAAAAAAAAAAAAAAA", "a" * 500])
def test_bad_cursors(client: httpx.Client, cursor: str) -> None:
    err = _error(client.get(VIDEOS, params={"cursor": cursor}), 400, "validation_error")
    assert any(i.startswith("cursor:") for i in err["issues"])


def test_cursor_of_another_hashtag_and_of_search(client: httpx.Client) -> None:
    cursor = client.get(VIDEOS, params={"limit": 1}).json()["pagination"]["next_cursor"]
    _error(client.get("/tiktok/hashtags/4242/videos", params={"cursor": cursor}), 400, "validation_error")
    search = client.get("/tiktok/search/hashtags", params={"q": "a", "limit": 1}).json()
    _error(
        client.get(VIDEOS, params={"cursor": search["pagination"]["next_cursor"]}), 400, "validation_error"
    )


def test_search_needs_q(client: httpx.Client) -> None:
    for params in ({}, {"q": ""}, {"q": "   "}):
        err = _error(client.get("/tiktok/search/hashtags", params=params), 400, "validation_error")
        assert any(i.startswith("q:") for i in err["issues"])


def test_configured_missing_and_invalid_ids(client: httpx.Client, admin: httpx.Client) -> None:
    for path in ("/tiktok/hashtags/666", "/tiktok/hashtags/666/videos"):
        _error(client.get(path), 404, "not_found")
    for path in ("/tiktok/hashtags/777", "/tiktok/hashtags/777/videos"):
        _error(client.get(path), 400, "invalid_id")
    assert admin.get("/_sandbox/hashtags/666/truth").status_code == 404
    assert admin.get("/_sandbox/hashtags/777/truth").status_code == 400
    assert admin.get("/_sandbox/ledger").json()["totals"]["credits_charged"] == 0


def test_unknown_paths_and_methods(client: httpx.Client, admin: httpx.Client) -> None:
    for resp in (
        client.get("/v1/tiktok/hashtags/5050/videos"),
        client.get("/tiktok/hashtags/5050/comments"),
        client.post(VIDEOS),
        client.get("/"),
    ):
        _error(resp, 404, "not_found")
    assert {c["endpoint"] for c in admin.get("/_sandbox/ledger").json()["calls"]} == {"unknown"}
    assert admin.get("/_sandbox/nothing").status_code == 404


def test_garbage_on_the_wire_gets_a_400_and_the_server_lives_on(server: SandboxServer) -> None:
    host, port = server.address
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(b"THIS IS NOT HTTP\r\n\r\n")
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 400 ")
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(b"HEAD /_sandbox/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        head = b""
        while chunk := sock.recv(65536):
            head += chunk
    assert head.startswith(b"HTTP/1.1 200 ") and head.endswith(b"\r\n\r\n"), "HEAD has no body"
    with admin_client(server) as admin:
        assert admin.get("/_sandbox/health").json() == {"ok": True}


def test_request_ids_everywhere(client: httpx.Client) -> None:
    ok = client.get(VIDEOS, params={"limit": 2})
    bad = client.get(VIDEOS, params={"limit": 0})
    assert RID.match(ok.json()["request_id"]) and ok.json()["request_id"] == ok.headers["X-Request-Id"]
    assert RID.match(bad.json()["error"]["request_id"])
    assert bad.json()["error"]["request_id"] == bad.headers["X-Request-Id"]
    assert ok.json()["request_id"] != bad.json()["error"]["request_id"]


def test_rate_limit_429_with_headers_and_no_charge(
    server: SandboxServer, client: httpx.Client, admin: httpx.Client
) -> None:
    admin.post(
        "/_sandbox/reset", json={"rate_limit_per_minute": 60, "rate_limit_burst": 2}
    ).raise_for_status()
    first, second, third = (client.get(VIDEOS, params={"limit": 3}) for _ in range(3))
    assert [r.status_code for r in (first, second, third)] == [200, 200, 429]
    for r in (first, second, third):
        assert r.headers["X-RateLimit-Limit"] == "60"
        assert int(r.headers["X-RateLimit-Reset"]) >= int(time.time())
    assert first.headers["X-RateLimit-Remaining"] == "1" and third.headers["X-RateLimit-Remaining"] == "0"
    err = _error(third, 429, "rate_limited")
    assert err["request_id"] == third.headers["X-Request-Id"]
    assert int(third.headers["Retry-After"]) >= 1 and "Retry-After" not in first.headers
    ledger = admin.get("/_sandbox/ledger").json()
    assert ledger["totals"]["by_status"] == {"200": 2, "429": 1} and ledger["totals"]["credits_charged"] == 6
    # Refused keys do not drain the workspace bucket, but still see its headers.
    with httpx.Client(base_url=server.url) as raw:
        assert "X-RateLimit-Limit" in raw.get(VIDEOS).headers
    time.sleep(1.05)  # one token a second
    assert client.get(VIDEOS).status_code == 200


def test_no_rate_limit_headers_when_unlimited(client: httpx.Client) -> None:
    assert "X-RateLimit-Limit" not in client.get(VIDEOS).headers


def test_token_bucket_arithmetic() -> None:
    now = [1000.0]
    bucket = TokenBucket(600, 100, clock=lambda: now[0])
    for _ in range(100):
        assert bucket.take().allowed
    refused = bucket.take()
    assert not refused.allowed and refused.retry_after == 1 and refused.remaining == 0
    now[0] += 0.5  # 600/min = 10 tokens a second
    verdicts = [bucket.take() for _ in range(6)]
    assert [v.allowed for v in verdicts] == [True] * 5 + [False]
    slow = TokenBucket(6, 1, clock=lambda: now[0])
    slow.take()
    assert slow.take().retry_after == 10
    assert TokenBucket(0, 1).take() is None
