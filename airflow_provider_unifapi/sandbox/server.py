"""The sandbox's HTTP server: :class:`SandboxServer` (start, stop, URL) and the threaded server
under it, which keeps count of open client connections so a leaky client cannot exhaust the
process's file descriptors. Requests themselves are read and answered in :mod:`.handler`.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
from http.server import ThreadingHTTPServer
from typing import Any

from airflow_provider_unifapi.sandbox.api import ApiService
from airflow_provider_unifapi.sandbox.handler import RequestHandler
from airflow_provider_unifapi.sandbox.settings import Settings
from airflow_provider_unifapi.sandbox.state import SandboxState

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


class SandboxHTTPServer(ThreadingHTTPServer):
    """Threaded server that knows its sandbox and can drop open keep-alive connections on stop.

    :param address: ``(host, port)`` to bind; a host with ``:`` is IPv6.
    :param service: answers the API calls.
    :param verbose: print one access-log line per request.
    """

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
        super().__init__(address, RequestHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a DNS lookup that can stall start-up.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def track(self, sock: socket.socket, opened: bool) -> None:
        """Remember (or forget) an open client connection.

        :param sock: the client connection.
        :param opened: ``True`` when it opens, ``False`` when its handler finishes.
        """
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
        """Note whether a connection is waiting for a request (only those may be closed by the cap).

        :param sock: the client connection.
        :param idle: ``True`` while it waits for its next request.
        """
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
        self._httpd: SandboxHTTPServer | None = None
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
        self._httpd = SandboxHTTPServer((self.host, self.port), self.service, self.verbose)
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
