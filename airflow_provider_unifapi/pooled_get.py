"""GET requests sent straight on the connection pool httpx built for the API: the sync client's hot path.

For each call, ``httpx.Client.send`` builds a ``Request`` (parsing its URL), runs the auth, redirect,
cookie and event-hook steps, logs, wraps the answer in a ``Response`` and reads the body through a
decoder chain. For one keep-alive GET of a 50 KB JSON page that is ~0.25 ms of CPU, a fifth of what
a page costs end to end at 0 ms API latency (``benchmarks/``). This module sends the very same request
(the client's headers, timeouts, TLS settings, proxy and keep-alive pool: all of them built by httpx)
to the ``httpcore`` pool behind httpx's own transport, and maps httpcore's errors onto httpx's, so
the client handles every outcome exactly as on the httpx path.

It is used only when the client's transport for the base URL is a stock ``httpx.HTTPTransport``;
a transport passed in (``MockTransport`` in tests) goes through ``httpx.Client.send`` as before, and so
do all calls once a server has set a cookie (httpx's jar keeps it and sends it back).
The client asks for uncompressed bodies (``Accept-Encoding: identity``) on both paths, so nothing
here decodes; a body sent with another encoding anyway is refused as unreadable.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpcore
import httpx

__all__ = ["PooledGet", "PooledResponse"]

# Every exception httpcore raises derives from one of these.
_HTTPCORE_ERRORS: tuple[type[Exception], ...] = (
    httpcore.TimeoutException,
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.ProxyError,
    httpcore.UnsupportedProtocol,
    httpcore.ConnectionNotAvailable,
)


def as_httpx_error(exc: Exception) -> httpx.HTTPError:
    """The httpx exception httpx itself would raise for an httpcore one (httpx mirrors its names)."""
    for cls in type(exc).__mro__:
        mapped = getattr(httpx, cls.__name__, None)
        if isinstance(mapped, type) and issubclass(mapped, httpx.TransportError):
            return mapped(str(exc))
    return httpx.TransportError(str(exc))


class PooledResponse:
    """The part of ``httpx.Response`` the client reads: status, headers, body chunks, close."""

    __slots__ = ("_response", "headers", "status_code", "url")

    def __init__(self, response: httpcore.Response, url: str) -> None:
        self._response = response
        self.status_code: int = response.status
        self.headers = httpx.Headers(response.headers)
        self.url = url

    def as_httpx(self) -> httpx.Response:
        """Status and headers as an ``httpx.Response`` of its request (what httpx's cookie jar reads)."""
        return httpx.Response(self.status_code, headers=self.headers, request=httpx.Request("GET", self.url))

    def iter_bytes(self) -> Iterator[bytes]:
        """The body as it arrives; raises the httpx error a broken or encoded body would give."""
        encoding = self.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            raise httpx.DecodingError(f"the body is {encoding}-encoded although identity was asked for")
        try:
            yield from self._response.iter_stream()
        except _HTTPCORE_ERRORS as exc:
            raise as_httpx_error(exc) from None

    def close(self) -> None:
        """Give the connection back to the pool (or drop it if the body was not read to the end)."""
        self._response.close()


class PooledGet:
    """Sends GETs for ``client`` on its own httpcore pool. Build it with :meth:`for_client`."""

    def __init__(self, client: httpx.Client, pool: Any) -> None:
        base = client.base_url
        self._pool = pool
        self._scheme = base.raw_scheme
        self._host = base.raw_host
        self._port = base.port
        self._base_path = base.raw_path.rstrip(b"/")
        # The headers httpx would send (Host first, as httpx orders them), then the client's own.
        host = base.netloc
        self._origin = f"{base.scheme}://{host.decode('ascii')}"
        self._headers = [(b"Host", host)] + [
            (name, value) for name, value in client.headers.raw if name.lower() != b"host"
        ]
        self._extensions = {"timeout": client.timeout.as_dict()}

    @classmethod
    def for_client(cls, client: httpx.Client) -> PooledGet | None:
        """A pooled GET for ``client``'s base URL, or ``None`` when its transport is not httpx's stock one."""
        try:
            transport = client._transport_for_url(client.base_url)
            pool = transport._pool
        except AttributeError:  # another httpx version: the plain path still works
            return None
        if type(transport) is not httpx.HTTPTransport or not isinstance(pool, httpcore.ConnectionPool):
            return None
        return cls(client, pool)

    def target(self, path: str, query: str) -> bytes:
        """The request target httpx would send for ``path`` under the base URL with ``query``."""
        target = self._base_path + path.encode("ascii")
        return target + b"?" + query.encode("ascii") if query else target

    def send(self, path: str, query: str, headers: dict[str, str]) -> PooledResponse:
        """Send ``GET path?query`` with the client's headers plus ``headers``; the body is not read yet."""
        raw_headers = self._headers
        if headers:
            replaced = {name.lower().encode("ascii") for name in headers}
            raw_headers = [(n, v) for n, v in raw_headers if n.lower() not in replaced] + [
                (name.encode("ascii"), value.encode("ascii")) for name, value in headers.items()
            ]
        target = self.target(path, query)
        url = httpcore.URL(scheme=self._scheme, host=self._host, port=self._port, target=target)
        request = httpcore.Request(b"GET", url, headers=raw_headers, extensions=self._extensions)
        try:
            return PooledResponse(self._pool.handle_request(request), self._origin + target.decode("ascii"))
        except _HTTPCORE_ERRORS as exc:
            raise as_httpx_error(exc) from None
