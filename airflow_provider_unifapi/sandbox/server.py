"""HTTP layer of the sandbox: a ``ThreadingHTTPServer`` with a lean HTTP/1.1 keep-alive handler.

The stock ``BaseHTTPRequestHandler.parse_request`` runs the ``email`` parser on every request, and
its ``send_header`` path writes headers and body separately (which also invites Nagle/delayed-ACK
stalls). At ~1,500+ pages/s those costs would be what a client benchmark measures, so
:class:`_Handler` parses the request line and headers itself and sends each response with a single
``sendall``. After a page is sent it renders the page the client will most likely ask for next, so
that work overlaps with the client parsing the page it just got.

The handler never logs request headers, so the API key cannot end up in output; the optional
access log (``verbose``) prints method, target, status, size, time and request id only.
"""

from __future__ import annotations

import contextlib
import select
import socket
import socketserver
import struct
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from airflow_provider_unifapi.sandbox.admin import handle_admin
from airflow_provider_unifapi.sandbox.api import (
    ApiService,
    Reply,
    error_body,
    new_request_id,
    parse_query,
    reason,
)
from airflow_provider_unifapi.sandbox.settings import Settings
from airflow_provider_unifapi.sandbox.state import SandboxState

_MAX_LINE = 65536
_MAX_HEADERS = 200
_MAX_BODY = 64 * 1024 * 1024
# Open client connections kept at most. A client that opens a connection per page and never closes
# them (HttpOperator at 1M records leaves ~20k) would otherwise run the process out of file
# descriptors, and accept() failing in a loop wedges the whole server. Past the cap the connection
# idle for longest is closed, as a real server's idle timeout would.
MAX_OPEN_CONNECTIONS = 1024


def _shutdown_all(socks: list[socket.socket]) -> None:
    """Shut both directions of each socket (one already closed is skipped)."""
    for sock in socks:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


class _BadRequest(Exception):
    """The bytes on the wire are not an HTTP/1.x request we can answer."""


class _HTTPServer(ThreadingHTTPServer):
    """Threaded server that knows its sandbox and can drop open keep-alive connections on stop."""

    daemon_threads = True
    request_queue_size = 128  # many clients connecting at once (concurrency benchmarks)

    def __init__(self, address: tuple[str, int], service: ApiService, verbose: bool) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.service = service
        self.verbose = verbose
        self._open: set[socket.socket] = set()
        #: connections waiting for their next request, longest-waiting first
        self._idle: dict[socket.socket, None] = {}
        #: connections shut by the cap whose handler has not finished yet (no longer counted)
        self._closing: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a DNS lookup that can stall start-up.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def track(self, sock: socket.socket, opened: bool) -> None:
        """Remember (or forget) an open client connection."""
        with self._open_lock:
            if opened:
                self._open.add(sock)
            else:
                self._open.discard(sock)
                self._idle.pop(sock, None)
                self._closing.discard(sock)
        if opened:
            self._evict_over_cap()

    def mark_idle(self, sock: socket.socket, idle: bool) -> None:
        """Note whether a connection is waiting for a request (only those may be closed by the cap)."""
        with self._open_lock:
            if not idle:
                self._idle.pop(sock, None)
            elif sock in self._open:
                self._idle[sock] = None
        if idle:
            self._evict_over_cap()

    def _evict_over_cap(self) -> None:
        """Past ``MAX_OPEN_CONNECTIONS``, close the connections idle for longest (a new one, or one
        that just became idle, is when the count is checked)."""
        evict: list[socket.socket] = []
        with self._open_lock:
            while len(self._open) - len(self._closing) > MAX_OPEN_CONNECTIONS and self._idle:
                oldest = next(iter(self._idle))
                del self._idle[oldest]
                self._closing.add(oldest)
                evict.append(oldest)
        _shutdown_all(evict)  # each handler reads EOF and finishes

    def drop_connections(self) -> None:
        """Shut every open client connection, so a stopped sandbox really stops answering."""
        with self._open_lock:
            socks = list(self._open)
        _shutdown_all(socks)


class _Handler(BaseHTTPRequestHandler):
    """One client connection; serves requests until the client closes or asks to."""

    protocol_version = "HTTP/1.1"
    server_version = "UnifAPI-Sandbox"
    disable_nagle_algorithm = True
    timeout = 300  # an idle keep-alive connection is closed after 5 minutes
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)
        self._closed_hard = False

    def finish(self) -> None:
        self.server.track(self.connection, False)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the stock per-request stderr log (``verbose`` has its own access log)."""

    # --- request parsing ----------------------------------------------------------------------------
    def _read_head(self) -> tuple[str, str, str, list[tuple[str, str]]] | None:
        line = self.rfile.readline(_MAX_LINE + 1)
        while line in (b"\r\n", b"\n"):  # tolerate stray CRLF between keep-alive requests
            line = self.rfile.readline(_MAX_LINE + 1)
        if not line:
            return None
        if len(line) > _MAX_LINE:
            raise _BadRequest("request line too long")
        parts = line.decode("latin-1").split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise _BadRequest("malformed request line")
        method, target, version = parts
        pairs: list[tuple[str, str]] = []
        while True:
            raw = self.rfile.readline(_MAX_LINE + 1)
            if raw in (b"\r\n", b"\n", b""):
                break
            if len(raw) > _MAX_LINE or len(pairs) >= _MAX_HEADERS:
                raise _BadRequest("headers too large")
            name, sep, value = raw.decode("latin-1").partition(":")
            if not sep or not name or name != name.strip():
                raise _BadRequest("malformed header line")
            pairs.append((name.lower(), value.strip()))
        self.command, self.path, self.request_version = method, target, version
        self.requestline = f"{method} {target} {version}"
        return method, target, version, pairs

    def _read_body(self, headers: dict[str, str]) -> bytes:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size_line = self.rfile.readline(_MAX_LINE + 1).split(b";")[0].strip()
                try:
                    size = int(size_line, 16)
                except ValueError:
                    raise _BadRequest("bad chunk size") from None
                if size == 0:
                    while self.rfile.readline(_MAX_LINE + 1) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline(_MAX_LINE + 1)
        length = headers.get("content-length")
        if not length:
            return b""
        if headers.get("expect", "").lower() == "100-continue":  # curl does this for bodies > 1 KB
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if not length.isdigit() or int(length) > _MAX_BODY:
            raise _BadRequest("bad Content-Length")
        return self.rfile.read(int(length))

    # --- one request ----------------------------------------------------------------------------------
    def handle_one_request(self) -> None:
        """Read, answer and (for API pages) prefetch; sets ``close_connection`` as HTTP/1.1 says."""
        self.close_connection = True
        self.command = None  # type: ignore[assignment]  # set again once the request line parses
        self.server.mark_idle(self.connection, True)
        try:
            head = self._read_head()
        except (TimeoutError, ConnectionError, OSError):
            return
        except _BadRequest as exc:
            self._send(
                400,
                b'{"error":{"type":"validation_error","message":"%s"}}' % str(exc).encode(),
                "application/json",
                [],
                new_request_id(),
            )
            return
        finally:
            self.server.mark_idle(self.connection, False)
        if head is None:
            return
        started = time.perf_counter()
        method, target, version, pairs = head
        headers = dict(pairs)
        connection = headers.get("connection", "").lower()
        self.close_connection = "close" in connection or (
            version == "HTTP/1.0" and "keep-alive" not in connection
        )
        try:
            body = self._read_body(headers)
        except _BadRequest as exc:
            self.close_connection = True
            self._send(
                400,
                error_body(new_request_id(), "validation_error", str(exc)),
                "application/json",
                [],
                new_request_id(),
            )
            return
        except OSError:
            self.close_connection = True
            return
        service = self.server.service
        reply: Reply | None = None
        try:
            if target == "/_sandbox" or target.startswith(("/_sandbox/", "/_sandbox?")):
                path, _, query = target.partition("?")
                status, payload = handle_admin(
                    service.state, "GET" if method == "HEAD" else method, path, parse_query(query), body
                )
                reply = Reply(status, payload, new_request_id())
            else:
                reply = service.handle(method, target, pairs, headers, self._client_alive)
        except Exception:  # a sandbox bug must still get an answer, and a trace for its author
            print("unifapi-sandbox: internal error while serving a request:", file=sys.stderr)
            traceback.print_exc(file=sys.stderr)
            rid = new_request_id()
            reply = Reply(500, error_body(rid, "internal_error", "sandbox bug; see server stderr"), rid)
        self._deliver(reply)
        if self.server.verbose:
            print(
                f'{self.client_address[0]} "{method} {target}" {reply.status or "-"} {len(reply.body)} '
                f"{(time.perf_counter() - started) * 1000:.1f}ms {reply.request_id}"
                f"{' fault=' + reply.action if reply.action else ''}",
                file=sys.stderr,
                flush=True,
            )
        if reply.prefetch is not None and not self.close_connection:
            service.prefetch(reply.prefetch)

    def _client_alive(self) -> bool:
        """False once the client has closed or reset the connection (checked without blocking)."""
        sock = self.connection
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            if not readable:
                return True
            return sock.recv(1, socket.MSG_PEEK) != b""
        except (OSError, ValueError):
            return False

    def _deliver(self, reply: Reply) -> None:
        if reply.action == "reset":
            self._reset()
        elif reply.action == "drop":
            self.close_connection = True
        elif reply.action == "truncate":
            self.close_connection = True
            self._send(
                reply.status,
                reply.body,
                reply.content_type,
                reply.headers,
                reply.request_id,
                send_bytes=len(reply.body) // 2,
            )
        else:
            self._send(reply.status, reply.body, reply.content_type, reply.headers, reply.request_id)

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: list[tuple[str, str]],
        request_id: str,
        send_bytes: int | None = None,
    ) -> None:
        lines = [
            f"HTTP/1.1 {status} {reason(status)}",
            f"Content-Type: {content_type}",
            f"Content-Length: {len(body)}",
            f"X-Request-Id: {request_id}",
        ]
        lines.extend(f"{k}: {v}" for k, v in headers)
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        payload = body if send_bytes is None else body[:send_bytes]
        if self.command == "HEAD":
            payload = b""
        try:
            self.wfile.write(head + payload)  # one sendall: no header/body split on the wire
        except OSError:
            self.close_connection = True

    def _reset(self) -> None:
        """Abort the connection: SO_LINGER 0 makes close() send RST instead of FIN."""
        self.close_connection = True
        sock = self.connection
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            # The makefile() objects hold references; close them so sock.close() is the real close.
            self.rfile.close()
            self.wfile.close()
            sock.close()
        except OSError:
            pass


class SandboxServer:
    """A local UnifAPI on a background thread.

    >>> with SandboxServer(balance=500) as sandbox:  # doctest: +SKIP
    ...     httpx.get(f"{sandbox.url}/tiktok/hashtags/5050", headers={"Authorization": "Bearer k"})

    :param host: address to bind; loopback by default so nothing outside the machine can reach it.
    :param port: port to bind; 0 picks a free one (read it back from :attr:`url`).
    :param verbose: print a one-line access log per request to stderr (never any header).
    :param settings: any setting of ``POST /_sandbox/reset`` (``balance``, ``api_keys``,
        ``hashtags``, ``duplicate_rate``, ...). ``reset`` starts again from these.
    """

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, verbose: bool = False, **settings: Any
    ) -> None:
        self.host, self.port, self.verbose = host, port, verbose
        self.state = SandboxState(Settings().updated(settings))
        self.service = ApiService(self.state)
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:43121`` (only once started)."""
        if self._httpd is None:
            raise RuntimeError("SandboxServer is not started")
        host = self._httpd.server_name
        return (
            f"http://[{host}]:{self._httpd.server_port}"
            if ":" in host
            else f"http://{host}:{self._httpd.server_port}"
        )

    @property
    def address(self) -> tuple[str, int]:
        """The bound ``(host, port)``."""
        if self._httpd is None:
            raise RuntimeError("SandboxServer is not started")
        return self._httpd.server_name, self._httpd.server_port

    def start(self) -> SandboxServer:
        """Bind and serve on a daemon thread; returns ``self``."""
        if self._httpd is not None:
            return self
        self._httpd = _HTTPServer((self.host, self.port), self.service, self.verbose)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="unifapi-sandbox",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, close open connections, release the port."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.drop_connections()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
