"""One exception tree for every way a UnifAPI call can fail, and one predicate for what is retryable
(docs/troubleshooting.md). No exception text ever holds the API key or a response body.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ERROR_TYPES",
    "UnifAPIAPIError",
    "UnifAPIClaimLostError",
    "UnifAPIError",
    "UnifAPIFolderBusyError",
    "UnifAPIHashtagNotFoundError",
    "UnifAPIInputError",
    "UnifAPIInsecureURLError",
    "UnifAPIInsufficientCreditsError",
    "UnifAPIInternalError",
    "UnifAPIInvalidIdError",
    "UnifAPIInvalidResponseError",
    "UnifAPINotFoundError",
    "UnifAPIOutputError",
    "UnifAPIOutputMismatchError",
    "UnifAPIPaginationError",
    "UnifAPIRateLimitedError",
    "UnifAPIResponseShapeError",
    "UnifAPIResponseTooLargeError",
    "UnifAPIServerError",
    "UnifAPITimeoutError",
    "UnifAPITransportError",
    "UnifAPITruncatedByBalanceError",
    "UnifAPIUnauthorizedError",
    "UnifAPIUnexpectedStatusError",
    "UnifAPIUpstreamError",
    "UnifAPIUpstreamUnavailableError",
    "UnifAPIValidationError",
    "error_from_response",
    "is_retryable",
    "max_attempts_for",
]


class UnifAPIError(Exception):
    """Base of every error this package raises about UnifAPI.

    :param message: human-readable explanation (never the key, never a body).
    :param status: HTTP status, when a response was received.
    :param error_type: the gateway's ``error.type`` (or a local kind such as ``transport_error``).
    :param request_id: UnifAPI request id (support asks for it), when known.
    :param retry_after: seconds the server asked us to wait (``Retry-After``), when given.
    :param issues: validation issues (``validation_error`` only).
    :param credits_required: credits the call would have needed (402), when given.
    :param balance_remaining: workspace balance the error reported, when given.
    :param credits_charged: credits the error says it charged (usually 0), when given.
    :param possibly_billed_credits: worst-case credits of the call's attempts whose billing is unknown.
    :param may_have_been_billed: True when the API may have billed the failed attempt.
    :param attempts: attempts made for the call that ended in this error.
    """

    #: Each subclass names its own in its header: ``class ...(UnifAPIAPIError, error_type="not_found")``.
    error_type: str = "unifapi_error"

    def __init_subclass__(cls, error_type: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if error_type is not None:
            cls.error_type = error_type

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error_type: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        issues: list[Any] | None = None,
        credits_required: int | None = None,
        balance_remaining: int | None = None,
        credits_charged: int | None = None,
        possibly_billed_credits: int = 0,
        may_have_been_billed: bool = False,
        attempts: int = 1,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        if error_type is not None:
            self.error_type = error_type
        self.request_id = request_id
        self.retry_after = retry_after
        self.issues = issues
        self.credits_required = credits_required
        self.balance_remaining = balance_remaining
        self.credits_charged = credits_charged
        self.possibly_billed_credits = possibly_billed_credits
        self.may_have_been_billed = may_have_been_billed
        self.attempts = attempts

    def __str__(self) -> str:
        details = {
            "status": self.status,
            "type": self.error_type,
            "request_id": self.request_id or None,
            "retry_after": None if self.retry_after is None else f"{self.retry_after:g}s",
            "balance_remaining": self.balance_remaining,
            "credits_required": self.credits_required,
            "possibly_billed_credits": self.possibly_billed_credits or None,
            "issues": repr(self.issues) if self.issues else None,
        }
        shown = ", ".join(f"{name}={value}" for name, value in details.items() if value is not None)
        return f"{self.message} ({shown})"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe summary (for logs, XCom, trigger events)."""
        return {
            "error_type": self.error_type,
            "message": self.message,
            "status": self.status,
            "request_id": self.request_id,
            "retry_after": self.retry_after,
            "issues": self.issues,
            "credits_required": self.credits_required,
            "balance_remaining": self.balance_remaining,
            "credits_charged": self.credits_charged,
            "possibly_billed_credits": self.possibly_billed_credits,
        }


class UnifAPIInputError(UnifAPIError, ValueError, error_type="input_error"):
    """An argument was refused before any request was sent.

    :param argument: name of the offending argument, so the message can say what to fix.
    """

    def __init__(self, argument: str, message: str) -> None:
        super().__init__(f"Invalid {argument!s}: {message}")
        self.argument = argument

    def __str__(self) -> str:
        return self.message


class UnifAPIInsecureURLError(UnifAPIInputError, error_type="insecure_url"):
    """The base URL would send the API key in clear text to a non-loopback host."""


class UnifAPIAPIError(UnifAPIError):
    """The gateway answered with an error status (an error envelope or something else)."""


class UnifAPIValidationError(UnifAPIAPIError, error_type="validation_error"):
    """400 ``validation_error``: the query was refused; ``issues`` says why. Never retried."""


class UnifAPIInvalidIdError(UnifAPIAPIError, error_type="invalid_id"):
    """400 ``invalid_id``: the id is well-formed but the source refused it. Never retried."""


class UnifAPIUnauthorizedError(UnifAPIAPIError, error_type="unauthorized"):
    """401 ``unauthorized``: the key is missing, malformed, revoked or disabled. Never retried."""


class UnifAPIInsufficientCreditsError(UnifAPIAPIError, error_type="insufficient_credits"):
    """402 ``insufficient_credits``: the balance cannot pay the minimum; nothing was charged."""


class UnifAPINotFoundError(UnifAPIAPIError, error_type="not_found"):
    """404 ``not_found``: hashtag deleted, private or never existed. Never retried."""


class UnifAPIRateLimitedError(UnifAPIAPIError, error_type="rate_limited"):
    """429 ``rate_limited``: wait ``retry_after`` seconds, then retry. Not billed."""


class UnifAPIServerError(UnifAPIAPIError):
    """A 5xx error envelope."""


class UnifAPIInternalError(UnifAPIServerError, error_type="internal_error"):
    """500 ``internal_error``: a gateway bug; retried with backoff."""


class UnifAPIResponseShapeError(UnifAPIServerError, error_type="response_shape_error"):
    """500 ``response_shape_error``: source data no longer matches the schema; retried twice at most."""


class UnifAPIUpstreamError(UnifAPIServerError, error_type="upstream_error"):
    """502 ``upstream_error``: the source failed for good; retried once at most."""


class UnifAPIUpstreamUnavailableError(UnifAPIServerError, error_type="upstream_unavailable"):
    """503 ``upstream_unavailable``: the source timed out or is unreachable; retried with backoff."""


class UnifAPIUnexpectedStatusError(UnifAPIAPIError, error_type="unexpected_status"):
    """A status or body outside the contract (403, 408, 504, a proxy's HTML page, a redirect...)."""


class UnifAPITransportError(UnifAPIError, error_type="transport_error"):
    """The request or its response was lost on the network (refused, reset, closed early)."""


class UnifAPITimeoutError(UnifAPITransportError, error_type="timeout"):
    """The request timed out (connect, read, write or waiting for a pooled connection)."""


class UnifAPIInvalidResponseError(UnifAPIError, error_type="invalid_response"):
    """A 2xx response whose body is not JSON, is cut short, or does not match the schema."""


class UnifAPIResponseTooLargeError(UnifAPIInvalidResponseError, error_type="response_too_large"):
    """The response body is larger than the client's ``max_response_bytes`` cap."""


class UnifAPIHashtagNotFoundError(UnifAPIError, error_type="hashtag_name_not_found"):
    """Hashtag search found no hashtag whose name equals the one asked for."""


class UnifAPIOutputError(UnifAPIError, error_type="output_error"):
    """The output folder cannot hold this run as it is; nothing was paid for because of it."""


class UnifAPIFolderBusyError(UnifAPIOutputError, error_type="folder_busy"):
    """Another live writer (try, DAG run, chain) holds the folder's claim; retry once it has ended."""


class UnifAPIClaimLostError(UnifAPIOutputError, error_type="claim_lost"):
    """This writer's claim expired or was taken over: it stops before writing again (a zombie)."""


class UnifAPIOutputMismatchError(UnifAPIOutputError, error_type="output_mismatch"):
    """The folder's parts do not hold what the checkpoint says; nothing was deleted, look before rerunning."""


#: ``error.type`` -> exception class, for every type of the spec.
ERROR_TYPES: dict[str, type[UnifAPIAPIError]] = {
    cls.error_type: cls
    for cls in (
        UnifAPIValidationError,
        UnifAPIInvalidIdError,
        UnifAPIUnauthorizedError,
        UnifAPIInsufficientCreditsError,
        UnifAPINotFoundError,
        UnifAPIRateLimitedError,
        UnifAPIInternalError,
        UnifAPIResponseShapeError,
        UnifAPIUpstreamError,
        UnifAPIUpstreamUnavailableError,
    )
}

# Statuses that mean "try again later" even without a gateway error envelope (proxies, LBs).
_TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


def error_from_response(status: int, error_type: str | None, message: str, **fields: Any) -> UnifAPIAPIError:
    """The typed exception of an error response, by ``error_type`` (two share 400, two share 500); a
    type outside the spec is an unexpected status."""
    cls = ERROR_TYPES.get(error_type or "")
    if cls is None:
        return UnifAPIUnexpectedStatusError(message, status=status, error_type=error_type or None, **fields)
    return cls(message, status=status, **fields)


def max_attempts_for(exc: BaseException) -> int | None:
    """Per-type cap on attempts, where the spec sets one tighter than the client's own bound."""
    if isinstance(exc, UnifAPIResponseShapeError):
        return 3  # "retry once or twice at most"
    if isinstance(exc, UnifAPIUpstreamError):
        return 2  # "a retry at most"
    return None


def is_retryable(exc: BaseException) -> bool:
    """The one predicate that says whether a failed UnifAPI call is worth another attempt; never an
    unreadable 2xx body, which was billed (see ``UnifAPIClient(retry_billed_errors=...)``)."""
    if isinstance(
        exc, (UnifAPIRateLimitedError, UnifAPIServerError, UnifAPITransportError, UnifAPIFolderBusyError)
    ):
        return True
    if isinstance(exc, UnifAPIUnexpectedStatusError):
        return exc.status in _TRANSIENT_STATUSES
    return False


class UnifAPIPaginationError(UnifAPIInvalidResponseError, error_type="pagination_error"):
    """The cursor chain is broken (a cursor came back twice), so following it could loop forever."""


class UnifAPITruncatedByBalanceError(UnifAPIInsufficientCreditsError, error_type="balance_truncated"):
    """A page came back short with ``truncated_due_to_balance``: top up, then resume from ``resume_cursor``.

    :param resume_cursor: the cursor that fetched the truncated page (its ``next_cursor`` may skip records).
    """

    def __init__(self, message: str, *, resume_cursor: str | None, **fields: Any) -> None:
        super().__init__(message, **fields)
        self.resume_cursor = resume_cursor
