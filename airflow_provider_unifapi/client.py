"""Pure httpx client of the UnifAPI TikTok hashtag endpoints, sync and async. Imports nothing from Airflow.

Both clients share :class:`_ClientCore` (argument checks, request building, decoding, accounting,
retry policy); only the I/O differs. Paging and name resolution are small sans-I/O state machines
(:class:`VideoPager`, :class:`_NameResolver`) so the sync and async loops stay a few lines each.

Money matters here: every call reports its attempts and the worst-case credits of attempts whose
billing is unknown (``page.call_stats``), and a per-call ``max_credits`` cap covers retries too.
"""

from __future__ import annotations

import ipaddress
import os
import re
import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, TypeVar, Union
from urllib.parse import quote, urlencode, urlsplit

import httpx
from pydantic import TypeAdapter
from tenacity import AsyncRetrying, Retrying, stop_never

from airflow_provider_unifapi import __version__
from airflow_provider_unifapi.exceptions import (
    UnifAPIError,
    UnifAPIHashtagNotFoundError,
    UnifAPIInputError,
    UnifAPIInsecureURLError,
    UnifAPIInsufficientCreditsError,
    UnifAPIPaginationError,
    UnifAPIRateLimitedError,
    UnifAPITruncatedByBalanceError,
)
from airflow_provider_unifapi.models import (
    BalanceReading,
    CallStats,
    Hashtag,
    HashtagEnvelope,
    HashtagPage,
    RateLimitInfo,
    VideoPage,
)
from airflow_provider_unifapi.pooled_get import PooledGet, PooledResponse
from airflow_provider_unifapi.responses import (
    body_too_large_error,
    decode_error,
    decode_success,
    rate_limit_from_headers,
    transport_error,
    truncated_body_error,
)
from airflow_provider_unifapi.retrying import RetryPolicy

__all__ = [
    "DEFAULT_BASE_URL",
    "MAX_PAGE_SIZE",
    "AsyncUnifAPIClient",
    "ResolvedHashtag",
    "UnifAPIClient",
    "VideoPager",
    "validate_base_url",
    "validate_hashtag_id",
    "validate_limit",
]

DEFAULT_BASE_URL = "https://api.unifapi.com"
MAX_PAGE_SIZE = 50
DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024  # a full page of 50 videos is ~40 KB
MAX_CREDITS_HEADER = "X-Unifapi-Max-Credits"

_DIGITS = re.compile(r"[0-9]{1,64}")  # ASCII digits only: str.isdigit() accepts "١٢٣"
_MAX_CURSOR_LENGTH = 4096
_MAX_NAME_LENGTH = 150

M = TypeVar("M")
_AnyResponse = Union[httpx.Response, PooledResponse]

_VIDEO_PAGE: TypeAdapter[VideoPage] = TypeAdapter(VideoPage)
_HASHTAG_PAGE: TypeAdapter[HashtagPage] = TypeAdapter(HashtagPage)
_HASHTAG: TypeAdapter[HashtagEnvelope] = TypeAdapter(HashtagEnvelope)


# -- argument checks: refuse bad input before any request is sent ---------------------------------
def validate_hashtag_id(value: Any, argument: str = "hashtag_id") -> str:
    """Return the hashtag id as a string of ASCII digits, or raise :class:`UnifAPIInputError`.

    Ints are accepted (and kept exact); anything else that is not ``^[0-9]+$`` is refused, so an id
    can never change the request path (``/``, ``..``, ``%2F``...).
    """
    if isinstance(value, bool) or value is None:
        raise UnifAPIInputError(
            argument, f"expected a string of digits such as '7106594312292', got {value!r}"
        )
    if isinstance(value, int):
        if value < 0:
            raise UnifAPIInputError(argument, f"must not be negative, got {value}")
        value = str(value)
    if not isinstance(value, str) or not _DIGITS.fullmatch(value):
        shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
        raise UnifAPIInputError(
            argument, f"must be the numeric hashtag id as a string of digits (1-64 ASCII digits), got {shown}"
        )
    return value


def validate_limit(value: Any, argument: str = "limit") -> int:
    """Return ``value`` when it is an int from 1 to 50 (the API's page-size range)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PAGE_SIZE:
        raise UnifAPIInputError(argument, f"must be an integer from 1 to {MAX_PAGE_SIZE}, got {value!r}")
    return value


def _check_encodable(argument: str, value: str) -> str:
    # A lone surrogate cannot be sent at all; refuse it here, typed, instead of deep inside httpx.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise UnifAPIInputError(argument, "contains characters that cannot be encoded as UTF-8") from None
    return value


def _validate_cursor(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > _MAX_CURSOR_LENGTH:
        raise UnifAPIInputError(
            "cursor", "must be None or the non-empty next_cursor string of an earlier page, passed unchanged"
        )
    return _check_encodable("cursor", value)


def _validate_max_credits(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UnifAPIInputError("max_credits", f"must be None or an integer >= 1, got {value!r}")
    return value


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_HOST_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


def _valid_host(host: str) -> bool:
    if host.startswith("[") or ":" in host:  # an IPv6 literal
        try:
            ipaddress.IPv6Address(host.strip("[]"))
        except ValueError:
            return False
        return True
    return len(host) <= 253 and all(_HOST_LABEL.fullmatch(label) for label in host.split("."))


def _no_tls_context() -> ssl.SSLContext:
    """The TLS context of a client whose base URL is ``http://`` (loopback only): it never opens a
    TLS connection, so loading the CA bundle (~17 ms a client, the bulk of a task's set-up against
    the sandbox) buys nothing. This context trusts no CA: were it ever used, it would refuse the peer."""
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # certificate and host name checks on


def validate_base_url(base_url: Any) -> str:
    """Return the normalised base URL, refusing anything that would leak the key.

    ``https://`` is required, except ``http://`` to a loopback host (the sandbox). The host must be a
    plain ASCII name (punycode ``xn--`` for international names) or an IP literal, so the host the
    key goes to is exactly the one written.
    """
    example = f"a URL such as {DEFAULT_BASE_URL!r}"
    if not isinstance(base_url, str) or not base_url.strip():
        raise UnifAPIInputError("base_url", f"must be {example}, got {base_url!r}")
    url = base_url.strip().rstrip("/")
    if not url.isascii() or any(c <= " " or c in "\\\x7f" for c in url):
        raise UnifAPIInputError(
            "base_url",
            f"must be {example}: ASCII without spaces, control characters or backslashes "
            "(write international domain names in punycode, xn--...)",
        )
    if "://" not in url:
        url = "https://" + url
    try:
        parts = urlsplit(url)
        host, _ = parts.hostname, parts.port  # .port raises on a port that is not a number in range
        httpx.URL(url)
    except (ValueError, httpx.InvalidURL):
        raise UnifAPIInputError("base_url", f"is not a valid URL; expected {example}") from None
    if parts.scheme not in ("http", "https") or not host:
        raise UnifAPIInputError("base_url", f"must be an http(s) URL: {example}")
    if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
        raise UnifAPIInputError(
            "base_url", "must not carry credentials, a query or a fragment: put the API key in the password"
        )
    if not _valid_host(host):
        raise UnifAPIInputError("base_url", f"has an invalid host name {host!r}; expected {example}")
    if parts.scheme == "http" and not _is_loopback(host):
        raise UnifAPIInsecureURLError(
            "base_url",
            f"http:// would send the API key in clear text to {host!r}; use https:// "
            "(plain http is allowed only for loopback hosts such as the local sandbox)",
        )
    return url


@dataclass(frozen=True)
class ResolvedHashtag:
    """A hashtag found by exact name, and what finding it cost."""

    hashtag: Hashtag
    credits_charged: int
    calls: int
    request_ids: tuple[str, ...]


# -- sans-I/O state machines shared by the sync and async clients ----------------------------------
class VideoPager:
    """Decides which page to fetch next while following a hashtag's cursor chain.

    Stops when ``has_more`` is false or ``next_cursor`` is null, after ``max_pages`` pages, or after
    ``max_empty_pages`` empty pages in a row (each costs a credit); refuses a cursor that repeats.
    Never follows the cursor of a page truncated by balance: its ``next_cursor`` may skip records.

    :param cursor: cursor to start from (``None`` = first page).
    :param seen_cursors: cursors already followed in an earlier try (resume), so a repeat is still caught.
    """

    def __init__(
        self,
        cursor: str | None = None,
        *,
        max_pages: int | None = None,
        max_empty_pages: int = 3,
        seen_cursors: set[str] | None = None,
    ) -> None:
        self.cursor = _validate_cursor(cursor)
        self.max_pages = max_pages
        self.max_empty_pages = max_empty_pages
        self.pages = 0
        self.empty_run = 0
        self.seen_cursors: set[str] = set(seen_cursors or ())
        if self.cursor is not None:
            self.seen_cursors.add(self.cursor)
        #: why the pager stopped: ``exhausted``, ``max_pages``, ``empty_pages`` or ``balance_truncated``.
        self.stop_reason: str | None = None

    @property
    def done(self) -> bool:
        return self.stop_reason is not None

    def check_before_fetch(self) -> bool:
        """False (and ``stop_reason`` set) when no further page may be fetched."""
        if self.done:
            return False
        if self.max_pages is not None and self.pages >= self.max_pages:
            self.stop_reason = "max_pages"
            return False
        return True

    def consume(self, page: VideoPage) -> None:
        """Move past ``page`` (or stop); raises :class:`UnifAPIPaginationError` on a repeated cursor."""
        self.pages += 1
        if page.billing.truncated_due_to_balance:
            self.stop_reason = "balance_truncated"  # cursor stays on the truncated page's input
            return
        self.empty_run = self.empty_run + 1 if not page.data else 0
        if page.pagination.is_last:
            self.stop_reason = "exhausted"
            return
        next_cursor = page.pagination.next_cursor
        assert next_cursor is not None  # is_last covers None
        if next_cursor in self.seen_cursors:
            raise UnifAPIPaginationError(
                f"UnifAPI returned a cursor it had already returned (after {self.pages} pages); "
                "stopping instead of looping",
                request_id=page.request_id,
            )
        if self.empty_run >= self.max_empty_pages:
            self.cursor = next_cursor
            self.stop_reason = "empty_pages"
            return
        self.seen_cursors.add(next_cursor)
        self.cursor = next_cursor


class _NameResolver:
    """Pages hashtag search results until a hashtag's ``name`` equals the name asked for."""

    def __init__(self, name: Any, *, limit: int, max_pages: int) -> None:
        if not isinstance(name, str) or not name.strip().lstrip("#").strip():
            raise UnifAPIInputError(
                "hashtag_name", f"must be a non-empty hashtag name such as 'cats', got {name!r}"
            )
        cleaned = name.strip().lstrip("#").strip()
        if len(cleaned) > _MAX_NAME_LENGTH or not cleaned.isprintable():
            raise UnifAPIInputError(
                "hashtag_name", f"must be printable text of at most {_MAX_NAME_LENGTH} characters"
            )
        _check_encodable("hashtag_name", cleaned)
        self.name = cleaned
        self.wanted = cleaned.casefold()
        self.limit = validate_limit(limit)
        if isinstance(max_pages, bool) or not isinstance(max_pages, int) or max_pages < 1:
            raise UnifAPIInputError("max_pages", f"must be an integer >= 1, got {max_pages!r}")
        self.max_pages = max_pages
        self.cursor: str | None = None
        self.calls = 0
        self.credits = 0
        self.request_ids: list[str] = []
        self.found: Hashtag | None = None
        self.exhausted = False

    def consume(self, page: HashtagPage) -> None:
        self.calls += 1
        self.credits += page.billing.credits_charged
        self.request_ids.append(page.request_id)
        for item in page.data:
            if item.name.casefold() == self.wanted:
                self.found = item
                return
        if page.pagination.is_last or self.calls >= self.max_pages:
            self.exhausted = True
        else:
            self.cursor = page.pagination.next_cursor

    @property
    def more(self) -> bool:
        return self.found is None and not self.exhausted

    def result(self) -> ResolvedHashtag:
        if self.found is None:
            err = UnifAPIHashtagNotFoundError(
                f"No hashtag named {self.name!r} in {self.calls} page(s) of search results "
                f"(costing {self.credits} credits); pass hashtag_id instead, or check the spelling",
                credits_charged=self.credits,
            )
            raise err
        return ResolvedHashtag(self.found, self.credits, self.calls, tuple(self.request_ids))


# -- one call's attempts ---------------------------------------------------------------------------
@dataclass
class _Call:
    """What one logical call sends, and how its attempts went (mutated across retries)."""

    label: str
    path: str
    params: dict[str, Any]
    adapter: TypeAdapter[Any]
    limit: int  # records asked for; the worst-case cost of an attempt is max(limit, 1)
    max_credits: int | None = None
    #: called with the worst-case credits of each retry before it is sent (write-ahead accounting)
    before_retry: Callable[[int], None] | None = field(default=None, repr=False)
    attempts: int = 0
    rate_limited: int = 0
    possibly_billed: int = 0
    last_error: UnifAPIError | None = field(default=None, repr=False)

    def credit_room(self) -> int | None:
        return None if self.max_credits is None else self.max_credits - self.possibly_billed

    def prepare_attempt(self) -> tuple[dict[str, Any], dict[str, str]]:
        """Params and headers of the next attempt, with ``limit`` shrunk to the credit room left."""
        self.attempts += 1
        params = dict(self.params)
        headers: dict[str, str] = {}
        room = self.credit_room()
        if room is not None:
            if "limit" in params:
                params["limit"] = min(params["limit"], room)
                self.limit = params["limit"]
            headers[MAX_CREDITS_HEADER] = str(room)
        if self.attempts > 1 and self.before_retry is not None:
            self.before_retry(self.worst_case)
        return params, headers

    @property
    def worst_case(self) -> int:
        return max(self.limit, 1)


class _ClientCore:
    """Everything the sync and async clients share; see :class:`UnifAPIClient` for the arguments."""

    def __init__(
        self,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        timeout: float = 30.0,
        max_retries: int = 5,
        max_retry_wait: float = 60.0,
        backoff_base: float = 0.5,
        retry_billed_errors: bool = False,
        max_rate_limit_wait: float = 300.0,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        max_connections: int = 10,
        verify: bool | str = True,
        user_agent: str | None = None,
        transport: Any = None,
    ) -> None:
        if not isinstance(api_key, str) or not api_key.strip():
            raise UnifAPIInputError(
                "api_key", "is empty: set the UnifAPI API key as the connection's password (API key field)"
            )
        if not api_key.strip().isascii() or any(c.isspace() or not c.isprintable() for c in api_key.strip()):
            raise UnifAPIInputError(
                "api_key", "contains whitespace, control or non-ASCII characters; paste the key again"
            )
        # Kept only to scrub it from anything a server echoes back (error messages, request ids).
        self._secret = api_key.strip()
        self.base_url = validate_base_url(base_url)
        _check_number("timeout", timeout, minimum=0.001)
        _check_int("max_retries", max_retries, minimum=0, maximum=100)
        _check_number("max_retry_wait", max_retry_wait, minimum=0)
        _check_number("backoff_base", backoff_base, minimum=0)
        _check_number("max_rate_limit_wait", max_rate_limit_wait, minimum=0)
        _check_int("max_response_bytes", max_response_bytes, minimum=1024)
        _check_int("max_connections", max_connections, minimum=1, maximum=1000)
        if verify is False:
            # TLS verification stays on: the key must not go to a host we have not authenticated.
            raise UnifAPIInputError("verify", "cannot be False; pass a CA bundle path for a private CA")
        if verify is not True and (not isinstance(verify, str) or not os.path.isfile(verify)):
            raise UnifAPIInputError(
                "verify", f"must be True or the path of an existing CA bundle file, got {verify!r}"
            )
        self.policy = RetryPolicy(
            max_retries=max_retries,
            max_retry_wait=float(max_retry_wait),
            backoff_base=float(backoff_base),
            retry_billed_errors=bool(retry_billed_errors),
            max_rate_limit_wait=float(max_rate_limit_wait),
        )
        self.timeout = float(timeout)
        self.max_response_bytes = max_response_bytes
        #: last workspace balance any response reported (200 billing or a 402), with when it was seen.
        self.last_balance: BalanceReading | None = None
        #: last ``X-RateLimit-*`` headers seen.
        self.last_rate_limit: RateLimitInfo | None = None
        #: credits the API confirmed charging (billing fields) over this client's life.
        self.credits_charged = 0
        #: worst-case credits of attempts whose billing is unknown, over this client's life.
        self.possibly_billed_credits = 0
        self._http_kwargs: dict[str, Any] = {
            "base_url": self.base_url,
            # The key lives only in this header; httpx never logs headers.
            "headers": {
                "Authorization": f"Bearer {api_key.strip()}",
                "Accept": "application/json",
                # Pages are ~50 KB of JSON: not worth a decoder per call (and pooled_get reads raw bytes).
                "Accept-Encoding": "identity",
                "User-Agent": user_agent or f"airflow-provider-unifapi/{__version__}",
            },
            "timeout": httpx.Timeout(self.timeout),
            "limits": httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            "verify": verify if urlsplit(self.base_url).scheme == "https" else _no_tls_context(),
            # Never follow redirects: a redirect would carry the Authorization header to another host.
            "follow_redirects": False,
        }
        if transport is not None:
            self._http_kwargs["transport"] = transport

    _http: Any  # the httpx client of the subclass

    def _build_request(self, path: str, params: dict[str, Any], headers: dict[str, str]) -> httpx.Request:
        """The GET request httpx's ``build_request`` would make, built with one URL parse, not three."""
        http = self._http
        if http.cookies:  # a server set cookies: let httpx merge them in, as it would
            return http.build_request("GET", path, params=params, headers=headers)
        # build_request merges the base URL, then the params, then parses the result again: ~40 us a
        # call, a few percent of a page at 0 ms latency. Same URL bytes, headers and timeout (tested).
        url = str(http.base_url).rstrip("/") + path + ("?" + urlencode(params) if params else "")
        merged = httpx.Headers(http.headers)
        merged.update(headers)
        return httpx.Request("GET", url, headers=merged, extensions={"timeout": http.timeout.as_dict()})

    def __repr__(self) -> str:  # never shows the key
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    # -- request building -------------------------------------------------------------------------
    def _videos_call(
        self,
        hashtag_id: Any,
        cursor: str | None,
        limit: int,
        max_credits: int | None,
        before_retry: Callable[[int], None] | None = None,
    ) -> _Call:
        hashtag_id = validate_hashtag_id(hashtag_id)
        params: dict[str, Any] = {"limit": validate_limit(limit)}
        cursor = _validate_cursor(cursor)
        if cursor is not None:
            params["cursor"] = cursor
        return _Call(
            label=f"GET /tiktok/hashtags/{hashtag_id}/videos",
            path=f"/tiktok/hashtags/{quote(hashtag_id, safe='')}/videos",
            params=params,
            adapter=_VIDEO_PAGE,
            limit=params["limit"],
            max_credits=_validate_max_credits(max_credits),
            before_retry=before_retry,
        )

    def _hashtag_call(self, hashtag_id: Any, max_credits: int | None) -> _Call:
        hashtag_id = validate_hashtag_id(hashtag_id)
        return _Call(
            label=f"GET /tiktok/hashtags/{hashtag_id}",
            path=f"/tiktok/hashtags/{quote(hashtag_id, safe='')}",
            params={},
            adapter=_HASHTAG,
            limit=1,
            max_credits=_validate_max_credits(max_credits),
        )

    def _search_call(self, query: Any, cursor: str | None, limit: int, max_credits: int | None) -> _Call:
        if not isinstance(query, str) or not query.strip():
            raise UnifAPIInputError("query", f"must be a non-empty search keyword, got {query!r}")
        if len(query) > _MAX_NAME_LENGTH:
            raise UnifAPIInputError("query", f"must be at most {_MAX_NAME_LENGTH} characters")
        _check_encodable("query", query)
        params: dict[str, Any] = {"q": query, "limit": validate_limit(limit)}
        cursor = _validate_cursor(cursor)
        if cursor is not None:
            params["cursor"] = cursor
        return _Call(
            label="GET /tiktok/search/hashtags",
            path="/tiktok/search/hashtags",
            params=params,
            adapter=_HASHTAG_PAGE,
            limit=params["limit"],
            max_credits=_validate_max_credits(max_credits),
        )

    # -- response handling ------------------------------------------------------------------------
    def _can_retry_within_budget(self, call: _Call) -> bool:
        room = call.credit_room()
        return room is None or room >= 1

    def _retry_predicate(self, call: _Call) -> Any:
        def _predicate(state: Any) -> bool:
            return self.policy.tenacity_retry(state, call.rate_limited) and self._can_retry_within_budget(
                call
            )

        return _predicate

    def _retry_kwargs(self, call: _Call) -> dict[str, Any]:
        return {
            "stop": stop_never,  # the policy bounds attempts (per type too)
            "wait": self.policy.tenacity_wait,
            "retry": self._retry_predicate(call),
            "before_sleep": self.policy.before_sleep(call.label),
            "reraise": True,
        }

    def _redact(self, value: Any) -> Any:
        if isinstance(value, str) and self._secret in value:
            return value.replace(self._secret, "***")
        if isinstance(value, list):
            return [
                self._redact(item) if isinstance(item, str) else self._redact(str(item)) for item in value
            ]
        return value

    def _failed(self, call: _Call, err: UnifAPIError) -> UnifAPIError:
        """Account for a failed attempt and stamp the call's totals on the error."""
        # A server or proxy may echo the Authorization header back; never let it into an error.
        err.message = self._redact(err.message)
        err.request_id = self._redact(err.request_id)
        err.issues = self._redact(err.issues)
        err.args = (err.message,)
        if isinstance(err, UnifAPIRateLimitedError):
            call.rate_limited += 1
        if err.may_have_been_billed:
            call.possibly_billed += call.worst_case
            self.possibly_billed_credits += call.worst_case
        err.possibly_billed_credits = call.possibly_billed
        err.attempts = call.attempts
        if err.balance_remaining is not None and isinstance(err, UnifAPIInsufficientCreditsError):
            self._remember_balance(err.balance_remaining, err.request_id)
        call.last_error = err
        return err

    def _remember_balance(self, balance: int, request_id: str | None) -> None:
        self.last_balance = BalanceReading(
            balance=balance, seen_at=datetime.now(timezone.utc), request_id=request_id
        )

    def _finish(self, call: _Call, status: int, headers: httpx.Headers, body: bytes) -> Any:
        rate = rate_limit_from_headers(headers)
        if rate is not None:
            self.last_rate_limit = rate
        if not 200 <= status < 300:
            raise decode_error(status, headers, body)
        result = decode_success(
            call.adapter,
            body,
            status=status,
            request_id=headers.get("x-request-id"),
            billed_worst_case=call.worst_case,
        )
        result.request_id = self._redact(result.request_id)
        billing = result.billing
        self.credits_charged += billing.credits_charged
        self._remember_balance(billing.balance_remaining, result.request_id)
        result._call_stats = CallStats(attempts=call.attempts, possibly_billed_credits=call.possibly_billed)
        return result

    def _check_length(self, call: _Call, response: _AnyResponse) -> None:
        """Refuse a body whose announced length is over the cap, before reading any of it."""
        length = response.headers.get("content-length")
        length = length.strip() if length is not None else None
        if length and length.isascii() and length.isdigit():
            self._check_size(call, response, int(length))

    def _check_size(self, call: _Call, response: _AnyResponse, size: int) -> None:
        if size > self.max_response_bytes:
            raise body_too_large_error(
                status=response.status_code,
                limit=self.max_response_bytes,
                request_id=response.headers.get("x-request-id"),
                billed_worst_case=call.worst_case,
            )

    def _read_failed(self, call: _Call, response: _AnyResponse, exc: httpx.HTTPError) -> UnifAPIError:
        if 200 <= response.status_code < 300:
            return truncated_body_error(
                exc,
                status=response.status_code,
                request_id=response.headers.get("x-request-id"),
                billed_worst_case=call.worst_case,
            )
        # An error response cut short was not billed (errors charge nothing).
        err = transport_error(exc, label=call.label, billed_worst_case=0)
        err.may_have_been_billed = False
        err.status = response.status_code
        return err


def _check_number(argument: str, value: Any, *, minimum: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= minimum:
        raise UnifAPIInputError(argument, f"must be a number >= {minimum:g}, got {value!r}")


def _check_int(argument: str, value: Any, *, minimum: int, maximum: int | None = None) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < minimum
        or (maximum is not None and value > maximum)
    ):
        bound = f"from {minimum} to {maximum}" if maximum is not None else f">= {minimum}"
        raise UnifAPIInputError(argument, f"must be an integer {bound}, got {value!r}")


class UnifAPIClient(_ClientCore):
    """Synchronous UnifAPI client over one pooled :class:`httpx.Client`. Usable without Airflow.

    :param api_key: the workspace API key (sent only as ``Authorization: Bearer``; never logged).
    :param base_url: API base URL; ``https://`` required except for loopback hosts (the sandbox).
    :param timeout: seconds for each of connect, read, write and pool waits.
    :param max_retries: retries after the first attempt for retryable errors (503, 500
        ``internal_error``, network errors); 4xx are never retried. 429s do not count here.
    :param max_rate_limit_wait: total seconds one call may wait on 429 answers (``Retry-After``).
    :param max_retry_wait: longest single wait, also the cap on a server's ``Retry-After``.
    :param backoff_base: first exponential-backoff wait in seconds (doubles each retry, jittered).
    :param retry_billed_errors: also retry 2xx responses whose body was cut short or unreadable.
        Such a call was billed, so this spends again (counted in ``possibly_billed_credits``).
    :param max_response_bytes: refuse a response body larger than this (decoded).
    :param max_connections: size of the keep-alive connection pool.
    :param verify: TLS verification: ``True`` or a CA bundle path; ``False`` is refused.
    :param user_agent: ``User-Agent`` header.
    :param transport: an httpx transport (for tests that need a case the sandbox cannot produce).
    """

    def __init__(self, api_key: str, base_url: str = DEFAULT_BASE_URL, **kwargs: Any) -> None:
        super().__init__(api_key, base_url, **kwargs)
        self._http = httpx.Client(**self._http_kwargs)
        # The hot path: the same requests on httpx's own pool, without its per-call layers (see
        # pooled_get). A transport passed in (tests) keeps the plain httpx path.
        self._pooled = PooledGet.for_client(self._http) if kwargs.get("transport") is None else None

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> UnifAPIClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, path: str, params: dict[str, Any], headers: dict[str, str]) -> _AnyResponse:
        if self._pooled is None or self._http.cookies:
            return self._http.send(self._build_request(path, params, headers), stream=True)
        response = self._pooled.send(path, urlencode(params) if params else "", headers)
        if "set-cookie" in response.headers:
            # Kept as httpx keeps it: with cookies in the jar, later calls take httpx's path (it sends them).
            self._http.cookies.extract_cookies(response.as_httpx())
        return response

    def _attempt(self, call: _Call) -> Any:
        params, headers = call.prepare_attempt()
        try:
            try:
                response = self._send(call.path, params, headers)
            except httpx.HTTPError as exc:
                raise transport_error(exc, label=call.label, billed_worst_case=call.worst_case) from None
            try:
                self._check_length(call, response)
                chunks: list[bytes] = []
                size = 0
                try:
                    for chunk in response.iter_bytes():
                        size += len(chunk)
                        self._check_size(call, response, size)
                        chunks.append(chunk)
                except httpx.HTTPError as exc:
                    raise self._read_failed(call, response, exc) from None
            finally:
                response.close()
            return self._finish(call, response.status_code, response.headers, b"".join(chunks))
        except UnifAPIError as err:
            raise self._failed(call, err) from None

    def _run(self, call: _Call) -> Any:
        for attempt in Retrying(**self._retry_kwargs(call)):
            with attempt:
                return self._attempt(call)
        raise AssertionError("unreachable")  # pragma: no cover - Retrying reraises

    def get_video_page(
        self,
        hashtag_id: str | int,
        *,
        cursor: str | None = None,
        limit: int = 20,
        max_credits: int | None = None,
        before_retry: Callable[[int], None] | None = None,
    ) -> VideoPage:
        """Fetch one validated page of a hashtag's videos (``GET /tiktok/hashtags/{id}/videos``).

        :param hashtag_id: numeric hashtag id (a string of digits; an int is accepted).
        :param cursor: ``next_cursor`` of the previous page, unchanged; ``None`` for the first page.
        :param limit: records to ask for, 1 to 50 (each costs a credit; a call costs at least 1).
        :param max_credits: most credits this call may spend, retries included; sent as
            ``X-Unifapi-Max-Credits`` and shrinks ``limit`` to fit.
        :param before_retry: called with the worst-case credits of each retry before it is sent, so
            a caller can record the spend ahead (a process killed during the retry cannot).
        :raises UnifAPIError: a typed subclass for every failure.
        """
        return self._run(self._videos_call(hashtag_id, cursor, limit, max_credits, before_retry))

    def iter_video_pages(
        self,
        hashtag_id: str | int,
        *,
        cursor: str | None = None,
        limit: int = 50,
        max_pages: int | None = None,
        max_empty_pages: int = 3,
    ) -> Iterator[VideoPage]:
        """Yield a hashtag's pages in order, one call per page, holding one page at a time.

        Stops at the end of the list, after ``max_pages``, or after ``max_empty_pages`` empty pages in
        a row. A page truncated by balance is yielded, then
        :class:`~airflow_provider_unifapi.exceptions.UnifAPITruncatedByBalanceError` is raised with the
        cursor to resume from after a top-up.
        """
        pager = VideoPager(cursor, max_pages=max_pages, max_empty_pages=max_empty_pages)
        validate_hashtag_id(hashtag_id)
        validate_limit(limit)
        while pager.check_before_fetch():
            page = self.get_video_page(hashtag_id, cursor=pager.cursor, limit=limit)
            pager.consume(page)
            yield page
            if pager.stop_reason == "balance_truncated":
                raise _truncated(page, pager.cursor)

    def get_hashtag(self, hashtag_id: str | int, *, max_credits: int | None = None) -> HashtagEnvelope:
        """Fetch one hashtag by id (``GET /tiktok/hashtags/{id}``, 1 credit)."""
        return self._run(self._hashtag_call(hashtag_id, max_credits))

    def search_hashtags(
        self, query: str, *, cursor: str | None = None, limit: int = 20, max_credits: int | None = None
    ) -> HashtagPage:
        """Search hashtags by keyword (``GET /tiktok/search/hashtags``; 1 credit per result, 1 minimum)."""
        return self._run(self._search_call(query, cursor, limit, max_credits))

    def resolve_hashtag_id(self, name: str, *, limit: int = 20, max_pages: int = 3) -> ResolvedHashtag:
        """Find the hashtag whose name equals ``name`` (case-insensitive, ``#`` ignored) by search.

        Costs the search results it reads (up to ``limit * max_pages`` credits).
        :raises UnifAPIHashtagNotFoundError: no exact match; its ``credits_charged`` says what the search cost.
        """
        resolver = _NameResolver(name, limit=limit, max_pages=max_pages)
        while resolver.more:
            resolver.consume(
                self.search_hashtags(resolver.name, cursor=resolver.cursor, limit=resolver.limit)
            )
        return resolver.result()


class AsyncUnifAPIClient(_ClientCore):
    """Asynchronous twin of :class:`UnifAPIClient` (same arguments, awaited methods)."""

    def __init__(self, api_key: str, base_url: str = DEFAULT_BASE_URL, **kwargs: Any) -> None:
        super().__init__(api_key, base_url, **kwargs)
        self._http = httpx.AsyncClient(**self._http_kwargs)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncUnifAPIClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _attempt(self, call: _Call) -> Any:
        params, headers = call.prepare_attempt()
        try:
            request = self._build_request(call.path, params, headers)
            try:
                response = await self._http.send(request, stream=True)
            except httpx.HTTPError as exc:
                raise transport_error(exc, label=call.label, billed_worst_case=call.worst_case) from None
            try:
                self._check_length(call, response)
                chunks: list[bytes] = []
                size = 0
                try:
                    async for chunk in response.aiter_bytes():
                        size += len(chunk)
                        self._check_size(call, response, size)
                        chunks.append(chunk)
                except httpx.HTTPError as exc:
                    raise self._read_failed(call, response, exc) from None
            finally:
                await response.aclose()
            return self._finish(call, response.status_code, response.headers, b"".join(chunks))
        except UnifAPIError as err:
            raise self._failed(call, err) from None

    async def _run(self, call: _Call) -> Any:
        async for attempt in AsyncRetrying(**self._retry_kwargs(call)):
            with attempt:
                return await self._attempt(call)
        raise AssertionError("unreachable")  # pragma: no cover - AsyncRetrying reraises

    async def get_video_page(
        self,
        hashtag_id: str | int,
        *,
        cursor: str | None = None,
        limit: int = 20,
        max_credits: int | None = None,
        before_retry: Callable[[int], None] | None = None,
    ) -> VideoPage:
        """Async :meth:`UnifAPIClient.get_video_page`."""
        return await self._run(self._videos_call(hashtag_id, cursor, limit, max_credits, before_retry))

    async def iter_video_pages(
        self,
        hashtag_id: str | int,
        *,
        cursor: str | None = None,
        limit: int = 50,
        max_pages: int | None = None,
        max_empty_pages: int = 3,
    ) -> AsyncIterator[VideoPage]:
        """Async :meth:`UnifAPIClient.iter_video_pages` (``async for``)."""
        pager = VideoPager(cursor, max_pages=max_pages, max_empty_pages=max_empty_pages)
        validate_hashtag_id(hashtag_id)
        validate_limit(limit)
        while pager.check_before_fetch():
            page = await self.get_video_page(hashtag_id, cursor=pager.cursor, limit=limit)
            pager.consume(page)
            yield page
            if pager.stop_reason == "balance_truncated":
                raise _truncated(page, pager.cursor)

    async def get_hashtag(self, hashtag_id: str | int, *, max_credits: int | None = None) -> HashtagEnvelope:
        """Async :meth:`UnifAPIClient.get_hashtag`."""
        return await self._run(self._hashtag_call(hashtag_id, max_credits))

    async def search_hashtags(
        self, query: str, *, cursor: str | None = None, limit: int = 20, max_credits: int | None = None
    ) -> HashtagPage:
        """Async :meth:`UnifAPIClient.search_hashtags`."""
        return await self._run(self._search_call(query, cursor, limit, max_credits))

    async def resolve_hashtag_id(self, name: str, *, limit: int = 20, max_pages: int = 3) -> ResolvedHashtag:
        """Async :meth:`UnifAPIClient.resolve_hashtag_id`."""
        resolver = _NameResolver(name, limit=limit, max_pages=max_pages)
        while resolver.more:
            resolver.consume(
                await self.search_hashtags(resolver.name, cursor=resolver.cursor, limit=resolver.limit)
            )
        return resolver.result()


def _truncated(page: VideoPage, resume_cursor: str | None) -> UnifAPITruncatedByBalanceError:
    return UnifAPITruncatedByBalanceError(
        f"UnifAPI returned {len(page.data)} record(s) of a page truncated by the workspace balance "
        f"({page.billing.balance_remaining} credits left); top up, then resume from the same cursor",
        resume_cursor=resume_cursor,
        request_id=page.request_id,
        balance_remaining=page.billing.balance_remaining,
        credits_charged=page.billing.credits_charged,
    )
