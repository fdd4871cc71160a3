"""A client-side pacer: spaces requests to the workspace rate limit instead of waiting out 429s.

Why: a client that empties the workspace's token bucket meets a 429 on every extra request, each a
``Retry-After`` wait of a second or more, so a 429 storm runs *below* the limit (README, "Many
hashtags"). Thread-safe; it never sleeps itself, so each client sleeps its own way.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from airflow_provider_unifapi.models import RateLimitInfo

#: how often a request waiting for the probe's answer looks again (seconds)
PROBE_POLL = 0.02


class RatePacer:
    """A local copy of the workspace's token bucket, fed by every response's headers."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        #: tokens per second (``None``: no limit known yet; 0: the server does not limit)
        self._rate: float | None = None
        self._tokens = 0.0
        self._capacity = 1.0
        self._stamp = clock()
        self._not_before = 0.0
        self._probe_out = False
        #: requests that had to wait for a token, and the seconds they waited (for logs and tests)
        self.waits = 0
        self.waited_seconds = 0.0

    def _refill(self, now: float) -> None:
        if self._rate:
            self._tokens = min(self._capacity, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now

    def reserve(self) -> tuple[float, bool]:
        """``(wait, reserved)``: sleep ``wait``, then send if ``reserved``, else call again."""
        with self._lock:
            now = self._clock()
            hold = max(0.0, self._not_before - now)
            if self._rate is None:  # one request (the probe) until the limit is known: no blind burst
                if self._probe_out:
                    return max(hold, PROBE_POLL), False
                self._probe_out = True
                return hold, True
            if self._rate == 0:
                return hold, True
            self._refill(now)
            # Reserve now, even into debt: later callers queue behind this one, in order.
            self._tokens -= 1.0
            wait = max(hold, -self._tokens / self._rate if self._tokens < 0 else 0.0)
            if wait > 0:
                self.waits += 1
                self.waited_seconds += wait
            return wait, True

    def observe(self, info: RateLimitInfo | None, *, retry_after: float | None = None) -> None:
        """Learn from one response's ``X-RateLimit-*`` headers (``None``: none). A 429's ``retry_after``
        holds every chain, so the others do not pile more 429s on it."""
        with self._lock:
            now = self._clock()
            self._probe_out = False
            if retry_after is not None and retry_after > 0:
                self._not_before = max(self._not_before, now + retry_after)
            if info is None or info.limit is None or info.limit <= 0:
                if info is None and retry_after is None and self._rate is None:
                    self._rate = 0.0  # the server does not limit: do not pace
                return
            first = not self._rate
            self._rate = info.limit / 60.0
            if info.remaining is not None:
                # A bucket that showed ``remaining`` after taking a token holds at least one more.
                self._capacity = max(self._capacity, info.remaining + 1.0)
                self._refill(now)
                if first:
                    self._tokens = float(info.remaining)
                else:
                    # Never more than the server says: tokens spent by other clients count too.
                    self._tokens = min(self._tokens, float(info.remaining))
            else:
                self._refill(now)

    def release_probe(self) -> None:
        """The probe ended without a response (a network error): let the next request probe."""
        with self._lock:
            self._probe_out = False
