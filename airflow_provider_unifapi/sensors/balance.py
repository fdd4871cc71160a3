"""UnifAPIBalanceSensor: wait until the UnifAPI workspace holds enough credits, paying as little as possible."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow_provider_unifapi._compat import (
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    BaseSensorOperator,
    Context,
    PokeReturnValue,
    default_deferrable,
)
from airflow_provider_unifapi.exceptions import UnifAPIError
from airflow_provider_unifapi.hooks.balance_reading import BalanceCheck, check_seconds
from airflow_provider_unifapi.hooks.unifapi import UnifAPIHook
from airflow_provider_unifapi.triggers.balance import UnifAPIBalanceTrigger

# Extra time past the trigger's own end_time, so its ``timeout`` event (which says what was seen and
# spent) wins over Airflow's bare deferral timeout, a backup for when the triggerer was down.
_DEFERRAL_GRACE = 60.0


class UnifAPIBalanceSensor(BaseSensorOperator):
    """Wait until the UnifAPI workspace balance is at least ``min_balance`` credits (docs/balance-sensor.md).

    Each poke is ``UnifAPIHook.check_balance``. Returns (XCom) ``{"balance", "seen_at", "request_id",
    "source"}``, ``source`` being ``remembered`` or ``live``.

    :param min_balance: credits the workspace must hold (templated), an int >= 0.
    :param unifapi_conn_id: the ``unifapi`` connection.
    :param max_balance_age: seconds a remembered balance answers for free (``None``: the connection's).
    :param probe_hashtag_id: hashtag to read the balance with instead of a hashtag search (templated).
    :param deferrable: poke once, then wait in the triggerer; default ``[operators] default_deferrable``.
    """

    template_fields: Sequence[str] = ("min_balance", "probe_hashtag_id")
    ui_color = "#fe2c55"

    def __init__(
        self,
        *,
        min_balance: int | str,
        unifapi_conn_id: str = UnifAPIHook.default_conn_name,
        max_balance_age: float | None = None,
        probe_hashtag_id: str | int | None = None,
        deferrable: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.min_balance = min_balance
        self.unifapi_conn_id = unifapi_conn_id
        self.max_balance_age = max_balance_age
        self.probe_hashtag_id = probe_hashtag_id
        self.deferrable = default_deferrable() if deferrable is None else deferrable

    def poke(self, context: Context) -> PokeReturnValue:
        # A hook (and client) per poke: nothing outlives the poke (reschedule mode starts afresh).
        with UnifAPIHook(self.unifapi_conn_id) as hook:
            check = self._check(hook)
            check.log_to(self.log)
            return PokeReturnValue(check.satisfied, check.xcom_value() if check.satisfied else None)

    def _check(self, hook: UnifAPIHook, *, deferring: bool = False) -> BalanceCheck:
        """Fails the task when waiting cannot help."""
        try:
            if deferring:  # each trigger poll may cost a credit: a zero interval would spend without pause
                check_seconds(self.poke_interval, "poke_interval", allow_zero=False)
            check = hook.check_balance(
                self.min_balance, max_age=self.max_balance_age, probe_hashtag_id=self.probe_hashtag_id
            )
        except UnifAPIError as exc:  # bad arguments or an unusable connection
            raise AirflowFailException(f"UnifAPIBalanceSensor {self.task_id!r}: {exc}") from None
        if check.fatal:
            raise AirflowFailException(check.message)
        return check

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        end_time = time.time() + self.timeout
        try:
            with UnifAPIHook(self.unifapi_conn_id) as hook:
                # One poke on the worker first: a balance already enough needs no triggerer round trip.
                check = self._check(hook, deferring=True)
                max_age = hook.balance_max_age() if self.max_balance_age is None else self.max_balance_age
        except (AirflowFailException, AirflowSensorTimeout) as exc:  # as the sensor base treats a poke
            if self.soft_fail or getattr(self, "never_fail", False):
                raise AirflowSkipException(f"Skipping (soft_fail): {exc}") from exc
            raise
        if check.satisfied:
            self.log.info("%s", check.message)
            self.log.info("Success criteria met. Exiting.")
            return check.xcom_value()
        self.log.info(
            "%s Deferring to the triggerer, polling every %gs.", check.message, float(self.poke_interval)
        )
        self.defer(
            trigger=UnifAPIBalanceTrigger(
                check.min_balance,
                unifapi_conn_id=self.unifapi_conn_id,
                poll_interval=float(self.poke_interval),
                end_time=end_time,
                probe_hashtag_id=self.probe_hashtag_id,
                max_balance_age=float(max_age),
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout + self.poke_interval + _DEFERRAL_GRACE),
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        """Return the balance of the trigger's event, or fail / time out with its message."""
        if not event or "status" not in event:
            raise AirflowException(f"UnifAPIBalanceTrigger returned an unexpected event: {event!r}")
        status, message = event["status"], event.get("message", "")
        if status == "success":
            self.log.info(
                "Balance %s reached min_balance (%s reading) after %s trigger poll(s) costing %s credit(s).",
                event.get("balance"),
                event.get("source"),
                event.get("polls"),
                event.get("credits_spent"),
            )
            return {key: event.get(key) for key in ("balance", "seen_at", "request_id", "source")}
        if status == "timeout":
            raise AirflowSensorTimeout(message)
        if status == "error":
            raise AirflowFailException(message)
        raise AirflowException(f"UnifAPIBalanceTrigger returned an unknown status {status!r}: {message}")
