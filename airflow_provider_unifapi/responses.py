"""Turn raw HTTP responses and httpx failures into validated models or typed errors.

Shared by the sync and async clients. Messages name the status, type and request id, never the API
key and never a response body (bodies may be large and are the customer's paid data).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TypeVar

import httpx
from pydantic import TypeAdapter, ValidationError

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
from airflow_provider_unifapi.retrying import parse_retry_after

M = TypeVar("M")

_ERROR_ENVELOPE: TypeAdapter[ErrorEnvelope] = TypeAdapter(ErrorEnvelope)


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
    adapter: TypeAdapter[M], body: bytes, *, status: int, request_id: str | None, billed_worst_case: int
) -> M:
    """Validate a 2xx body straight from bytes (pydantic parses and validates in one pass)."""
    try:
        return adapter.validate_json(body)
    except ValidationError as exc:
        json_invalid = any(
            e["type"] == "json_invalid" for e in exc.errors(include_url=False, include_input=False)
        )
        if json_invalid:
            message = f"UnifAPI answered {status} with a body that is not valid JSON ({len(body)} bytes)"
        else:
            message = f"UnifAPI answered {status} with a body that does not match the schema: {_validation_summary(exc)}"
        err = UnifAPIInvalidResponseError(
            message,
            status=status,
            request_id=request_id or _request_id_from_bytes(body),
            possibly_billed_credits=billed_worst_case,
        )
        err.may_have_been_billed = True
        raise err from None


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


def decode_error(status: int, headers: httpx.Headers, body: bytes) -> UnifAPIError:
    """Map an error response to its typed exception, by ``error.type`` first, status second."""
    retry_after = parse_retry_after(headers.get("retry-after"))
    header_request_id = headers.get("x-request-id")
    try:
        envelope = _ERROR_ENVELOPE.validate_json(body)
    except ValidationError:
        content_type = headers.get("content-type", "unknown content type").split(";")[0]
        return UnifAPIUnexpectedStatusError(
            f"UnifAPI answered {status} without a UnifAPI error envelope ({content_type}, {len(body)} bytes)",
            status=status,
            request_id=header_request_id,
            retry_after=retry_after,
        )
    error = envelope.error
    billing = error.billing
    return error_from_response(
        status,
        error.type,
        f"UnifAPI error: {error.message}",
        request_id=error.request_id or header_request_id,
        retry_after=retry_after,
        issues=error.issues,
        credits_required=billing.credits_required if billing else None,
        balance_remaining=billing.balance_remaining if billing else None,
        credits_charged=billing.credits_charged if billing else None,
    )


def transport_error(exc: httpx.HTTPError, *, label: str, billed_worst_case: int) -> UnifAPIError:
    """Map an httpx failure to a typed error; a failure after the request was sent may have been billed."""
    # Nothing reached the server for these: the call cannot have been billed.
    unsent = isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))
    cls = UnifAPITimeoutError if isinstance(exc, httpx.TimeoutException) else UnifAPITransportError
    # str(exc) of httpx transport errors names the failure, not the request headers.
    reason = str(exc) or type(exc).__name__
    err = cls(
        f"UnifAPI {label}: {type(exc).__name__}: {reason}",
        possibly_billed_credits=0 if unsent else billed_worst_case,
    )
    err.may_have_been_billed = not unsent
    return err


def body_too_large_error(
    *, status: int, limit: int, request_id: str | None, billed_worst_case: int
) -> UnifAPIError:
    err = UnifAPIResponseTooLargeError(
        f"UnifAPI response body exceeds max_response_bytes={limit}; refused",
        status=status,
        request_id=request_id,
        possibly_billed_credits=billed_worst_case if 200 <= status < 300 else 0,
    )
    err.may_have_been_billed = 200 <= status < 300
    return err


def truncated_body_error(
    exc: httpx.HTTPError, *, status: int, request_id: str | None, billed_worst_case: int
) -> UnifAPIError:
    """A 2xx whose body broke off mid-way: the call was billed but its records are lost."""
    err = UnifAPIInvalidResponseError(
        f"UnifAPI answered {status} but the body was cut short ({type(exc).__name__})",
        status=status,
        request_id=request_id,
        possibly_billed_credits=billed_worst_case,
    )
    err.may_have_been_billed = True
    return err
