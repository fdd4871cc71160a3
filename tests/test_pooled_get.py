"""The sync client's hot path (``pooled_get``: GETs on httpx's own httpcore pool) over real sockets.

It must be indistinguishable from ``httpx.Client.send``: the same bytes on the wire, the same outcome
(page or typed error, billed or not) for whatever a server answers, cookies kept, keep-alive reused.
A scripted server on 127.0.0.1 answers with raw bytes, so it can send what the sandbox never does.
A client given ``transport=httpx.HTTPTransport()`` takes the plain httpx path over the same sockets.
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpcore
import httpx
import pytest
from hypothesis import example, given

from airflow_provider_unifapi import exceptions as ex
from airflow_provider_unifapi.client import UnifAPIClient
from airflow_provider_unifapi.pooled_get import as_httpx_error
from tests.chaos.hostile import FUZZ_RUNS, HostileResponse, hostile_response, valid_page
from tests.conftest import API_KEY, assert_no_key

FAST = {"backoff_base": 0.0, "max_retry_wait": 0.0, "max_retries": 2, "max_response_bytes": 4 * 1024 * 1024}
PAGE = json.dumps(valid_page(2)).encode()


Headers = list[tuple[bytes, bytes]]


def raw_response(status: int, headers: Headers, body: bytes, *, length: bool = True) -> bytes:
    head = [f"HTTP/1.1 {status} X".encode()] + [name + b": " + value for name, value in headers]
    if length:
        head.append(b"Content-Length: " + str(len(body)).encode())
    return b"\r\n".join(head) + b"\r\n\r\n" + body


Answer = Callable[[int, bytes], Any]


class ScriptedServer:
    """Answers request ``n`` with ``answer(n, head)``: raw bytes, ``(bytes, "close")`` to hang up
    after sending them, or ``None`` to hang up at once."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.heads: list[bytes] = []
        self.connections = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        buffer = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buffer:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                head, buffer = buffer.split(b"\r\n\r\n", 1)
                self.heads.append(head)
                reply = self.answer(len(self.heads), head)
                if reply is None:
                    return
                if isinstance(reply, tuple):
                    conn.sendall(reply[0])
                    return
                conn.sendall(reply)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def serve() -> Iterator[Callable[[Answer], ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def start(answer: Answer) -> ScriptedServer:
        servers.append(ScriptedServer(answer))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def pooled(url: str, **kwargs: Any) -> UnifAPIClient:
    client = UnifAPIClient(API_KEY, url, **{**FAST, **kwargs})
    assert client._pooled is not None, "a client without a transport takes the pooled path"
    return client


def plain(url: str, **kwargs: Any) -> UnifAPIClient:
    client = UnifAPIClient(API_KEY, url, transport=httpx.HTTPTransport(), **{**FAST, **kwargs})
    assert client._pooled is None
    return client


def test_the_same_bytes_go_on_the_wire_as_from_httpx(serve):
    server = serve(lambda n, head: raw_response(200, [(b"Content-Type", b"application/json")], PAGE))
    for make in (pooled, plain):
        with make(server.url + "/v1", timeout=7.5) as client:
            client.get_video_page("42", cursor="a b+c/d=e&f?g#h%20\u00fc", limit=50, max_credits=7)
            client.get_video_page("42", limit=3)
    pooled_heads, plain_heads = server.heads[:2], server.heads[2:]
    assert pooled_heads == plain_heads
    assert pooled_heads[0].startswith(
        b"GET /v1/tiktok/hashtags/42/videos?limit=7"
        b"&cursor=a+b%2Bc%2Fd%3De%26f%3Fg%23h%2520%C3%BC HTTP/1.1\r\n"
    )
    assert b"\r\nX-Unifapi-Max-Credits: 7" in pooled_heads[0] and b"Max-Credits" not in pooled_heads[1]
    assert b"\r\nAccept-Encoding: identity" in pooled_heads[0]


def test_one_connection_serves_every_page(serve):
    server = serve(lambda n, head: raw_response(200, [], PAGE))
    with pooled(server.url) as client:
        for _ in range(5):
            client.get_video_page("42", limit=2)
    assert len(server.heads) == 5 and server.connections == 1


def test_cookies_a_server_sets_are_sent_back_as_httpx_would(serve):
    def answer(n: int, head: bytes) -> bytes:
        cookie = [(b"Set-Cookie", b"lb=node-3; Path=/")] if n == 1 else []
        return raw_response(200, cookie, PAGE)

    server = serve(answer)
    with pooled(server.url) as client:
        client.get_video_page("42", limit=2)
        client.get_video_page("42", limit=2)
    assert b"cookie" not in server.heads[0].lower()
    assert b"\r\nCookie: lb=node-3" in server.heads[1]


def test_a_proxy_from_the_environment_is_used_as_httpx_uses_it(serve, monkeypatch):
    # httpx mounts env proxies per URL; the pooled path sends on the pool httpx chose for the base URL.
    proxy = serve(lambda n, head: raw_response(200, [], PAGE))
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with pooled("http://127.0.0.1:9") as client:  # nothing listens there: only the proxy can answer
        page = client.get_video_page("42", limit=2)
    assert len(page.data) == 2
    assert proxy.heads[0].startswith(b"GET http://127.0.0.1:9/tiktok/hashtags/42/videos?limit=2 HTTP/1.1\r\n")


def test_a_body_cut_short_is_a_billed_typed_error(serve):
    # 100 of the 5,000 bytes announced, then the server hangs up.
    cut = raw_response(200, [(b"Content-Length", b"5000")], PAGE[:100], length=False)
    server = serve(lambda n, head: (cut, "close"))
    with pooled(server.url, max_retries=0) as client, pytest.raises(ex.UnifAPIInvalidResponseError) as caught:
        client.get_video_page("42", limit=2)
    assert caught.value.may_have_been_billed and caught.value.possibly_billed_credits == 2
    assert "cut short (RemoteProtocolError)" in str(caught.value)
    assert_no_key(str(caught.value))


def test_an_encoded_body_is_refused_as_unreadable_and_billed(serve):
    server = serve(lambda n, head: raw_response(200, [(b"Content-Encoding", b"gzip")], gzip.compress(PAGE)))
    with pooled(server.url) as client, pytest.raises(ex.UnifAPIInvalidResponseError) as caught:
        client.get_video_page("42", limit=2)
    assert caught.value.may_have_been_billed and "cut short" in str(caught.value)
    assert len(server.heads) == 1  # a billed failure is not retried by default


def test_nothing_listening_is_an_unbilled_transport_error():
    probe = socket.create_server(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    probe.close()
    with pooled(url, max_retries=0) as client, pytest.raises(ex.UnifAPITransportError) as caught:
        client.get_video_page("42", limit=2)
    assert not caught.value.may_have_been_billed and "ConnectError" in str(caught.value)


def test_a_server_that_never_answers_times_out_typed(serve):
    server = serve(lambda n, head: b"")  # reads the request, sends nothing
    with pooled(server.url, max_retries=0, timeout=0.3) as client:
        with pytest.raises(ex.UnifAPITimeoutError) as caught:
            client.get_video_page("42", limit=2)
    assert caught.value.may_have_been_billed and "ReadTimeout" in str(caught.value)


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (httpcore.ReadTimeout("slow"), httpx.ReadTimeout),
        (httpcore.ConnectTimeout("slow"), httpx.ConnectTimeout),
        (httpcore.PoolTimeout("busy"), httpx.PoolTimeout),
        (httpcore.ConnectError("refused"), httpx.ConnectError),
        (httpcore.RemoteProtocolError("cut"), httpx.RemoteProtocolError),
        (httpcore.ProxyError("proxy"), httpx.ProxyError),
        (httpcore.ConnectionNotAvailable(), httpx.TransportError),
    ],
)
def test_httpcore_errors_become_the_httpx_errors_httpx_raises(raised, expected):
    mapped = as_httpx_error(raised)
    assert type(mapped) is expected and str(mapped) == str(raised)


def _outcome(make: Callable[..., UnifAPIClient], url: str) -> tuple[str, Any]:
    with make(url, timeout=0.5) as client:  # a 1xx status never ends: both paths time out
        try:
            page = client.get_video_page("7106594312292", limit=5)
        except ex.UnifAPIError as exc:
            return type(exc).__name__, (exc.may_have_been_billed, exc.possibly_billed_credits, exc.attempts)
        return "page", page.model_dump_json()


@FUZZ_RUNS
@given(response=hostile_response())
@example(response=HostileResponse(429, [(b"retry-after", b"0")], b"{}"))
@example(response=HostileResponse(200, [], PAGE))
@example(response=HostileResponse(301, [], b"", gzip=True))
def test_any_answer_ends_the_same_on_both_paths(response: HostileResponse) -> None:
    body, headers = response.body, [h for h in response.headers if h[0].lower() != b"content-length"]
    if response.gzip:
        body, headers = gzip.compress(body), [*headers, (b"content-encoding", b"gzip")]
    server = ScriptedServer(lambda n, head: raw_response(response.status, headers, body))
    try:
        plain_outcome = _outcome(plain, server.url)
        pooled_outcome = _outcome(pooled, server.url)
    finally:
        server.close()
    if response.gzip:
        # httpx decodes an encoding it did not ask for; the pooled path refuses the body, typed (and
        # billed if the status was a success).
        assert pooled_outcome[0] != "page"
        if 200 <= response.status < 300:
            assert pooled_outcome[0] == "UnifAPIInvalidResponseError" and pooled_outcome[1][0] is True
    else:
        assert pooled_outcome == plain_outcome
