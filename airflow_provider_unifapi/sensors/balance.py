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

# Extra time the triggerer grants a deferred sensor past its own end_time, so the trigger's
# ``timeout`` event (which says what was seen and spent) normally wins over Airflow's bare deferral
# timeout; the latter only backs it up when the triggerer was down.
_DEFERRAL_GRACE = 60.0


class UnifAPIBalanceSensor(BaseSensorOperator):
    """Wait until the UnifAPI workspace balance is at least ``min_balance`` credits.

    UnifAPI has no free balance endpoint. Each poke first reads the balance remembered from an
    earlier response (the Variable ``unifapi_balance__<digest of the API key>``, written by the operator and by
    this sensor): while it is at most ``max_balance_age`` seconds old and high enough, the sensor
    succeeds for free. Otherwise it takes one live reading, the cheapest call there is: a hashtag
    search with ``limit=1`` (1 credit), or ``GET /tiktok/hashtags/{probe_hashtag_id}`` (1 credit).
    A 402 answer costs nothing and carries the balance. Every poke logs what it cost, and every live
    reading is remembered so the next poke, or another sensor, may use it for free.

    Modes: ``poke``, ``reschedule`` (nothing is kept between pokes), and ``deferrable=True``: one poke
    on the worker, then :class:`~airflow_provider_unifapi.triggers.balance.UnifAPIBalanceTrigger`
    polls from the triggerer every ``poke_interval`` seconds (``mode`` is then ignored). ``timeout``
    and ``soft_fail`` behave as for every sensor. A refused API key (401), or a probe hashtag the API
    refuses, fails the task at once instead of waiting out the timeout. Transient errors (429, 5xx,
    network) are logged and the sensor keeps waiting.

    Arguments are checked when the task runs, after rendering, so templates and XCom values work.

    Returns (XCom) ``{"balance", "seen_at", "request_id", "source"}`` where ``source`` is
    ``remembered`` or ``live``.

    :param min_balance: credits the workspace must hold (templated), an int >= 0.
    :param unifapi_conn_id: the ``unifapi`` connection.
    :param max_balance_age: seconds a remembered balance answers for free; ``None`` takes the
        connection's ``balance_max_age`` extra (default 300); 0 always reads live.
    :param probe_hashtag_id: numeric id of a hashtag to read the balance with
        (``GET /tiktok/hashtags/{id}``, 1 credit) instead of a hashtag search with ``limit=1``
        (1 credit, the default, needs no configuration) (templated).
    :param deferrable: wait in the triggerer instead of on a worker; defaults to Airflow's
        ``[operators] default_deferrable``.
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

    # -- one poke: the same decision on a worker (poke/reschedule) and before deferring -----------
    def poke(self, context: Context) -> PokeReturnValue:
        # A hook (and client) per poke: nothing outlives the poke (reschedule mode starts afresh).
        with UnifAPIHook(self.unifapi_conn_id) as hook:
            return self._poke(hook)

    def _poke(self, hook: UnifAPIHook) -> PokeReturnValue:
        check = self._check(hook)
        if check.fatal:
            raise AirflowFailException(check.message)
        if check.reading is None:
            self.log.warning("%s Still waiting.", check.message)
            return PokeReturnValue(False)
        self.log.info("%s", check.message)
        return PokeReturnValue(check.satisfied, check.xcom_value() if check.satisfied else None)

    def _check(self, hook: UnifAPIHook) -> BalanceCheck:
        try:
            return hook.check_balance(
                self.min_balance, max_age=self.max_balance_age, probe_hashtag_id=self.probe_hashtag_id
            )
        except UnifAPIError as exc:  # bad arguments or an unusable connection: waiting cannot help
            raise AirflowFailException(f"UnifAPIBalanceSensor {self.task_id!r}: {exc}") from None

    # -- deferrable mode ---------------------------------------------------------------------------
    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        end_time = time.time() + self.timeout
        with UnifAPIHook(self.unifapi_conn_id) as hook:
            # One poke on the worker first: a balance already enough needs no triggerer round trip.
            check = self._soft_fail_aware(lambda: self._deferrable_check(hook))
            max_age = hook.balance_max_age() if self.max_balance_age is None else self.max_balance_age
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

    def _deferrable_check(self, hook: UnifAPIHook) -> BalanceCheck:
        try:
            # Each poll may cost a credit: a zero interval would spend without pause.
            check_seconds(self.poke_interval, "poke_interval", allow_zero=False)
        except UnifAPIError as exc:
            raise AirflowFailException(f"UnifAPIBalanceSensor {self.task_id!r}: {exc}") from None
        check = self._check(hook)
        if check.fatal:
            raise AirflowFailException(check.message)
        return check

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        """Resume after the trigger's event: return the balance, or fail / time out with its message.

        ``soft_fail`` turns a failure or a timeout here into a skip (Airflow's sensor base does it).
        """
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

    def _soft_fail_aware(self, step: Any) -> Any:
        """Run ``step`` as the sensor base runs ``poke``: a failure becomes a skip with ``soft_fail``."""
        try:
            return step()
        except (AirflowFailException, AirflowSensorTimeout) as exc:
            if self.soft_fail or getattr(self, "never_fail", False):
                raise AirflowSkipException(f"Skipping (soft_fail): {exc}") from exc
            raise
