"""UnifAPIHook: env-var connections, extras validation, clients, test_connection."""

from __future__ import annotations

import asyncio
import http.server
import json
import logging
import socket
import threading
import time

import pytest

from airflow_provider_unifapi.exceptions import UnifAPIInputError
from airflow_provider_unifapi.hooks.unifapi import UnifAPIHook, _base_url
from tests.conftest import API_KEY, assert_no_key, conn_uri_json


def test_reads_env_var_connection_in_json_form(unifapi_conn):
    hook = UnifAPIHook()
    client = hook.get_conn()
    assert client.base_url == unifapi_conn.url
    assert hook.get_conn() is client  # cached
    assert client.policy.backoff_base == 0.01 and client.timeout == 10.0
    page = client.get_video_page("5050", limit=3)
    assert len(page.data) == 3


def test_default_base_url_is_the_real_api(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_UNIFAPI_DEFAULT", json.dumps({"conn_type": "unifapi", "password": API_KEY})
    )
    assert UnifAPIHook().client_kwargs()["base_url"] == "https://api.unifapi.com"


def test_async_conn(unifapi_conn):
    async def go():
        client = await UnifAPIHook().get_async_conn()
        try:
            return await client.get_video_page("5050", limit=2)
        finally:
            await client.aclose()

    page = asyncio.run(go())
    assert len(page.data) == 2


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"timeout": "soon"}, "timeout"),
        ({"max_retries": 2.5}, "max_retries"),
        ({"max_retries": -1}, "max_retries"),
        ({"retry_billed_errors": "maybe"}, "retry_billed_errors"),
        ({"verify": False}, "verify"),
    ],
)
def test_bad_extras_give_clear_errors(monkeypatch, extra, field):
    monkeypatch.setenv(
        "AIRFLOW_CONN_UNIFAPI_DEFAULT",
        json.dumps(
            {"conn_type": "unifapi", "host": "http://127.0.0.1:1", "password": API_KEY, "extra": extra}
        ),
    )
    with pytest.raises(UnifAPIInputError) as caught:
        UnifAPIClientFromHook()
    assert field in str(caught.value)


def UnifAPIClientFromHook():
    return UnifAPIHook().get_conn()


def test_ui_strings_and_prefixed_extras_are_accepted(monkeypatch):
    extra = {"extra__unifapi__timeout": "12.5", "max_retries": "3", "retry_billed_errors": "true"}
    monkeypatch.setenv(
        "AIRFLOW_CONN_UNIFAPI_DEFAULT",
        json.dumps(
            {"conn_type": "unifapi", "host": "http://127.0.0.1:1", "password": API_KEY, "extra": extra}
        ),
    )
    client = UnifAPIHook().get_conn()
    assert client.timeout == 12.5
    assert client.policy.max_retries == 3 and client.policy.retry_billed_errors is True


def test_missing_key_is_a_clear_error(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_UNIFAPI_DEFAULT", json.dumps({"conn_type": "unifapi", "host": "http://127.0.0.1:1"})
    )
    with pytest.raises(UnifAPIInputError) as caught:
        UnifAPIHook().get_conn()
    assert "password" in str(caught.value) and "API key" in str(caught.value)


def test_test_connection_success_says_what_it_cost(unifapi_conn, caplog):
    with caplog.at_level(logging.DEBUG):
        ok, message = UnifAPIHook().test_connection()
    assert ok, message
    charged = unifapi_conn.credits_charged()
    assert charged == 1
    assert f"cost {charged} credit" in message and "balance" in message
    assert_no_key(message, caplog.text)


def test_test_connection_never_raises(sandbox, monkeypatch, caplog):
    sandbox.reset(api_keys=[API_KEY])
    monkeypatch.setenv(
        "AIRFLOW_CONN_UNIFAPI_DEFAULT", conn_uri_json(sandbox.url, key="sk_test_wrongwrongwrong")
    )
    ok, message = UnifAPIHook().test_connection()
    assert not ok and "unauthorized" in message
    monkeypatch.setenv("AIRFLOW_CONN_UNIFAPI_DEFAULT", conn_uri_json("http://example.com"))
    ok, message = UnifAPIHook().test_connection()
    assert not ok and "base_url" in message and "0 credits" in message
    sandbox.reset(balance=0)
    monkeypatch.setenv("AIRFLOW_CONN_UNIFAPI_DEFAULT", conn_uri_json(sandbox.url))
    ok, message = UnifAPIHook().test_connection()
    assert ok and "cost 0 credits" in message
    assert_no_key(message, caplog.text)


# -- test_connection: each cause named, with the URL and the cost ---------------------------------
def _test(monkeypatch, conn: str, conn_id: str = "unifapi_default") -> str:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", conn)
    ok, message = UnifAPIHook(conn_id).test_connection()
    assert not ok, message
    assert_no_key(message)
    return message


def test_test_connection_names_a_refused_key(sandbox, monkeypatch):
    sandbox.reset(api_keys=[API_KEY])
    message = _test(monkeypatch, conn_uri_json(sandbox.url, key="sk_test_wrongwrongwrong"), "my_unifapi")
    assert f"UnifAPI at {sandbox.url} refused the API key of connection 'my_unifapi' (401" in message
    assert "this check cost 0 credits" in message.lower()


def test_test_connection_names_a_closed_port(monkeypatch):
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    message = _test(monkeypatch, conn_uri_json(url))
    assert f"Cannot connect to {url} (connection 'unifapi_default'): connection refused" in message
    assert "This check cost 0 credits." in message


def test_test_connection_names_a_host_that_does_not_resolve(monkeypatch):
    # .invalid never resolves (RFC 6761), with or without network access.
    message = _test(monkeypatch, conn_uri_json("https://unifapi-sandbox.invalid"))
    assert "Cannot connect to https://unifapi-sandbox.invalid" in message
    assert "the host name 'unifapi-sandbox.invalid' does not resolve (DNS)" in message
    assert "This check cost 0 credits." in message


def test_test_connection_names_a_timeout(monkeypatch):
    with socket.socket() as silent:  # accepts connections (backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        message = _test(monkeypatch, conn_uri_json(url, timeout=0.3))
        assert time.monotonic() - started < 5  # one attempt, no retries
    assert f"Cannot connect to {url}" in message and "(timeout)" in message
    assert "may have cost 1 credit(s)" in message  # the request was sent: billing unknown


@pytest.mark.parametrize("status", [200, 404])
def test_test_connection_names_a_server_that_is_not_unifapi(monkeypatch, plain_http, status):
    url = plain_http(status)
    message = _test(monkeypatch, conn_uri_json(url))
    assert (
        f"{url} is not a UnifAPI server: it answered {status} without UnifAPI's response envelope" in message
    )
    assert "This check cost 0 credits" in message and "possibly_billed" not in message


def test_test_connection_suggests_http_on_a_tls_failure(monkeypatch, plain_http):
    netloc = plain_http(200).removeprefix("http://")
    message = _test(monkeypatch, conn_uri_json(f"https://{netloc}"))
    assert f"The TLS handshake with https://{netloc} (connection 'unifapi_default') failed" in message
    assert f"did you mean http://{netloc} for a local sandbox?" in message
    # A scheme-less host that is not loopback gets https://; the hint says where plain http is allowed.
    port = netloc.rsplit(":", 1)[1]
    message = _test(monkeypatch, conn_uri_json(f"0.0.0.0:{port}"))
    assert f"did you mean http://0.0.0.0:{port} for a local sandbox?" in message
    assert "plain http is accepted only for loopback hosts" in message


def test_test_connection_names_what_the_user_typed_not_the_ui_test_id(monkeypatch, sandbox):
    # Airflow's UI test runs the hook on a copy of the connection under a random id such as this one.
    no_key = json.dumps({"conn_type": "unifapi", "host": sandbox.url})
    message = _test(monkeypatch, no_key, "Xq7Lm2Pa")
    assert "Xq7Lm2Pa" not in message and "xq7lm2pa" not in message.lower()
    assert "The API key of this connection is empty" in message and sandbox.url in message
    assert "this check cost 0 credits" in message
    message = _test(monkeypatch, no_key, "my_unifapi")
    assert "The API key of connection 'my_unifapi' is empty" in message
    bad = json.dumps(
        {"conn_type": "unifapi", "host": sandbox.url, "password": API_KEY, "extra": {"timeout": "x"}}
    )
    message = _test(monkeypatch, bad, "Xq7Lm2Pa")
    assert "Xq7Lm2Pa" not in message and "Invalid connection extra 'timeout'" in message
    assert sandbox.credits_charged() == 0


def test_test_connection_success_in_the_ui_names_the_url(monkeypatch, sandbox):
    monkeypatch.setenv("AIRFLOW_CONN_XQ7LM2PA", conn_uri_json(sandbox.url))
    ok, message = UnifAPIHook("Xq7Lm2Pa").test_connection()
    assert ok and message.startswith(f"API key accepted by {sandbox.url} (hashtag search")
    assert "this check cost 1 credit(s)" in message


# -- the base URL: host, schema and port --------------------------------------------------------------
def test_uri_form_connection_keeps_its_port(sandbox, monkeypatch):
    port = sandbox.url.rsplit(":", 1)[1]
    monkeypatch.setenv("AIRFLOW_CONN_UNIFAPI_DEFAULT", f"unifapi://:{API_KEY}@127.0.0.1:{port}")
    with UnifAPIHook() as hook:
        assert hook.base_url == f"http://127.0.0.1:{port}"
        ok, message = hook.test_connection()
    assert ok, message
    assert sandbox.credits_charged() == 1


@pytest.mark.parametrize(
    ("host", "schema", "port", "expected"),
    [
        (None, None, None, "https://api.unifapi.com"),
        (None, None, 443, "https://api.unifapi.com"),
        ("https://api.unifapi.com", None, 443, "https://api.unifapi.com"),
        ("https://api.unifapi.com", None, 0, "https://api.unifapi.com"),
        ("https://api.unifapi.com", None, 8443, "https://api.unifapi.com:8443"),
        ("http://127.0.0.1", None, 8080, "http://127.0.0.1:8080"),
        ("http://127.0.0.1:8080", None, 8080, "http://127.0.0.1:8080"),
        ("http://127.0.0.1:8080", None, None, "http://127.0.0.1:8080"),
        ("http://[::1]/v1", None, 8080, "http://[::1]:8080/v1"),
        ("127.0.0.1", None, 8080, "http://127.0.0.1:8080"),
        ("localhost:8080", None, None, "http://localhost:8080"),
        ("api.unifapi.com", None, None, "https://api.unifapi.com"),
        ("127.0.0.1", "https", 8443, "https://127.0.0.1:8443"),
    ],
)
def test_base_url_from_host_schema_and_port(host, schema, port, expected):
    from airflow.models.connection import Connection

    conn = Connection(conn_id="x", conn_type="unifapi", host=host, schema=schema, port=port)
    assert _base_url(conn) == expected


def test_base_url_refuses_two_different_ports():
    from airflow.models.connection import Connection

    conn = Connection(conn_id="x", conn_type="unifapi", host="http://127.0.0.1:8080", port=9090)
    with pytest.raises(UnifAPIInputError, match="names port 8080: write the port once"):
        _base_url(conn)


@pytest.fixture
def plain_http():
    """Start plain HTTP servers on 127.0.0.1 answering every GET with ``status`` and an HTML page."""
    servers = []

    def start(status: int) -> str:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = b"<html><body>It works!</body></html>"
                self.send_response(status)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
