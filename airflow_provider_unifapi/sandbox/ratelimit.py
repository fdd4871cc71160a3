"""Token bucket of the workspace (the caller holds the state lock)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Verdict:
    """Outcome of taking one token, with what the ``X-RateLimit-*`` headers should say."""

    allowed: bool
    limit: int
    remaining: int
    reset_at: int
    retry_after: int

    def headers(self) -> list[tuple[str, str]]:
        """The ``X-RateLimit-*`` (and on refusal ``Retry-After``) response headers."""
        out = [
            ("X-RateLimit-Limit", str(self.limit)),
            ("X-RateLimit-Remaining", str(self.remaining)),
            ("X-RateLimit-Reset", str(self.reset_at)),
        ]
        if not self.allowed:
            out.append(("Retry-After", str(self.retry_after)))
        return out


class TokenBucket:
    """``per_minute`` tokens a minute, at most ``burst`` saved up; ``per_minute == 0`` disables it.

    :param per_minute: refill rate (the plan's requests per minute).
    :param burst: capacity; a full bucket allows this many back-to-back calls.
    :param clock: monotonic clock, injectable for tests.
    """

    def __init__(self, per_minute: int, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.burst = max(1, burst)
        self._clock = clock
        self._tokens = float(self.burst)
        self._stamp = clock()

    @property
    def enabled(self) -> bool:
        """Whether limiting is on at all."""
        return self.per_minute > 0

    def _refill(self) -> float:
        now = self._clock()
        rate = self.per_minute / 60.0
        self._tokens = min(float(self.burst), self._tokens + (now - self._stamp) * rate)
        self._stamp = now
        return rate

    def _verdict(self, allowed: bool, rate: float) -> Verdict:
        # X-RateLimit-Reset is wall-clock Unix seconds at which the bucket is full again.
        full_in = (self.burst - self._tokens) / rate
        retry = max(1, math.ceil((1.0 - self._tokens) / rate)) if not allowed else 0
        return Verdict(allowed, self.per_minute, int(self._tokens), math.ceil(time.time() + full_in), retry)

    def take(self) -> Verdict | None:
        """Take a token; ``None`` when limiting is off."""
        if not self.enabled:
            return None
        rate = self._refill()
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return self._verdict(True, rate)
        return self._verdict(False, rate)

    def peek(self) -> Verdict | None:
        """Report the bucket without taking a token (for calls refused before the bucket)."""
        if not self.enabled:
            return None
        return self._verdict(True, self._refill())
