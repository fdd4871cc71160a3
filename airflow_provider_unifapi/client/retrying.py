"""Retry policy of the UnifAPI clients, on tenacity (README, "How retries, resume and budgets behave")."""

from __future__ import annotations

import email.utils
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from tenacity import RetryCallState

from airflow_provider_unifapi.exceptions import (
    UnifAPIError,
    UnifAPIRateLimitedError,
    is_retryable,
    max_attempts_for,
)

log = logging.getLogger("airflow_provider_unifapi.client")


def parse_retry_after(value: str | None, *, now: float | None = None, dates: bool = True) -> float | None:
    """Seconds of a ``Retry-After`` (a number or, with ``dates``, an HTTP date); ``None`` if unreadable."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        if not dates:
            return None
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(0.0, seconds)


#: Most 429 answers one call waits out, whatever the waits (see ``RetryPolicy.max_rate_limit_wait``).
MAX_RATE_LIMITED_ATTEMPTS = 100


@dataclass(frozen=True)
class RetryPolicy:
    """How many attempts a call gets and how long to wait between them (the client's keywords).

    A 429 is not billed and says when to come back, so 429s are bounded by ``max_rate_limit_wait``.
    """

    max_retries: int = 5
    max_retry_wait: float = 60.0
    backoff_base: float = 0.5
    retry_billed_errors: bool = False  # the spec: retry only what was not billed
    max_rate_limit_wait: float = 300.0

    def should_retry(
        self, exc: BaseException, attempt_number: int, *, rate_limited: int = 0, waited: float = 0.0
    ) -> bool:
        """True when ``exc`` of attempt ``attempt_number`` (1-based; ``rate_limited`` of them 429s,
        ``waited`` seconds so far) deserves another attempt."""
        if isinstance(exc, UnifAPIRateLimitedError):
            # The attempt cap is a safety net for configurations that wait 0 s, where a bound in
            # seconds alone would never run out.
            return waited < self.max_rate_limit_wait and rate_limited < MAX_RATE_LIMITED_ATTEMPTS
        if attempt_number - rate_limited > self.max_retries:
            return False
        type_cap = max_attempts_for(exc)
        if type_cap is not None and attempt_number >= type_cap:
            return False
        if is_retryable(exc):
            return True
        return bool(self.retry_billed_errors and isinstance(exc, UnifAPIError) and exc.may_have_been_billed)

    def backoff(self, attempt_number: int) -> float:
        ceiling = min(self.max_retry_wait, self.backoff_base * 2.0 ** (attempt_number - 1))
        # "Equal jitter": at least half the ceiling, so a storm of clients spreads out but never
        # hammers the API with near-zero waits.
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def wait_seconds(self, exc: BaseException | None, attempt_number: int) -> float:
        """Seconds to wait before the next attempt: ``Retry-After`` when positive, else backoff."""
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None and retry_after > 0:
            return min(float(retry_after), self.max_retry_wait)
        return self.backoff(attempt_number)

    # -- tenacity adapters -------------------------------------------------------------------
    def tenacity_wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        return self.wait_seconds(exc, state.attempt_number)

    def tenacity_retry(self, state: RetryCallState, rate_limited: int = 0) -> bool:
        if state.outcome is None or not state.outcome.failed:
            return False
        exc = state.outcome.exception()
        return exc is not None and self.should_retry(
            exc, state.attempt_number, rate_limited=rate_limited, waited=state.idle_for
        )

    def before_sleep(self, label: str) -> Callable[[RetryCallState], None]:
        """A tenacity ``before_sleep`` hook logging the retry (never a body or the key)."""

        def _log(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            wait = state.next_action.sleep if state.next_action else 0.0
            log.warning(
                "UnifAPI %s failed (%s, status=%s, request_id=%s); attempt %d, retrying in %.2fs",
                label,
                getattr(exc, "error_type", type(exc).__name__),
                getattr(exc, "status", None),
                getattr(exc, "request_id", None),
                state.attempt_number,
                wait,
            )

        return _log
