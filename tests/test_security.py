"""The key never leaks, TLS is always verified, redirects never carry the key, big bodies are refused,
and the sandbox listens on loopback only.

Real servers on 127.0.0.1 (a TLS server with a throw-away self-signed certificate, a redirecting
server and the server it points to) and real Airflow task runs; ``httpx.MockTransport`` only for
bodies no server here would send (a decompression bomb, an endless stream).
"""

from __future__ import annotations

import datetime as dt
import gzip
import ipaddress
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_provider_unifapi.client import AsyncUnifAPIClient, UnifAPIClient
from airflow_provider_unifapi.exceptions import (
    UnifAPIError,
    UnifAPIInputError,
    UnifAPIResponseTooLargeError,
    UnifAPITransportError,
    UnifAPIUnexpectedStatusError,
)
from tests.chaos.analysis import key_hits
from tests.chaos.hostile import valid_page
from tests.conftest import API_KEY, conn_uri_json
from tests.test_operator import op_dag

REPO = Path(__file__).resolve().parents[1]


# -- small loopback servers ---------------------------------------------------------------------------
class Recorded(BaseHTTPRequestHandler):
    """Answers with ``server.reply(handler)`` and records every request's path and headers."""

    server: Any

    def do_GET(self) -> None:
        self.server.seen.append({"path": self.path, "headers": dict(self.headers.items())})
        status, headers, body = self.server.reply(self)
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def page_reply(handler: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    return 200, [("Content-Type", "application/json")], json.dumps(valid_page(1, has_more=False)).encode()


class LoopbackServer:
    def __init__(self, reply: Any = page_reply, tls: ssl.SSLContext | None = None) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Recorded)
        self.httpd.seen = []  # type: ignore[attr-defined]
        self.httpd.reply = reply  # type: ignore[attr-defined]
        self.httpd.daemon_threads = True
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def seen(self) -> list[dict[str, Any]]:
        return self.httpd.seen  # type: ignore[attr-defined,no-any-return]

    def __enter__(self) -> LoopbackServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A throw-away certificate for 127.0.0.1 (and its key), signed by itself."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


# -- TLS --------------------------------------------------------------------------------------------
def test_tls_verification_cannot_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UnifAPIInputError):
        UnifAPIClient(API_KEY, "https://api.unifapi.com", verify=False)
    with pytest.raises(UnifAPIInputError):
        AsyncUnifAPIClient(API_KEY, "https://api.unifapi.com", verify=False)
    from airflow_provider_unifapi.hooks.unifapi import UnifAPIHook

    for value in (False, "false", "False", " FALSE "):
        monkeypatch.setenv(
            "AIRFLOW_CONN_UNIFAPI_DEFAULT", conn_uri_json("https://api.unifapi.com", verify=value)
        )
        with pytest.raises(UnifAPIInputError) as caught:
            UnifAPIHook().get_conn()
        assert "verify" in str(caught.value)


@pytest.mark.parametrize("where", ["client", "connection"])
def test_a_missing_ca_bundle_is_a_typed_error(
    where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # verify takes a CA bundle path; a path that does not exist (or "0", "no", "off" typed into the
    # form, which are read as paths) must fail as UnifAPIInputError naming verify, not FileNotFoundError.
    missing = str(tmp_path / "no-such-ca.pem")
    with pytest.raises(UnifAPIInputError) as caught:
        if where == "client":
            UnifAPIClient(API_KEY, "https://api.unifapi.com", verify=missing).close()
        else:
            from airflow_provider_unifapi.hooks.unifapi import UnifAPIHook

            monkeypatch.setenv(
                "AIRFLOW_CONN_UNIFAPI_DEFAULT", conn_uri_json("https://api.unifapi.com", verify="0")
            )
            UnifAPIHook().get_conn()
    assert "verify" in str(caught.value)


def test_self_signed_certificate_is_refused_before_the_key_is_sent(self_signed: tuple[Path, Path]) -> None:
    cert, key = self_signed
    with LoopbackServer(tls=tls_context(cert, key)) as server:
        url = f"https://127.0.0.1:{server.port}"
        with UnifAPIClient(API_KEY, url, max_retries=1, backoff_base=0.0, timeout=5) as client:
            with pytest.raises(UnifAPITransportError) as caught:
                client.get_video_page("1", limit=1)
        assert server.seen == []  # no request (and so no Authorization header) ever reached it
        assert key_hits(API_KEY, [str(caught.value), repr(caught.value), caught.value.to_dict()]) == 0
        # control: the same server, trusted through a CA bundle (the supported way), works - so the
        # refusal above was the certificate check and nothing else
        with UnifAPIClient(API_KEY, url, verify=str(cert), timeout=5) as client:
            assert client.get_video_page("1", limit=1).data
        assert server.seen[-1]["headers"]["Authorization"] == f"Bearer {API_KEY}"


async def test_async_client_refuses_a_self_signed_certificate(self_signed: tuple[Path, Path]) -> None:
    cert, key = self_signed
    with LoopbackServer(tls=tls_context(cert, key)) as server:
        async with AsyncUnifAPIClient(
            API_KEY, f"https://127.0.0.1:{server.port}", max_retries=0, timeout=5
        ) as client:
            with pytest.raises(UnifAPITransportError):
                await client.get_video_page("1", limit=1)
        assert server.seen == []


# -- redirects --------------------------------------------------------------------------------------
@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirect_to_another_host_never_carries_the_key(status: int) -> None:
    with LoopbackServer() as other:
        target = f"http://localhost:{other.port}/tiktok/hashtags/1/videos?limit=1"

        def redirect(handler: Any) -> tuple[int, list[tuple[str, str]], bytes]:
            return status, [("Location", target)], b""

        with LoopbackServer(redirect) as api:
            with UnifAPIClient(
                API_KEY, f"http://127.0.0.1:{api.port}", max_retries=2, backoff_base=0.0
            ) as client:
                with pytest.raises(UnifAPIUnexpectedStatusError) as caught:
                    client.get_video_page("1", limit=1)
            assert caught.value.status == status
            assert len(api.seen) == 1  # not retried either: a redirect is not a transient error
        assert other.seen == []  # the other host never saw a request, let alone the key
        # control: the other server was up and answering all along
        assert httpx.get(target).status_code == 200 and len(other.seen) == 1
        assert "authorization" not in {k.lower() for k in other.seen[0]["headers"]}


# -- body cap ---------------------------------------------------------------------------------------
def test_a_page_over_the_cap_is_refused(sandbox) -> None:
    sandbox.reset(hashtags=[{"id": "4242", "name": "cap", "video_count": 200}])
    with UnifAPIClient(API_KEY, sandbox.url, max_response_bytes=4096, max_retries=0) as client:
        with pytest.raises(UnifAPIResponseTooLargeError) as caught:
            client.get_video_page("4242", limit=50)
    assert caught.value.may_have_been_billed  # a 200 was billed: the budget counts it
    assert caught.value.possibly_billed_credits == 50


@pytest.mark.parametrize("shape", ["endless-stream", "announced-64MiB", "gzip-bomb"])
def test_oversized_bodies_are_refused_without_reading_them(shape: str) -> None:
    cap = 1024 * 1024
    produced = {"bytes": 0}

    def endless() -> Iterator[bytes]:
        chunk = b"x" * 65536
        while produced["bytes"] < 512 * 1024 * 1024:
            produced["bytes"] += len(chunk)
            yield chunk

    def handler(request: httpx.Request) -> httpx.Response:
        if shape == "endless-stream":
            return httpx.Response(200, content=endless())
        if shape == "announced-64MiB":
            return httpx.Response(200, headers={"Content-Length": str(64 * 1024 * 1024)}, content=endless())
        bomb = gzip.compress(b"\0" * (256 * 1024 * 1024), compresslevel=9)  # 256 MiB in ~250 KB
        return httpx.Response(200, headers={"Content-Encoding": "gzip"}, content=bomb)

    with UnifAPIClient(
        API_KEY,
        "https://api.unifapi.test",
        transport=httpx.MockTransport(handler),
        max_response_bytes=cap,
        max_retries=0,
    ) as client:
        with pytest.raises(UnifAPIResponseTooLargeError):
            client.get_video_page("1", limit=1)
    # stopped at the cap (plus a chunk or two), not after reading everything
    assert produced["bytes"] <= cap + 4 * 65536


# -- the sandbox ------------------------------------------------------------------------------------
def test_sandbox_cli_listens_on_loopback_only() -> None:
    import psutil

    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_unifapi.sandbox", "--port", "0", "--verbose"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = line.rsplit(" ", 1)[-1].strip()
        port = int(url.rsplit(":", 1)[1])
        listening = [
            c for c in psutil.Process(proc.pid).net_connections(kind="inet") if c.status == psutil.CONN_LISTEN
        ]
        assert listening and all(ipaddress.ip_address(c.laddr.ip).is_loopback for c in listening), listening
        for address in {
            a.address
            for addrs in psutil.net_if_addrs().values()
            for a in addrs
            if a.family == socket.AF_INET and not ipaddress.ip_address(a.address).is_loopback
        }:
            with pytest.raises(OSError), socket.create_connection((address, port), timeout=1):
                pass
        # its access log (stderr) and ledger, after calls carrying the key, never hold it
        with UnifAPIClient(API_KEY, url, max_retries=0) as client:
            client.get_video_page("5050", limit=2)
            with pytest.raises(UnifAPIError):
                client.get_video_page("5050", cursor="forged", limit=2)
        ledger = httpx.get(f"{url}/_sandbox/ledger").text
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
    assert "/tiktok/hashtags/5050/videos" in err  # the access log was on: the scan below saw real lines
    assert key_hits(API_KEY, [ledger, out, err]) == 0


# -- every artifact of failing and succeeding runs ---------------------------------------------------
def metadata_rows(dag_ids: set[str]) -> list[str]:
    """Every metadata-DB row about these DAGs (XComs, rendered fields, task instances, logs...) and
    every Variable, as text."""
    from airflow.utils.session import create_session
    from sqlalchemy import inspect, text

    rows: list[str] = []
    with create_session() as session:
        inspector = inspect(session.get_bind())
        for table in inspector.get_table_names():
            columns = {c["name"] for c in inspector.get_columns(table)}
            if "dag_id" in columns:
                params = {f"d{i}": d for i, d in enumerate(sorted(dag_ids))}
                where = " OR ".join(f"dag_id = :{p}" for p in params)
                result = session.execute(text(f'SELECT * FROM "{table}" WHERE {where}'), params)
            elif table == "variable":
                result = session.execute(text('SELECT * FROM "variable"'))
            else:
                continue
            rows += [repr(tuple(row)) for row in result]
    return rows


@pytest.mark.airflow
def test_no_artifact_of_failing_or_succeeding_runs_holds_the_key(
    sandbox, dag_runner, tmp_path, capfd, caplog, monkeypatch
) -> None:
    from airflow_provider_unifapi.operators.hashtag_videos import TikTokHashtagVideosOperator

    tag = "4343"
    sandbox.reset(balance=180, hashtags=[{"id": tag, "name": "leaktest", "video_count": 420}])
    monkeypatch.setenv("AIRFLOW_CONN_UNIFAPI_DEFAULT", conn_uri_json(sandbox.url))
    out = tmp_path / "out"
    path = op_dag(dag_runner, "sec_leak", hashtag_id=tag, output_path=f"file://{out}", records_per_part=100)
    texts: list[Any] = []
    states = []

    def run() -> None:
        result = dag_runner.run(path, capsys=capfd, caplog=caplog)
        states.append(result.state)
        texts.extend([result.log_text, result.xcoms])
        texts.extend(p.read_bytes() for p in out.rglob("*") if p.is_file())  # checkpoint, staging, parts

    run()  # fails: the balance runs out mid-run (truncated page)
    sandbox.add_balance(1_000_000)
    sandbox.faults({"kind": "error", "status": 401, "at": [2]})
    run()  # fails: 401 (fatal)
    sandbox.faults(
        {"kind": "truncated", "at": [1]}, {"kind": "error", "status": 503, "at": [2, 3, 4, 5, 6, 7]}
    )
    run()  # fails: a billed page cut short, then 503s past the retries
    sandbox.clear_faults()
    run()  # succeeds, resuming
    assert states == ["failed", "failed", "failed", "success"]
    # a run that cannot even connect: the error names the URL, never the key
    monkeypatch.setenv("AIRFLOW_CONN_UNIFAPI_DEFAULT", conn_uri_json("http://127.0.0.1:9", max_retries=0))
    bad = op_dag(
        dag_runner, "sec_leak_unreachable", hashtag_id=tag, output_path=f"file://{tmp_path}/unreachable"
    )
    unreachable = dag_runner.run(bad, capsys=capfd, caplog=caplog)
    assert unreachable.state == "failed"
    texts.append(unreachable.log_text)
    monkeypatch.setenv("AIRFLOW_CONN_UNIFAPI_DEFAULT", conn_uri_json(sandbox.url))
    operator = TikTokHashtagVideosOperator(task_id="lineage", hashtag_id=tag, output_path=f"file://{out}")
    lineage = [operator.get_openlineage_facets_on_start(), operator.get_openlineage_facets_on_complete(None)]
    texts += [repr(facet) for facet in lineage]
    texts += [json.dumps(sandbox.ledger()), json.dumps(sandbox.admin.get("/_sandbox/faults").json())]
    texts += metadata_rows({"sec_leak", "sec_leak_unreachable"})
    logs = Path(os.environ["AIRFLOW_HOME"]) / "logs"
    texts += (
        [p.read_bytes() for p in logs.rglob("*") if p.is_file() and "sec_leak" in str(p)]
        if logs.exists()
        else []
    )
    assert any("Top up" in str(t) for t in texts) and any(
        "unauthorized" in str(t) for t in texts
    )  # real failures
    assert str(lineage[0].inputs[0].name).endswith(f"/tiktok/hashtags/{tag}/videos")
    hits = [str(t)[:200] for t in texts if key_hits(API_KEY, [t])]
    assert hits == [], f"the API key appears in {len(hits)} artifact(s): {hits}"


def test_a_server_echoing_the_key_does_not_put_it_in_errors(caplog: pytest.LogCaptureFixture) -> None:
    # A gateway (or a proxy) that repeats the Authorization header in its error message, request id
    # or validation issues: what the client raises and logs must still not hold the key.
    def handler(request: httpx.Request) -> httpx.Response:
        echoed = request.headers["authorization"]
        body = {
            "error": {
                "type": "unauthorized",
                "message": f"key {echoed} is revoked",
                "request_id": echoed,
                "issues": [echoed],
            }
        }
        return httpx.Response(401, json=body, headers={"X-Request-Id": echoed})

    with UnifAPIClient(API_KEY, "https://api.unifapi.test", transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(UnifAPIError) as caught:
            client.get_video_page("1")
    exc = caught.value
    assert key_hits(API_KEY, [str(exc), repr(exc), exc.to_dict(), exc.request_id, caplog.text]) == 0
