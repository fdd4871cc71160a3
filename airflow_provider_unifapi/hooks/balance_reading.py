"""The hook's balance check (docs/balance-sensor.md, "How it reads the balance"). No Airflow import at
module level."""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal

from airflow_provider_unifapi.client import PROBE_CREDITS, PROBE_QUERY, ClientConfig, validate_hashtag_id
from airflow_provider_unifapi.exceptions import (
    UnifAPIError,
    UnifAPIInputError,
    UnifAPIInsufficientCreditsError,
    is_retryable,
)
from airflow_provider_unifapi.models import BalanceReading

log = logging.getLogger(__name__)

#: Seconds a remembered balance answers for free when neither the sensor nor the connection says.
DEFAULT_MAX_BALANCE_AGE: float = ClientConfig().balance_max_age


@dataclass(frozen=True)
class BalanceCheck:
    """One look at the workspace balance: the ``reading`` (``None`` when a live one failed), what it
    cost, the log line saying so, and whether waiting cannot help (``fatal``: a refused key or probe)."""

    min_balance: int
    reading: BalanceReading | None
    source: Literal["remembered", "live"]
    credits: int
    message: str
    error: UnifAPIError | None = None
    fatal: bool = False

    @property
    def satisfied(self) -> bool:
        return self.reading is not None and self.reading.balance >= self.min_balance

    def xcom_value(self) -> dict[str, Any]:
        assert self.reading is not None
        return {**_as_json(self.reading), "source": self.source}

    def log_to(self, logger: Any) -> None:
        if self.reading is None and not self.fatal:
            logger.warning("%s Still waiting.", self.message)
        else:
            logger.info("%s", self.message)


# -- arguments (checked after rendering: they may come from templates or XCom) --------------------
def check_min_balance(value: Any) -> int:
    """``value`` as an int >= 0; a string of digits (a rendered template) is accepted."""
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UnifAPIInputError(
            "min_balance", f"must be an integer number of credits >= 0 (e.g. 5000), got {value!r}"
        )
    return value


def is_finite_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def check_seconds(value: Any, argument: str, *, allow_zero: bool) -> float:
    if not is_finite_number(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise UnifAPIInputError(argument, f"must be a finite number of seconds {bound}, got {value!r}")
    return float(value)


def check_probe_hashtag_id(value: Any) -> str | None:
    return None if value in (None, "") else validate_hashtag_id(value, "probe_hashtag_id")


# -- the remembered reading (an Airflow Variable) -------------------------------------------------
def variable_name(api_key: str) -> str:
    """Keyed by a digest of the key, not the connection id: a changed key (another workspace) must not
    pass on the old key's reading. 16 hex digits of SHA-256 identify a key without revealing it."""
    return "unifapi_balance__" + hashlib.sha256(api_key.strip().encode()).hexdigest()[:16]


def recall(name: str) -> BalanceReading | None:
    """The reading remembered in the Variable ``name``; ``None`` when absent or unreadable."""
    from airflow_provider_unifapi._compat import get_variable

    try:
        raw = get_variable(name)
    except Exception as exc:  # the metadata DB or API server is unreachable: read live instead
        log.warning("Could not read Variable %s: %s", name, exc)
        return None
    if not raw:
        return None
    try:
        return BalanceReading.model_validate_json(raw)
    except ValueError:  # pydantic's ValidationError is one
        log.warning("Variable %s does not hold a balance reading; ignoring it", name)
        return None


def remember(name: str, reading: BalanceReading | None) -> None:
    """Store ``reading`` in the Variable ``name`` unless a newer one is there; never raises."""
    if reading is None:
        return
    from airflow_provider_unifapi._compat import Variable

    try:
        current = recall(name)
        if current is not None and current.seen_at > reading.seen_at:
            return
        Variable.set(
            name,
            json.dumps(_as_json(reading)),
            description="Last UnifAPI workspace balance seen (written by airflow-provider-unifapi).",
        )
    except Exception as exc:  # remembering is an optimisation: losing it costs one paid probe
        log.warning("Could not remember the UnifAPI balance in Variable %s: %s", name, exc)


def _as_json(reading: BalanceReading) -> dict[str, Any]:
    return {
        "balance": reading.balance,
        "seen_at": reading.seen_at.isoformat(),
        "request_id": reading.request_id,
    }


def _age(reading: BalanceReading) -> float:
    """A reading from a worker whose clock runs ahead counts as new."""
    seen_at = reading.seen_at if reading.seen_at.tzinfo else reading.seen_at.replace(tzinfo=timezone.utc)
    return max(0.0, (datetime.now(timezone.utc) - seen_at).total_seconds())


def remembered_check(reading: BalanceReading | None, min_balance: int, max_age: float) -> BalanceCheck | None:
    """A free answer from ``reading`` when fresh and high enough (only a live reading sees a top-up)."""
    if reading is None or reading.balance < min_balance or _age(reading) > max_age:
        return None
    message = (
        f"Remembered balance {reading.balance} >= min_balance {min_balance}, seen "
        f"{_age(reading):.0f}s ago (request_id {reading.request_id}); this poke cost 0 credits."
    )
    return BalanceCheck(min_balance, reading, "remembered", 0, message)


# -- the live reading ------------------------------------------------------------------------------
class LiveProbe:
    """One live reading on ``client`` (sync or async), judged by its credits and last balance: the
    same story whether the probe succeeded, got a 402 or failed."""

    def __init__(self, conn_id: str, client: Any, min_balance: int, probe_hashtag_id: str | None) -> None:
        self.conn_id = conn_id
        self.client = client
        self.min_balance = min_balance
        self.probe_hashtag_id = probe_hashtag_id
        self._spent_before = _credits_spent(client)
        self._seen_before = client.last_balance

    def read(self) -> BalanceCheck:
        """A failed probe is part of the verdict, not raised."""
        try:
            self._send()
        except UnifAPIError as exc:
            return self._verdict(exc)
        return self._verdict(None)

    async def aread(self) -> BalanceCheck:
        try:
            await self._send()
        except UnifAPIError as exc:
            return self._verdict(exc)
        return self._verdict(None)

    def _send(self) -> Any:
        # The result for the sync client, an awaitable for the async one.
        if self.probe_hashtag_id is None:
            return self.client.search_hashtags(PROBE_QUERY, limit=1, max_credits=PROBE_CREDITS)
        return self.client.get_hashtag(self.probe_hashtag_id, max_credits=PROBE_CREDITS)

    def _verdict(self, error: UnifAPIError | None) -> BalanceCheck:
        cost = _credits_spent(self.client) - self._spent_before
        cost_text = f"this poke cost {cost} credit{'s' if cost != 1 else ''}"
        search = f"GET /tiktok/search/hashtags?q={PROBE_QUERY}&limit=1"
        label = search if self.probe_hashtag_id is None else f"GET /tiktok/hashtags/{self.probe_hashtag_id}"
        if error is not None and not isinstance(error, UnifAPIInsufficientCreditsError):
            if not is_retryable(error):
                message = f"{self._fatal_hint(error)} ({error}); {cost_text}."
                return BalanceCheck(self.min_balance, None, "live", cost, message, error, fatal=True)
            message = f"Live balance reading ({label}) failed: {error}; {cost_text}."
            return BalanceCheck(self.min_balance, None, "live", cost, message, error)
        reading = self.client.last_balance if self.client.last_balance is not self._seen_before else None
        if reading is None:  # cannot happen for a 200 or a 402; kept so a drifted API never passes a check
            message = f"Live balance reading ({label}) reported no balance; {cost_text}."
            return BalanceCheck(self.min_balance, None, "live", cost, message, error)
        verdict = ">=" if reading.balance >= self.min_balance else "<"
        message = (
            f"Live balance reading ({label}, request_id {reading.request_id}): "
            f"balance {reading.balance} {verdict} min_balance {self.min_balance}; {cost_text}."
        )
        return BalanceCheck(self.min_balance, reading, "live", cost, message)

    def _fatal_hint(self, exc: UnifAPIError) -> str:
        if exc.error_type == "unauthorized":
            return (
                f"UnifAPI refused the API key of connection {self.conn_id!r}; fix the key in the "
                "connection's password ('API key') field. Not waiting for the timeout: a refused key "
                "does not heal."
            )
        if self.probe_hashtag_id is not None and exc.error_type in ("not_found", "invalid_id"):
            return (
                f"The balance probe hashtag {self.probe_hashtag_id} is refused by UnifAPI; pick another "
                "probe_hashtag_id, or leave it unset to probe with a hashtag search."
            )
        return f"UnifAPI refused the balance reading of connection {self.conn_id!r}."


def _credits_spent(client: Any) -> int:
    """Confirmed, plus the worst case of attempts whose bill was lost."""
    return int(client.credits_charged) + int(client.possibly_billed_credits)
