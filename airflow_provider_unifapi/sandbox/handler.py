"""One client connection: a lean HTTP/1.1 keep-alive handler that reads requests and writes replies.

The stock ``BaseHTTPRequestHandler.parse_request`` runs the ``email`` parser on every request, and
its ``send_header`` path writes headers and body separately (which also invites Nagle/delayed-ACK
stalls). At ~1,500+ pages/s those costs would be what a client benchmark measures, so
:class:`RequestHandler` parses the request line and headers itself and sends each response with a
single ``sendall``. After a page is sent it renders the page the client will most likely ask for
next, so that work overlaps with the client parsing the page it just got.

The handler never logs request headers, so the API key cannot end up in output; the optional
access log (``verbose``) prints method, target, status, size, time and request id only.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import sys
import time
import traceback
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

from airflow_provider_unifapi.sandbox.admin import handle_admin
from airflow_provider_unifapi.sandbox.replies import Reply, error_body, reason
from airflow_provider_unifapi.sandbox.request import new_request_id, parse_query

if TYPE_CHECKING:
    from airflow_provider_unifapi.sandbox.server import SandboxHTTPServer

_MAX_LINE = 65536
_MAX_HEADERS = 200
_MAX_BODY = 64 * 1024 * 1024
_BLANK_LINES = (b"\r\n", b"\n")
_END_OF_HEAD = (*_BLANK_LINES, b"")  # a blank line, or EOF

#: ``(method, target, version, header pairs)`` of a request whose head was read.
RequestHead = tuple[str, str, str, list[tuple[str, str]]]


class BadRequest(Exception):
    """The bytes on the wire are not an HTTP/1.x request we can answer."""


def _wants_close(version: str, headers: dict[str, str]) -> bool:
    """Whether the connection closes after this request, as HTTP/1.0 and 1.1 say."""
    connection = headers.get("connection", "").lower()
    return "close" in connection or (version == "HTTP/1.0" and "keep-alive" not in connection)


def _is_admin(target: str) -> bool:
    return target == "/_sandbox" or target.startswith(("/_sandbox/", "/_sandbox?"))


class RequestHandler(BaseHTTPRequestHandler):
    """One client connection; serves requests until the client closes or asks to."""

    protocol_version = "HTTP/1.1"
    server_version = "UnifAPI-Sandbox"
    disable_nagle_algorithm = True
    timeout = 300  # an idle keep-alive connection is closed after 5 minutes
    server: SandboxHTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        self.server.track(self.connection, False)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the stock per-request stderr log (``verbose`` has its own access log)."""

    # --- one request ----------------------------------------------------------------------------
    def handle_one_request(self) -> None:
        """Read, answer and (for API pages) prefetch; sets ``close_connection`` as HTTP/1.1 says."""
        self.close_connection = True
        self.command = None  # type: ignore[assignment]  # set again once the request line parses
        head = self._next_head()
        if head is None:
            return
        started = time.perf_counter()
        method, target, version, pairs = head
        headers = dict(pairs)
        self.close_connection = _wants_close(version, headers)
        body = self._body_or_none(headers)
        if body is None:
            return
        reply = self._answer(method, target, pairs, headers, body)
        self._deliver(reply)
        if self.server.verbose:
            self._log_access(method, target, reply, started)
        if reply.prefetch is not None and not self.close_connection:
            self.server.service.prefetch(reply.prefetch)

    def _next_head(self) -> RequestHead | None:
        """The next request's head; ``None`` when the client left or sent garbage (answered 400).

        Only while waiting here is the connection idle, i.e. one the connection cap may close.
        """
        self.server.mark_idle(self.connection, True)
        try:
            return self._read_head()
        except (TimeoutError, ConnectionError, OSError):
            return None
        except BadRequest as exc:
            self._send(
                400,
                b'{"error":{"type":"validation_error","message":"%s"}}' % str(exc).encode(),
                "application/json",
                [],
                new_request_id(),
            )
            return None
        finally:
            self.server.mark_idle(self.connection, False)

    def _body_or_none(self, headers: dict[str, str]) -> bytes | None:
        """The request body; ``None`` (connection to close) when it cannot be read."""
        try:
            return self._read_body(headers)
        except BadRequest as exc:
            self.close_connection = True
            self._send(
                400,
                error_body(new_request_id(), "validation_error", str(exc)),
                "application/json",
                [],
                new_request_id(),
            )
        except OSError:
            self.close_connection = True
        return None

    def _answer(
        self, method: str, target: str, pairs: list[tuple[str, str]], headers: dict[str, str], body: bytes
    ) -> Reply:
        """Route to the admin API or the API service; a sandbox bug becomes a 500."""
        service = self.server.service
        try:
            if _is_admin(target):
                path, _, query = target.partition("?")
                admin_method = "GET" if method == "HEAD" else method
                status, payload = handle_admin(service.state, admin_method, path, parse_query(query), body)
                return Reply(status, payload, new_request_id())
            return service.handle(method, target, pairs, headers, self._client_alive)
        except Exception:  # a sandbox bug must still get an answer, and a trace for its author
            print("unifapi-sandbox: internal error while serving a request:", file=sys.stderr)
            traceback.print_exc(file=sys.stderr)
            rid = new_request_id()
            return Reply(500, error_body(rid, "internal_error", "sandbox bug; see server stderr"), rid)

    def _log_access(self, method: str, target: str, reply: Reply, started: float) -> None:
        """One access-log line on stderr: never a header, so never the key."""
        print(
            f'{self.client_address[0]} "{method} {target}" {reply.status or "-"} {len(reply.body)} '
            f"{(time.perf_counter() - started) * 1000:.1f}ms {reply.request_id}"
            f"{' fault=' + reply.action if reply.action else ''}",
            file=sys.stderr,
            flush=True,
        )

    # --- reading ----------------------------------------------------------------------------------
    def _read_head(self) -> RequestHead | None:
        line = self.rfile.readline(_MAX_LINE + 1)
        while line in _BLANK_LINES:  # tolerate stray CRLF between keep-alive requests
            line = self.rfile.readline(_MAX_LINE + 1)
        if not line:
            return None
        if len(line) > _MAX_LINE:
            raise BadRequest("request line too long")
        parts = line.decode("latin-1").split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise BadRequest("malformed request line")
        method, target, version = parts
        pairs: list[tuple[str, str]] = []
        while True:
            raw = self.rfile.readline(_MAX_LINE + 1)
            if raw in _END_OF_HEAD:
                break
            if len(raw) > _MAX_LINE or len(pairs) >= _MAX_HEADERS:
                raise BadRequest("headers too large")
            name, sep, value = raw.decode("latin-1").partition(":")
            if not sep or not name or name != name.strip():
                raise BadRequest("malformed header line")
            pairs.append((name.lower(), value.strip()))
        self.command, self.path, self.request_version = method, target, version
        self.requestline = f"{method} {target} {version}"
        return method, target, version, pairs

    def _read_body(self, headers: dict[str, str]) -> bytes:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return self._read_chunked()
        length = headers.get("content-length")
        if not length:
            return b""
        if headers.get("expect", "").lower() == "100-continue":  # curl does this for bodies > 1 KB
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if not length.isdigit() or int(length) > _MAX_BODY:
            raise BadRequest("bad Content-Length")
        return self.rfile.read(int(length))

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        while True:
            size_line = self.rfile.readline(_MAX_LINE + 1).split(b";")[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                raise BadRequest("bad chunk size") from None
            if size == 0:
                while self.rfile.readline(_MAX_LINE + 1) not in _END_OF_HEAD:
                    pass  # trailers: read and ignored
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline(_MAX_LINE + 1)

    def _client_alive(self) -> bool:
        """False once the client has closed or reset the connection (checked without blocking)."""
        sock: socket.socket = self.connection
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            if not readable:
                return True
            return sock.recv(1, socket.MSG_PEEK) != b""
        except (OSError, ValueError):
            return False

    # --- writing ----------------------------------------------------------------------------------
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
