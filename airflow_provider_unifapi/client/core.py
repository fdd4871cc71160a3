"""What the sync and async clients share: all but the I/O, which ``sync_client`` and ``async_client``
mirror as httpx's ``Client`` and ``AsyncClient`` do."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import fields
from datetime import datetime, timezone
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

import httpx
from tenacity import RetryCallState, stop_never

from airflow_provider_unifapi import __version__
from airflow_provider_unifapi.client.calls import Call, R
from airflow_provider_unifapi.client.config import ClientConfig
from airflow_provider_unifapi.client.pacing import RatePacer
from airflow_provider_unifapi.client.responses import (
    AttemptContext,
    body_too_large_error,
    decode_error,
    decode_success,
    rate_limit_from_headers,
)
from airflow_provider_unifapi.client.retrying import RetryPolicy, parse_retry_after
from airflow_provider_unifapi.client.validation import DEFAULT_BASE_URL, validate_api_key, validate_base_url
from airflow_provider_unifapi.exceptions import UnifAPIError, UnifAPIInsufficientCreditsError
from airflow_provider_unifapi.models import BalanceReading, RateLimitInfo

#: The httpx transport type of a client: ``httpx.BaseTransport`` or ``httpx.AsyncBaseTransport``.
TransportT = TypeVar("TransportT", httpx.BaseTransport, httpx.AsyncBaseTransport)
MethodT = TypeVar("MethodT", bound=Callable[..., Any])


class ClientCore(Generic[TransportT]):
    """The base of both clients; its keywords are documented on ``UnifAPIClient``."""

    #: last workspace balance any response reported (200 billing or a 402), with when it was seen.
    last_balance: BalanceReading | None = None
    #: last ``X-RateLimit-*`` headers seen.
    last_rate_limit: RateLimitInfo | None = None
    #: credits the API confirmed charging (billing fields) over this client's life.
    credits_charged = 0
    #: worst-case credits of attempts whose billing is unknown, over this client's life.
    possibly_billed_credits = 0

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
        max_response_bytes: int = 16 * 1024 * 1024,
        max_connections: int = 10,
        pace_requests: bool = True,
        verify: bool | str = True,
        user_agent: str | None = None,
        transport: TransportT | None = None,
    ) -> None:
        self.config = ClientConfig(
            timeout=timeout,
            max_retries=max_retries,
            max_retry_wait=max_retry_wait,
            backoff_base=backoff_base,
            retry_billed_errors=retry_billed_errors,
            max_rate_limit_wait=max_rate_limit_wait,
            max_response_bytes=max_response_bytes,
            max_connections=max_connections,
            pace_requests=pace_requests,
            verify=verify,
        )
        # Kept only to scrub it from anything a server echoes back (error messages, request ids).
        self._secret = validate_api_key(api_key)
        self.base_url = validate_base_url(base_url)
        # RetryPolicy's settings are the config fields of the same names.
        self.policy = RetryPolicy(**{f.name: getattr(self.config, f.name) for f in fields(RetryPolicy)})
        self.timeout = self.config.timeout
        self.max_response_bytes = self.config.max_response_bytes
        #: spaces the requests of every caller of this client to the workspace rate limit
        self.pacer: RatePacer | None = RatePacer() if self.config.pace_requests else None
        self._http_kwargs = self._httpx_settings(user_agent)
        self._open(transport)

    def _open(self, transport: TransportT | None) -> None:
        raise NotImplementedError  # creates self._http from self._http_kwargs

    def _httpx_settings(self, user_agent: str | None) -> dict[str, Any]:
        limit = self.config.max_connections
        https = urlsplit(self.base_url).scheme == "https"
        return {
            "base_url": self.base_url,
            # The key lives only in this header; httpx never logs headers.
            "headers": {
                "Authorization": f"Bearer {self._secret}",
                "Accept": "application/json",
                # Pages are ~50 KB of JSON: not worth a decoder per call.
                "Accept-Encoding": "identity",
                "User-Agent": user_agent or f"airflow-provider-unifapi/{__version__}",
            },
            "timeout": httpx.Timeout(self.timeout),
            "limits": httpx.Limits(max_connections=limit, max_keepalive_connections=limit),
            # An http:// (loopback) client never opens a TLS connection: loading the CA bundle (~17 ms a
            # client, the bulk of a task's set-up against the sandbox) buys nothing. This context trusts
            # no CA and checks certificates and host names: were it ever used, it would refuse the peer.
            "verify": self.config.verify if https else ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT),
            # Never follow redirects: a redirect would carry the Authorization header to another host.
            "follow_redirects": False,
        }

    def __repr__(self) -> str:  # never shows the key
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    # -- retries ----------------------------------------------------------------------------------
    def _retry_kwargs(self, call: Call[Any]) -> dict[str, Any]:
        def retry(state: RetryCallState) -> bool:
            room = call.credit_room()
            within_budget = room is None or room >= 1
            return within_budget and self.policy.tenacity_retry(state, call.rate_limited)

        return {
            "stop": stop_never,  # the policy bounds attempts (per type too)
            "wait": self.policy.tenacity_wait,
            "retry": retry,
            "before_sleep": self.policy.before_sleep(call.label),
            "reraise": True,
        }

    def _pacing_waits(self) -> Iterator[float]:
        if self.pacer is None:
            return
        while True:
            wait, reserved = self.pacer.reserve()
            if wait > self.config.max_retry_wait:
                return  # longer than a 429 would be waited out: send, and let the server answer
            if wait > 0:
                yield wait
            if reserved:
                return

    # -- one attempt's outcome --------------------------------------------------------------------
    @contextmanager
    def _accounting(self, call: Call[Any]) -> Iterator[AttemptContext]:
        """Yield what the attempt's errors carry; account for a failure (its error has the totals)."""
        try:
            yield call.context(self._secret)
        except UnifAPIError as err:
            self.possibly_billed_credits += call.record_failure(err)
            if isinstance(err, UnifAPIInsufficientCreditsError) and err.balance_remaining is not None:
                self._remember_balance(err.balance_remaining, err.request_id)
            raise
        finally:
            # An attempt that got no response (network error) must not keep the pacer's probe slot.
            if self.pacer is not None:
                self.pacer.release_probe()

    def _remember_balance(self, balance: int, request_id: str | None) -> None:
        self.last_balance = BalanceReading(
            balance=balance, seen_at=datetime.now(timezone.utc), request_id=request_id
        )

    def _check_length(self, response: httpx.Response, ctx: AttemptContext) -> None:
        """Refuse an announced length over the cap before reading any of the body."""
        length = (response.headers.get("content-length") or "").strip()
        if length.isascii() and length.isdigit():
            self._check_size(response, int(length), ctx)

    def _check_size(self, response: httpx.Response, size: int, ctx: AttemptContext) -> None:
        if size > self.max_response_bytes:
            raise body_too_large_error(response, self.max_response_bytes, ctx)

    def _finish(self, call: Call[R], ctx: AttemptContext, response: httpx.Response, body: bytes) -> R:
        rate = rate_limit_from_headers(response.headers)
        if rate is not None:
            self.last_rate_limit = rate
        status = response.status_code
        if self.pacer is not None:
            # A 429's Retry-After holds every chain; an HTTP date is left to the retry policy alone.
            retry_after = response.headers.get("retry-after")
            hold = parse_retry_after(retry_after, dates=False) if status == 429 else None
            # Held no longer than the client itself would wait (a hostile Retry-After: inf, 1e30...).
            hold = None if hold is None else min(hold, self.config.max_retry_wait)
            self.pacer.observe(rate, retry_after=hold)
        if not 200 <= status < 300:
            raise decode_error(status, response.headers, body, ctx)
        request_id = response.headers.get("x-request-id")
        result = decode_success(call.adapter, body, status=status, request_id=request_id, ctx=ctx)
        result.request_id = ctx.scrub(result.request_id)
        self.credits_charged += result.billing.credits_charged
        self._remember_balance(result.billing.balance_remaining, result.request_id)
        result._call_stats = call.stats()
        return result


def documented_by(twin: Callable[..., Any]) -> Callable[[MethodT], MethodT]:
    """Give the decorated async method the docstring of its sync ``twin``."""

    def decorate(method: MethodT) -> MethodT:
        method.__doc__ = twin.__doc__
        return method

    return decorate
