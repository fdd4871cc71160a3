"""How the balance sensor and trigger read the workspace balance, paying as little as possible.

There is no free balance endpoint, so a live reading is the cheapest paid call there is (1 credit;
a 402 costs nothing and carries the balance). A balance remembered from an earlier response (the
Airflow Variable of :mod:`airflow_provider_unifapi.balance_memory`) answers for free while it is
fresh and high enough. The sensor (on a worker) and the trigger (in the triggerer) share these
helpers, so a poke and a poll decide and cost exactly the same. Imports nothing from Airflow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from airflow_provider_unifapi.client import validate_hashtag_id
from airflow_provider_unifapi.exceptions import UnifAPIError, UnifAPIInsufficientCreditsError, is_retryable
from airflow_provider_unifapi.models import BalanceReading

#: Seconds a remembered balance answers for free when neither the sensor nor the connection says.
DEFAULT_MAX_BALANCE_AGE = 300.0
#: Keyword of the default live reading. Any keyword costs the same (1 credit, ``limit=1``), found or not.
PROBE_QUERY = "tiktok"
#: Most credits a live reading may spend; sent as ``X-Unifapi-Max-Credits`` and covering retries too.
PROBE_CREDITS = 1


# -- argument checks (shared with the sensor): a clear TypeError/ValueError naming the argument -----
def check_min_balance(value: Any, argument: str = "min_balance") -> int:
    """``value`` as an int >= 0; a string of digits (a rendered template) is accepted."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{argument} must be an integer number of credits >= 0, got {value!r}")
    if value < 0:
        raise ValueError(f"{argument} must be an integer number of credits >= 0, got {value}")
    return value


def check_seconds(value: Any, argument: str, *, allow_zero: bool) -> float:
    """``value`` as a finite float of seconds (> 0, or >= 0 with ``allow_zero``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{argument} must be a number of seconds, got {value!r}")
    if math.isnan(value) or math.isinf(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{argument} must be a finite number of seconds {bound}, got {value!r}")
    return float(value)


def check_probe_hashtag_id(value: Any) -> str | None:
    """``None`` (probe with a hashtag search) or the numeric id of the hashtag to probe with."""
    if value is None:
        return None
    return validate_hashtag_id(value, "probe_hashtag_id")  # a ValueError subclass naming the argument


def check_conn_id(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"unifapi_conn_id must be a connection id string, got {value!r}")
    if not value.strip():
        raise ValueError("unifapi_conn_id must not be empty")
    return value


# -- the decision and the probe (sans-I/O where possible, shared by sensor and trigger) -------------
def fresh_enough(
    reading: BalanceReading | None, min_balance: int, max_age: float, now: datetime | None = None
) -> bool:
    """True when a remembered ``reading`` may answer for free: seen at most ``max_age`` s ago and high enough.

    A low reading never answers, however fresh: a top-up leaves no trace in it, so only a live
    reading can see one.
    """
    if reading is None or reading.balance < min_balance:
        return False
    return reading_age(reading, now) <= max_age


def reading_age(reading: BalanceReading, now: datetime | None = None) -> float:
    """Seconds since ``reading`` was seen; a reading from a worker whose clock runs ahead counts as new."""
    seen_at = reading.seen_at if reading.seen_at.tzinfo else reading.seen_at.replace(tzinfo=timezone.utc)
    return max(0.0, ((now or datetime.now(timezone.utc)) - seen_at).total_seconds())


def probe_label(probe_hashtag_id: str | None) -> str:
    """What a live reading calls, for logs and docs."""
    if probe_hashtag_id is None:
        return f"GET /tiktok/search/hashtags?q={PROBE_QUERY}&limit=1"
    return f"GET /tiktok/hashtags/{probe_hashtag_id}"


def start_probe(client: Any, probe_hashtag_id: str | None) -> Any:
    """Send the live reading on ``client``: the result for the sync client, an awaitable for the async one."""
    if probe_hashtag_id is None:
        return client.search_hashtags(PROBE_QUERY, limit=1, max_credits=PROBE_CREDITS)
    return client.get_hashtag(probe_hashtag_id, max_credits=PROBE_CREDITS)


def spent_by(client: Any) -> int:
    """Credits ``client`` has spent so far: confirmed, plus worst case for attempts whose bill was lost."""
    return int(client.credits_charged) + int(client.possibly_billed_credits)


@dataclass(frozen=True)
class ProbeOutcome:
    """What one live reading found and cost.

    :param reading: the balance the response (200 or 402) reported, ``None`` when the call failed.
    :param credits: credits this reading spent (0 for a 402; worst case when a bill was lost).
    :param error: a retryable error that ended the reading (the sensor keeps waiting).
    """

    reading: BalanceReading | None
    credits: int
    error: UnifAPIError | None = None

    @classmethod
    def after(
        cls,
        client: Any,
        spent_before: int,
        seen_before: BalanceReading | None,
        error: UnifAPIError | None,
    ) -> ProbeOutcome:
        reading = client.last_balance if client.last_balance is not seen_before else None
        return cls(reading=reading, credits=spent_by(client) - spent_before, error=error)


def classify_probe_error(exc: UnifAPIError) -> UnifAPIError | None:
    """``None`` for a 402 (an answer: it carries the balance), the error when it is worth waiting on.

    :raises UnifAPIError: re-raised when it is fatal (401, 400, 404...): waiting cannot fix it.
    """
    if isinstance(exc, UnifAPIInsufficientCreditsError):
        return None
    if is_retryable(exc):
        return exc
    raise exc


def describe_outcome(outcome: ProbeOutcome, min_balance: int, probe_hashtag_id: str | None) -> str:
    """One log line per live reading: what it called, what it saw, what it cost."""
    cost = f"this poke cost {outcome.credits} credit{'s' if outcome.credits != 1 else ''}"
    if outcome.reading is None:
        return f"Live balance reading ({probe_label(probe_hashtag_id)}) failed: {outcome.error}; {cost}."
    verdict = ">=" if outcome.reading.balance >= min_balance else "<"
    return (
        f"Live balance reading ({probe_label(probe_hashtag_id)}, request_id {outcome.reading.request_id}): "
        f"balance {outcome.reading.balance} {verdict} min_balance {min_balance}; {cost}."
    )


def describe_remembered(reading: BalanceReading, min_balance: int) -> str:
    return (
        f"Remembered balance {reading.balance} >= min_balance {min_balance}, seen "
        f"{reading_age(reading):.0f}s ago (request_id {reading.request_id}); this poke cost 0 credits."
    )


def result_value(reading: BalanceReading, source: str) -> dict[str, Any]:
    """The sensor's XCom: the balance that satisfied it, when it was seen, how (``remembered``/``live``)."""
    return {
        "balance": reading.balance,
        "seen_at": reading.seen_at.isoformat(),
        "request_id": reading.request_id,
        "source": source,
    }


def fatal_message(conn_id: str, probe_hashtag_id: str | None, exc: UnifAPIError) -> str:
    """Why waiting longer cannot help, and what to fix."""
    if exc.error_type == "unauthorized":
        hint = (
            f"UnifAPI refused the API key of connection {conn_id!r}; fix the key in the connection's "
            "password ('API key') field. Not waiting for the timeout: a refused key does not heal."
        )
    elif probe_hashtag_id is not None and exc.error_type in ("not_found", "invalid_id"):
        hint = (
            f"The balance probe hashtag {probe_hashtag_id} is refused by UnifAPI; pick another "
            "probe_hashtag_id, or leave it unset to probe with a hashtag search."
        )
    else:
        hint = f"UnifAPI refused the balance reading of connection {conn_id!r}."
    return f"{hint} ({exc})"
