"""UnifAPIBalanceTrigger: wait in the triggerer until the UnifAPI workspace balance reaches a threshold."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow_provider_unifapi._compat import BaseTrigger, TriggerEvent
from airflow_provider_unifapi.exceptions import UnifAPIError, UnifAPIInputError
from airflow_provider_unifapi.hooks.balance_reading import (
    DEFAULT_MAX_BALANCE_AGE,
    check_seconds,
    is_finite_number,
)
from airflow_provider_unifapi.hooks.unifapi import UnifAPIHook


class UnifAPIBalanceTrigger(BaseTrigger):
    """Poll the UnifAPI workspace balance from the triggerer until it reaches ``min_balance``.

    Each poll is ``UnifAPIHook.acheck_balance``; only the connection id is held (never the key).
    Yields one event, ``success``, ``error`` or ``timeout`` (docs/balance-sensor.md).

    :param min_balance: credits the workspace must hold (an int >= 0).
    :param unifapi_conn_id: the ``unifapi`` connection.
    :param poll_interval: seconds between polls (> 0); the first waits too (the sensor just poked).
    :param end_time: Unix time after which a ``timeout`` event ends the wait, or ``None``.
    :param probe_hashtag_id: probe with ``GET /tiktok/hashtags/{id}`` instead of a hashtag search.
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
        self.min_balance = min_balance
        self.unifapi_conn_id = unifapi_conn_id
        self.poll_interval = poll_interval
        self.end_time = end_time
        self.probe_hashtag_id = probe_hashtag_id
        self.max_balance_age = max_balance_age

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Classpath and kwargs (no secret in them)."""
        return (
            "airflow_provider_unifapi.triggers.balance.UnifAPIBalanceTrigger",
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
        try:
            self._check_arguments()
        except UnifAPIInputError as exc:
            yield TriggerEvent(_error(f"UnifAPIBalanceTrigger cannot start: {exc}", exc))
            return
        async with UnifAPIHook(self.unifapi_conn_id) as hook:
            yield TriggerEvent(await self._wait(hook))

    def _check_arguments(self) -> None:
        if not isinstance(self.unifapi_conn_id, str) or not self.unifapi_conn_id.strip():
            raise UnifAPIInputError(
                "unifapi_conn_id", f"must be a connection id, got {self.unifapi_conn_id!r}"
            )
        check_seconds(self.poll_interval, "poll_interval", allow_zero=False)
        check_seconds(self.max_balance_age, "max_balance_age", allow_zero=True)
        if self.end_time is not None and not is_finite_number(self.end_time):
            raise UnifAPIInputError(
                "end_time", f"must be None or a finite Unix timestamp (time.time()), got {self.end_time!r}"
            )

    async def _wait(self, hook: UnifAPIHook) -> dict[str, Any]:
        polls, spent, last_balance = 0, 0, None
        while True:
            await asyncio.sleep(self._next_wait())
            polls += 1
            try:
                check = await hook.acheck_balance(
                    self.min_balance, max_age=self.max_balance_age, probe_hashtag_id=self.probe_hashtag_id
                )
            except UnifAPIError as exc:  # bad min_balance/probe id, or an unusable connection
                return _error(f"Connection {self.unifapi_conn_id!r} cannot be used: {exc}", exc)
            except Exception as exc:  # a missing connection, a secrets backend failure...
                return _error(
                    f"Could not read connection {self.unifapi_conn_id!r}: {type(exc).__name__}: {exc}"
                )
            spent += check.credits
            check.log_to(self.log)
            if check.fatal:
                return _error(check.message, check.error)
            if check.reading is not None:
                last_balance = check.reading.balance
            if check.satisfied:
                outcome = {"status": "success", "message": check.message, **check.xcom_value()}
            elif self.end_time is not None and time.time() >= self.end_time:
                outcome = self._timeout(last_balance, spent, polls)
            else:
                continue
            return {**outcome, "credits_spent": spent, "polls": polls}

    def _next_wait(self) -> float:
        if self.end_time is None:
            return float(self.poll_interval)
        return max(0.0, min(float(self.poll_interval), self.end_time - time.time()))

    def _timeout(self, last_balance: int | None, credits_spent: int, polls: int) -> dict[str, Any]:
        message = (
            f"Timed out waiting for the UnifAPI balance of connection {self.unifapi_conn_id!r} "
            f"to reach {self.min_balance} credits (last seen: {last_balance}; {polls} poll(s) "
            f"costing {credits_spent} credit(s))."
        )
        return {"status": "timeout", "message": message, "balance": last_balance}


def _error(message: str, exc: UnifAPIError | None = None) -> dict[str, Any]:
    return {"status": "error", "message": message, "error": exc.to_dict() if exc is not None else None}
