"""UnifAPIBalanceTrigger: wait in the triggerer until the UnifAPI workspace balance reaches a threshold.

There is no free balance endpoint, so a live reading is the cheapest paid call there is (1 credit;
a 402 costs nothing and carries the balance). A balance remembered from an earlier response (the
Airflow Variable of :mod:`airflow_provider_unifapi.balance_memory`) answers for free while it is
fresh and high enough. The decision and the probe live in :mod:`airflow_provider_unifapi.balance_probe`,
shared with :class:`~airflow_provider_unifapi.sensors.balance.UnifAPIBalanceSensor`, so a poke on a
worker and a poll in the triggerer decide and cost exactly the same.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow_provider_unifapi._compat import BaseTrigger, TriggerEvent
from airflow_provider_unifapi.balance_memory import recall_balance, remember_balance
from airflow_provider_unifapi.balance_probe import (
    DEFAULT_MAX_BALANCE_AGE,
    PROBE_CREDITS,
    PROBE_QUERY,
    ProbeOutcome,
    check_conn_id,
    check_min_balance,
    check_probe_hashtag_id,
    check_seconds,
    classify_probe_error,
    describe_outcome,
    describe_remembered,
    fatal_message,
    fresh_enough,
    probe_label,
    result_value,
    spent_by,
    start_probe,
)
from airflow_provider_unifapi.exceptions import UnifAPIError
from airflow_provider_unifapi.hooks.unifapi import UnifAPIHook
from airflow_provider_unifapi.models import BalanceReading

__all__ = [
    "DEFAULT_MAX_BALANCE_AGE",
    "PROBE_CREDITS",
    "PROBE_QUERY",
    "ProbeOutcome",
    "UnifAPIBalanceTrigger",
    "fresh_enough",
    "probe_label",
]

_CLASSPATH = "airflow_provider_unifapi.triggers.balance.UnifAPIBalanceTrigger"


# -- the trigger ------------------------------------------------------------------------------------
class UnifAPIBalanceTrigger(BaseTrigger):
    """Poll the UnifAPI workspace balance from the triggerer until it reaches ``min_balance``.

    Each poll first reads the remembered balance (free while fresh and high enough), otherwise makes
    one live reading of at most 1 credit (a 402 costs nothing). Every live reading is remembered for
    other sensors and operators. Holds only the connection id: the key is read in the triggerer.

    Yields exactly one event, a dict with ``status`` and ``message``:

    - ``success``: plus ``balance``, ``seen_at``, ``request_id``, ``source``, ``credits_spent``, ``polls``;
    - ``error``: plus ``error`` (the typed error's dict, never the key), after a fatal error such as 401;
    - ``timeout``: plus ``balance`` (last seen, or ``None``), ``credits_spent``, ``polls``.

    :param min_balance: credits the workspace must hold (an int >= 0).
    :param unifapi_conn_id: the ``unifapi`` connection.
    :param poll_interval: seconds between polls (> 0). The first poll waits one interval, since the
        sensor defers only after a poke found the balance short.
    :param end_time: Unix time (``time.time()``) after which a ``timeout`` event ends the wait;
        ``None`` waits for ever.
    :param probe_hashtag_id: probe with ``GET /tiktok/hashtags/{id}`` (1 credit) instead of a hashtag
        search with ``limit=1`` (1 credit).
    :param max_balance_age: seconds a remembered balance answers for free (0 = always read live).
    """

    def __init__(
        self,
        min_balance: int,
        *,
        unifapi_conn_id: str = UnifAPIHook.default_conn_name,
        poll_interval: float = 60.0,
        end_time: float | None = None,
        probe_hashtag_id: str | int | None = None,
        max_balance_age: float = DEFAULT_MAX_BALANCE_AGE,
    ) -> None:
        super().__init__()
        self.min_balance = check_min_balance(min_balance)
        self.unifapi_conn_id = check_conn_id(unifapi_conn_id)
        self.poll_interval = check_seconds(poll_interval, "poll_interval", allow_zero=False)
        if end_time is not None:
            if isinstance(end_time, bool) or not isinstance(end_time, (int, float)):
                raise TypeError(f"end_time must be None or a Unix timestamp (time.time()), got {end_time!r}")
            if not math.isfinite(end_time):
                raise ValueError(f"end_time must be a finite Unix timestamp, got {end_time!r}")
            end_time = float(end_time)
        self.end_time: float | None = end_time
        self.probe_hashtag_id = check_probe_hashtag_id(probe_hashtag_id)
        self.max_balance_age = check_seconds(max_balance_age, "max_balance_age", allow_zero=True)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Classpath and kwargs; rebuilding from them gives an equal serialization. No secret in them."""
        return (
            _CLASSPATH,
            {
                "min_balance": self.min_balance,
                "unifapi_conn_id": self.unifapi_conn_id,
                "poll_interval": self.poll_interval,
                "end_time": self.end_time,
                "probe_hashtag_id": self.probe_hashtag_id,
                "max_balance_age": self.max_balance_age,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll until the balance is enough, a fatal error, or ``end_time``; yield one event."""
        yield TriggerEvent(await self._wait())

    async def _wait(self) -> dict[str, Any]:
        try:
            client = await UnifAPIHook(self.unifapi_conn_id).get_async_conn()
        except UnifAPIError as exc:  # e.g. an empty API key: the message names the field to fix
            return self._error(exc, f"Connection {self.unifapi_conn_id!r} cannot be used: {exc}")
        except Exception as exc:  # a missing connection, a secrets backend failure...
            return {
                "status": "error",
                "message": f"Could not read connection {self.unifapi_conn_id!r}: {type(exc).__name__}: {exc}",
                "error": None,
            }
        try:
            return await self._poll(client)
        finally:
            await client.aclose()

    async def _poll(self, client: Any) -> dict[str, Any]:
        polls = 0
        spent_at_start = spent_by(client)
        last_balance: int | None = None
        while True:
            await asyncio.sleep(self._next_wait())
            polls += 1
            # The Variable lives in the metadata DB / API server: read and write it off the event loop.
            remembered = await asyncio.to_thread(recall_balance, self.unifapi_conn_id)
            if fresh_enough(remembered, self.min_balance, self.max_balance_age):
                assert remembered is not None
                message = describe_remembered(remembered, self.min_balance)
                return self._success(
                    remembered, "remembered", message, spent_by(client) - spent_at_start, polls
                )
            spent, seen = spent_by(client), client.last_balance
            error: UnifAPIError | None = None
            try:
                await start_probe(client, self.probe_hashtag_id)
            except UnifAPIError as exc:
                try:
                    error = classify_probe_error(exc)
                except UnifAPIError:
                    return self._error(exc, fatal_message(self.unifapi_conn_id, self.probe_hashtag_id, exc))
            outcome = ProbeOutcome.after(client, spent, seen, error)
            if outcome.reading is not None:
                await asyncio.to_thread(remember_balance, self.unifapi_conn_id, outcome.reading)
                last_balance = outcome.reading.balance
            message = describe_outcome(outcome, self.min_balance, self.probe_hashtag_id)
            if outcome.error is not None:
                self.log.warning("%s Still waiting.", message)
            else:
                self.log.info("%s", message)
            if outcome.reading is not None and outcome.reading.balance >= self.min_balance:
                return self._success(
                    outcome.reading, "live", message, spent_by(client) - spent_at_start, polls
                )
            if self.end_time is not None and time.time() >= self.end_time:
                return {
                    "status": "timeout",
                    "message": (
                        f"Timed out waiting for the UnifAPI balance of connection {self.unifapi_conn_id!r} "
                        f"to reach {self.min_balance} credits (last seen: {last_balance}; {polls} poll(s) "
                        f"costing {spent_by(client) - spent_at_start} credit(s))."
                    ),
                    "balance": last_balance,
                    "credits_spent": spent_by(client) - spent_at_start,
                    "polls": polls,
                }

    def _next_wait(self) -> float:
        if self.end_time is None:
            return self.poll_interval
        return max(0.0, min(self.poll_interval, self.end_time - time.time()))

    def _success(
        self, reading: BalanceReading, source: str, message: str, credits_spent: int, polls: int
    ) -> dict[str, Any]:
        return {
            "status": "success",
            "message": message,
            **result_value(reading, source),
            "credits_spent": credits_spent,
            "polls": polls,
        }

    @staticmethod
    def _error(exc: UnifAPIError, message: str) -> dict[str, Any]:
        return {"status": "error", "message": message, "error": exc.to_dict()}
