"""Turn raw HTTP responses and httpx failures into validated models or complete typed errors.

Messages never hold the key or a response body (bodies may be large and are the customer's paid data).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, TypeVar

import httpx
from pydantic import TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from airflow_provider_unifapi.client.retrying import parse_retry_after
from airflow_provider_unifapi.exceptions import (
    UnifAPIError,
    UnifAPIInvalidResponseError,
    UnifAPIResponseTooLargeError,
    UnifAPITimeoutError,
    UnifAPITransportError,
    UnifAPIUnexpectedStatusError,
    error_from_response,
)
from airflow_provider_unifapi.models import ErrorEnvelope, RateLimitInfo

R = TypeVar("R")

_ERROR_ENVELOPE: TypeAdapter[ErrorEnvelope] = TypeAdapter(ErrorEnvelope)
# Nothing reached the server for these: the attempt cannot have been billed.
_UNSENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
#: The first ``"request_id"`` of a body and its string value (no closing quote: no value).
_REQUEST_ID = re.compile(rb'"request_id"[ :\t]*"([^"]+)"')


@dataclass(frozen=True)
class AttemptContext:
    """What an error of one attempt carries besides what the response said."""

    label: str
    attempts: int
    worst_case_credits: int
    earlier_possibly_billed_credits: int
    secret: str = field(repr=False)  # the API key, only to scrub it from text a server sent back

    def scrub(self, text: str) -> str:
        """``text`` with the key replaced by ``***`` (a server or proxy may echo the header back)."""
        return text.replace(self.secret, "***") if self.secret in text else text

    def fields(self, *, billed: bool, request_id: str | None = None) -> dict[str, Any]:
        """Constructor keywords of the attempt's error (``billed``: the API may have billed it)."""
        extra = self.worst_case_credits if billed else 0
        return {
            "request_id": None if request_id is None else self.scrub(request_id),
            "may_have_been_billed": billed,
            "possibly_billed_credits": self.earlier_possibly_billed_credits + extra,
            "attempts": self.attempts,
        }

    def redact_issues(self, issues: list[Any] | None) -> list[Any] | None:
        if issues is None:
            return None
        return [self.scrub(item if isinstance(item, str) else str(item)) for item in issues]


def _int_header(headers: httpx.Headers, name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return int(float(value.strip()))
    except (ValueError, OverflowError):
        return None


def rate_limit_from_headers(headers: httpx.Headers) -> RateLimitInfo | None:
    """Read ``X-RateLimit-*`` leniently; ``None`` when the response carried none of them."""
    limit = _int_header(headers, "x-ratelimit-limit")
    remaining = _int_header(headers, "x-ratelimit-remaining")
    reset = _int_header(headers, "x-ratelimit-reset")
    if limit is None and remaining is None and reset is None:
        return None
    return RateLimitInfo(limit=limit, remaining=remaining, reset=reset, seen_at=datetime.now(timezone.utc))


def _summary(errors: list[ErrorDetails], shown: int = 3) -> str:
    parts = [f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in errors[:shown]]
    more = f" (+{len(errors) - shown} more)" if len(errors) > shown else ""
    return "; ".join(parts) + more


def decode_success(
    adapter: TypeAdapter[R], body: bytes, *, status: int, request_id: str | None, ctx: AttemptContext
) -> R:
    """Validate a 2xx body straight from bytes (pydantic parses and validates in one pass)."""
    try:
        return adapter.validate_json(body)
    except ValidationError as exc:
        # include_input=False: the offending values are paid data and may be huge; locations suffice.
        errors = exc.errors(include_url=False, include_input=False)
        if any(e["type"] == "json_invalid" for e in errors):
            message = f"UnifAPI answered {status} with a body that is not valid JSON ({len(body)} bytes)"
        else:
            message = (
                f"UnifAPI answered {status} with a body that does not match the schema: {_summary(errors)}"
            )
        raise UnifAPIInvalidResponseError(
            ctx.scrub(message),
            status=status,
            **ctx.fields(billed=True, request_id=request_id or _request_id_from_bytes(body)),
        ) from None


def _request_id_from_bytes(body: bytes) -> str | None:
    # A cut or malformed body may still start with the request id; worth recovering for support.
    head = body[:200]
    at = head.find(b'"request_id"')
    found = _REQUEST_ID.match(head, at) if at >= 0 else None
    candidate = found.group(1).decode("ascii", "replace") if found else ""
    return candidate if candidate and candidate.isprintable() and len(candidate) <= 80 else None


def decode_error(status: int, headers: httpx.Headers, body: bytes, ctx: AttemptContext) -> UnifAPIError:
    """Map an error response (never billed) to its typed exception."""
    retry_after = parse_retry_after(headers.get("retry-after"))
    header_request_id = headers.get("x-request-id")
    try:
        error = _ERROR_ENVELOPE.validate_json(body).error
    except ValidationError:
        content_type = headers.get("content-type", "unknown content type").split(";")[0]
        message = (
            f"UnifAPI answered {status} without a UnifAPI error envelope ({content_type}, {len(body)} bytes)"
        )
        return UnifAPIUnexpectedStatusError(
            ctx.scrub(message),
            status=status,
            retry_after=retry_after,
            **ctx.fields(billed=False, request_id=header_request_id),
        )
    billing = error.billing
    message = f"UnifAPI error: {error.message}"
    return error_from_response(
        status,
        error.type,
        ctx.scrub(message),
        retry_after=retry_after,
        issues=ctx.redact_issues(error.issues),
        credits_required=billing.credits_required if billing else None,
        balance_remaining=billing.balance_remaining if billing else None,
        credits_charged=billing.credits_charged if billing else None,
        **ctx.fields(billed=False, request_id=error.request_id or header_request_id),
    )


def transport_error(exc: httpx.HTTPError, ctx: AttemptContext, status: int | None = None) -> UnifAPIError:
    """Map an httpx failure to a typed error. A failure after the request was sent may have been billed,
    unless it broke off the body of an error response (``status``), which charges nothing."""
    cls = UnifAPITimeoutError if isinstance(exc, httpx.TimeoutException) else UnifAPITransportError
    # str(exc) of httpx transport errors names the failure, not the request headers.
    message = f"UnifAPI {ctx.label}: {type(exc).__name__}: {str(exc) or type(exc).__name__}"
    billed = status is None and not isinstance(exc, _UNSENT)
    return cls(ctx.scrub(message), status=status, **ctx.fields(billed=billed))


def body_too_large_error(response: httpx.Response, limit: int, ctx: AttemptContext) -> UnifAPIError:
    """A body over ``max_response_bytes``: refused unread; billed when the status was a success."""
    return UnifAPIResponseTooLargeError(
        f"UnifAPI response body exceeds max_response_bytes={limit}; refused",
        status=response.status_code,
        **ctx.fields(billed=response.is_success, request_id=response.headers.get("x-request-id")),
    )


def read_error(exc: httpx.HTTPError, response: httpx.Response, ctx: AttemptContext) -> UnifAPIError:
    """A body that broke off mid-way. A 2xx was billed but its records are lost; an error response
    charges nothing, so it is mapped as the network failure it is."""
    if not response.is_success:
        return transport_error(exc, ctx, status=response.status_code)
    return UnifAPIInvalidResponseError(
        f"UnifAPI answered {response.status_code} but the body was cut short ({type(exc).__name__})",
        status=response.status_code,
        **ctx.fields(billed=True, request_id=response.headers.get("x-request-id")),
    )
