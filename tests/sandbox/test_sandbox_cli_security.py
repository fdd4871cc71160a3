"""The command line, loopback-only binding, and the API key never leaking."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_provider_unifapi.sandbox import SandboxServer

from . import KEY, admin_client, api_client

REPO = Path(__file__).resolve().parents[2]
LINE_PREFIX = "UnifAPI sandbox listening on http://127.0.0.1:"


def _start_cli(*args: str) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_unifapi.sandbox", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith(LINE_PREFIX):
        proc.kill()
        pytest.fail(f"unexpected first line {line!r}; stderr: {proc.communicate()[1]}")
    return proc, line.rsplit(" ", 1)[1].strip()


def _stop(proc: subprocess.Popen[str], sig: int = signal.SIGTERM) -> tuple[int, str, str]:
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=10)
    return proc.returncode, out, err


def test_cli_prints_its_url_serves_and_exits_0_on_sigterm() -> None:
    proc, url = _start_cli(
        "--balance", "123", "--hashtag", "31337:elite:42", "--seed", "5", "--short-page-rate", "0"
    )
    try:
        assert httpx.get(f"{url}/_sandbox/health").json() == {"ok": True}
        assert httpx.get(f"{url}/_sandbox/balance").json() == {"balance": 123}
        page = httpx.get(
            f"{url}/tiktok/hashtags/31337/videos",
            params={"limit": 50},
            headers={"Authorization": f"Bearer {KEY}"},
        ).json()
        assert page["pagination"]["has_more"] is False
        assert len({v["id"] for v in page["data"]}) == 42
    finally:
        code, out, err = _stop(proc)
    assert code == 0 and out == "" and err == ""


def test_cli_exits_0_on_sigint_and_accepts_keys_and_limits() -> None:
    proc, url = _start_cli(
        "--api-key",
        "cli-key-1",
        "cli-key-2",
        "--api-key",
        "cli-key-3",
        "--rate-limit-per-minute",
        "600",
        "--latency-ms",
        "1",
        "--not-found-id",
        "66",
        "67",
    )
    try:
        for key in ("cli-key-1", "cli-key-2", "cli-key-3"):
            ok = httpx.get(f"{url}/tiktok/hashtags/5050", headers={"Authorization": f"Bearer {key}"})
            assert ok.status_code == 200 and ok.headers["X-RateLimit-Limit"] == "600"
        missing = httpx.get(f"{url}/tiktok/hashtags/67", headers={"Authorization": "Bearer cli-key-1"})
        assert missing.status_code == 404
        bad = httpx.get(f"{url}/tiktok/hashtags/5050", headers={"Authorization": "Bearer other"})
        assert bad.status_code == 401
    finally:
        code, _, _ = _stop(proc, signal.SIGINT)
    assert code == 0


def test_cli_rejects_bad_options() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "airflow_provider_unifapi.sandbox", "--hashtag", "x:y"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2 and "ID:NAME:COUNT" in result.stderr


def _non_loopback_addresses() -> list[str]:
    found = set()
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            found.add(info[4][0])
    except OSError:
        pass
    try:  # the address used to reach the outside, if there is a route (no packet is sent)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))
            found.add(probe.getsockname()[0])
    except OSError:
        pass
    return sorted(a for a in found if not a.startswith("127.") and a != "0.0.0.0")


def test_binds_loopback_only() -> None:
    with SandboxServer() as server:
        host, port = server.address
        assert host == "127.0.0.1" and server.url == f"http://127.0.0.1:{port}"
        for address in _non_loopback_addresses():
            with pytest.raises(OSError), socket.create_connection((address, port), timeout=1):
                pass


def test_stop_closes_keep_alive_connections() -> None:
    server = SandboxServer().start()
    client = api_client(server)
    assert client.get("/tiktok/hashtags/5050").status_code == 200
    server.stop()
    with pytest.raises(httpx.TransportError):
        client.get("/tiktok/hashtags/5050")
    client.close()


def test_connections_past_the_cap_close_the_longest_idle(monkeypatch: pytest.MonkeyPatch) -> None:
    # A client that opens a connection per call and never closes them must not run the sandbox out
    # of file descriptors (it wedged under HttpOperator at 1M records): past the cap, the connection
    # idle for longest is closed and every other one keeps working.
    from airflow_provider_unifapi.sandbox import server as server_module

    monkeypatch.setattr(server_module, "MAX_OPEN_CONNECTIONS", 3)
    request = (
        b"GET /tiktok/hashtags/5050 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
        + KEY.encode()
        + b"\r\n\r\n"
    )

    def ask(sock: socket.socket) -> bytes:
        sock.sendall(request)
        return sock.recv(65536)

    with SandboxServer() as server:

        def wait_all_idle() -> None:
            # A handler marks its connection idle just after answering: waiting for it after each
            # call makes the server's idle order the order of the calls, not of thread scheduling.
            deadline = time.monotonic() + 5
            while len(server._httpd._idle) < 3 and time.monotonic() < deadline:  # type: ignore[union-attr]
                time.sleep(0.005)

        socks = [socket.create_connection(server.address, timeout=5) for _ in range(3)]
        try:
            for sock in socks:
                assert ask(sock).startswith(b"HTTP/1.1 200")
                wait_all_idle()
            socks.append(socket.create_connection(server.address, timeout=5))
            assert ask(socks[3]).startswith(b"HTTP/1.1 200")  # served once the oldest idle one went
            assert socks[0].recv(1) == b""  # closed by the server
            for sock in socks[1:]:
                assert ask(sock).startswith(b"HTTP/1.1 200")
        finally:
            for sock in socks:
                sock.close()


def _exercise(url: str, key: str) -> Any:
    """Calls of every kind (ok, errors, faults) carrying ``key`` in several places."""
    with httpx.Client(base_url=url, timeout=10) as admin:
        admin.post(
            "/_sandbox/faults",
            json={
                "plan": [
                    {"kind": "error", "status": 503, "at": [3]},
                    {"kind": "malformed", "at": [4]},
                    {"kind": "reset", "at": [5]},
                ]
            },
        ).raise_for_status()
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=10) as c:
            c.get("/tiktok/hashtags/5050/videos", params={"limit": 3})
            c.get("/tiktok/hashtags/5050/videos", params={"limit": 0})
            c.get("/tiktok/hashtags/5050")
            c.get("/tiktok/search/hashtags", params={"q": "cats"})
            with pytest.raises(httpx.TransportError):
                c.get("/tiktok/hashtags/5050")
            c.get("/tiktok/hashtags/5050", headers={"Authorization": f"Basic {key}"})
            c.get("/nope")
        admin.post("/_sandbox/keys/revoke", json={"key": key}).raise_for_status()
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=10) as c:
            c.get("/tiktok/hashtags/5050")
        ledger = admin.get("/_sandbox/ledger").text
        extras = [admin.get(p).text for p in ("/_sandbox/settings", "/_sandbox/faults", "/_sandbox/hashtags")]
        return ledger, extras


def test_api_key_never_in_ledger_or_output() -> None:
    proc, url = _start_cli("--verbose")
    try:
        ledger, extras = _exercise(url, KEY)
    finally:
        code, out, err = _stop(proc)
    assert code == 0
    calls = json.loads(ledger)["calls"]
    assert len(calls) == 8
    assert all("authorization" not in c["headers"] for c in calls)
    assert all("user-agent" in c["headers"] for c in calls), "other headers are kept, lower-cased"
    assert err.count("\n") >= 8, "verbose prints an access line per request"
    for text in (ledger, *extras, out, err):
        assert KEY not in text


def test_api_key_never_in_process_state() -> None:
    with SandboxServer(api_keys=[KEY]) as server, admin_client(server) as admin:
        with api_client(server) as c:
            c.get("/tiktok/hashtags/5050")
        admin.post("/_sandbox/keys/revoke", json={"key": KEY})
        state = server.state
        dump = repr(vars(state)) + repr(state.settings) + json.dumps(state.ledger.since(0))
        assert KEY not in dump
