"""Turn raw HTTP responses and httpx failures into validated models or complete typed errors.

Shared by the sync and async clients. Every error is built once, with everything known: the text a
server sent is scrubbed of the key first, and the call's attempts and possibly billed credits are
passed in (:class:`AttemptContext`). Messages name the status, type and request id, never the API
key and never a response body (bodies may be large and are the customer's paid data).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, TypeVar

import httpx
from pydantic import TypeAdapter, ValidationError

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


@dataclass(frozen=True)
class AttemptContext:
    """What an error of one attempt carries besides what the response said.

    :param label: the call, for messages (``GET /tiktok/hashtags/1/videos``).
    :param attempts: attempts made so far, this one included.
    :param worst_case_credits: what this attempt may have cost, ``max(limit, 1)``.
    :param earlier_possibly_billed_credits: worst-case credits of the call's earlier attempts whose billing
        is unknown.
    :param secret: the API key, only to scrub it from text a server sent back.
    """

    label: str
    attempts: int
    worst_case_credits: int
    earlier_possibly_billed_credits: int
    secret: str = field(repr=False)

    def scrub(self, text: str) -> str:
        """``text`` with the key replaced by ``***`` (a server or proxy may echo the header back)."""
        return text.replace(self.secret, "***") if self.secret in text else text

    def redact(self, text: str | None) -> str | None:
        """:meth:`scrub` for text that may be missing."""
        return None if text is None else self.scrub(text)

    def fields(self, *, billed: bool, request_id: str | None = None, **given: Any) -> dict[str, Any]:
        """Constructor keywords of the attempt's error: billing, attempts and the redacted request id.

        :param billed: whether the API may have billed the attempt.
        """
        extra = self.worst_case_credits if billed else 0
        return {
            "request_id": self.redact(request_id),
            "may_have_been_billed": billed,
            "possibly_billed_credits": self.earlier_possibly_billed_credits + extra,
            "attempts": self.attempts,
            **given,
        }

    def redact_issues(self, issues: list[Any] | None) -> list[Any] | None:
        """Validation issues as text, scrubbed of the key."""
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


def _validation_summary(exc: ValidationError, limit: int = 3) -> str:
    # include_input=False: the offending values are paid data and may be huge; locations suffice.
    errors = exc.errors(include_url=False, include_input=False)
    parts = [f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in errors[:limit]]
    more = f" (+{len(errors) - limit} more)" if len(errors) > limit else ""
    return "; ".join(parts) + more


def decode_success(
    adapter: TypeAdapter[R], body: bytes, *, status: int, request_id: str | None, ctx: AttemptContext
) -> R:
    """Validate a 2xx body straight from bytes (pydantic parses and validates in one pass)."""
    try:
        return adapter.validate_json(body)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        if any(e["type"] == "json_invalid" for e in errors):
            message = f"UnifAPI answered {status} with a body that is not valid JSON ({len(body)} bytes)"
        else:
            message = f"UnifAPI answered {status} with a body that does not match the schema: {_validation_summary(exc)}"
        raise UnifAPIInvalidResponseError(
            ctx.scrub(message),
            status=status,
            **ctx.fields(billed=True, request_id=request_id or _request_id_from_bytes(body)),
        ) from None


def _request_id_from_bytes(body: bytes) -> str | None:
    # A cut or malformed body may still start with the request id; worth recovering for support.
    head = body[:200]
    marker = b'"request_id"'
    at = head.find(marker)
    if at < 0:
        return None
    rest = head[at + len(marker) :].lstrip(b" :\t")
    if not rest.startswith(b'"'):
        return None
    end = rest.find(b'"', 1)
    if end <= 1:
        return None
    candidate = rest[1:end].decode("ascii", "replace")
    return candidate if candidate.isprintable() and len(candidate) <= 80 else None


def decode_error(status: int, headers: httpx.Headers, body: bytes, ctx: AttemptContext) -> UnifAPIError:
    """Map an error response to its typed exception, by ``error.type`` first, status second.

    Error responses are never billed.
    """
    retry_after = parse_retry_after(headers.get("retry-after"))
    header_request_id = headers.get("x-request-id")
    try:
        envelope = _ERROR_ENVELOPE.validate_json(body)
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
    error = envelope.error
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


def transport_error(exc: httpx.HTTPError, ctx: AttemptContext) -> UnifAPIError:
    """Map an httpx failure to a typed error; a failure after the request was sent may have been billed."""
    cls = UnifAPITimeoutError if isinstance(exc, httpx.TimeoutException) else UnifAPITransportError
    # str(exc) of httpx transport errors names the failure, not the request headers.
    message = f"UnifAPI {ctx.label}: {type(exc).__name__}: {str(exc) or type(exc).__name__}"
    return cls(ctx.scrub(message), **ctx.fields(billed=not isinstance(exc, _UNSENT)))


def body_too_large_error(
    *, status: int, limit: int, request_id: str | None, ctx: AttemptContext
) -> UnifAPIError:
    """A body over ``max_response_bytes``: refused unread; billed when the status was a success."""
    return UnifAPIResponseTooLargeError(
        f"UnifAPI response body exceeds max_response_bytes={limit}; refused",
        status=status,
        **ctx.fields(billed=200 <= status < 300, request_id=request_id),
    )


def read_error(
    exc: httpx.HTTPError, *, status: int, request_id: str | None, ctx: AttemptContext
) -> UnifAPIError:
    """A body that broke off mid-way. A 2xx was billed but its records are lost; an error response
    charges nothing, so it is mapped as the network failure it is."""
    if 200 <= status < 300:
        return UnifAPIInvalidResponseError(
            f"UnifAPI answered {status} but the body was cut short ({type(exc).__name__})",
            status=status,
            **ctx.fields(billed=True, request_id=request_id),
        )
    cls = UnifAPITimeoutError if isinstance(exc, httpx.TimeoutException) else UnifAPITransportError
    message = f"UnifAPI {ctx.label}: {type(exc).__name__}: {str(exc) or type(exc).__name__}"
    return cls(ctx.scrub(message), status=status, **ctx.fields(billed=False))
