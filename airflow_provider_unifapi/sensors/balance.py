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
from airflow_provider_unifapi.balance_memory import recall_balance, remember_balance
from airflow_provider_unifapi.balance_probe import (
    DEFAULT_MAX_BALANCE_AGE,
    ProbeOutcome,
    check_min_balance,
    check_probe_hashtag_id,
    check_seconds,
    classify_probe_error,
    describe_outcome,
    describe_remembered,
    fatal_message,
    fresh_enough,
    result_value,
    spent_by,
    start_probe,
)
from airflow_provider_unifapi.exceptions import UnifAPIError
from airflow_provider_unifapi.hooks.unifapi import UnifAPIHook
from airflow_provider_unifapi.triggers.balance import UnifAPIBalanceTrigger

# Extra time the triggerer grants a deferred sensor past its own end_time, so the trigger's
# ``timeout`` event (which says what was seen and spent) normally wins over Airflow's bare deferral
# timeout; the latter only backs it up when the triggerer was down.
_DEFERRAL_GRACE = 60.0


def _is_template(value: Any) -> bool:
    return isinstance(value, str) and "{{" in value


class UnifAPIBalanceSensor(BaseSensorOperator):
    """Wait until the UnifAPI workspace balance is at least ``min_balance`` credits.

    UnifAPI has no free balance endpoint. Each poke first reads the balance remembered from an
    earlier response (the Variable ``unifapi_balance__<conn_id>``, written by the operator and by
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
        # Fail at DAG parse time for what is already known; templated values are checked per poke.
        # Values are kept as given (templates must render in place) and converted when used.
        if not _is_template(min_balance):
            check_min_balance(min_balance)
        if not _is_template(probe_hashtag_id):
            check_probe_hashtag_id(probe_hashtag_id)
        if max_balance_age is not None:
            check_seconds(max_balance_age, "max_balance_age", allow_zero=True)
        if self.deferrable and not self.poke_interval > 0:
            raise ValueError("poke_interval must be > 0 with deferrable=True: each poll may cost a credit")

    # -- one poke: the same decision on a worker (poke/reschedule) and before deferring -----------
    def poke(self, context: Context) -> PokeReturnValue:
        min_balance, probe_hashtag_id = self._rendered()
        hook = UnifAPIHook(self.unifapi_conn_id)
        return self._check(hook, min_balance, probe_hashtag_id, self._max_age(hook))

    def _check(
        self, hook: UnifAPIHook, min_balance: int, probe_hashtag_id: str | None, max_age: float
    ) -> PokeReturnValue:
        remembered = recall_balance(self.unifapi_conn_id)
        if fresh_enough(remembered, min_balance, max_age):
            assert remembered is not None
            self.log.info("%s", describe_remembered(remembered, min_balance))
            return PokeReturnValue(True, result_value(remembered, "remembered"))
        # A client per poke: nothing outlives the poke (reschedule mode starts from scratch anyway).
        try:
            client = hook.get_conn()
        except UnifAPIError as exc:
            raise AirflowFailException(f"Connection {self.unifapi_conn_id!r} cannot be used: {exc}") from None
        try:
            spent, seen = spent_by(client), client.last_balance
            error: UnifAPIError | None = None
            try:
                start_probe(client, probe_hashtag_id)
            except UnifAPIError as exc:
                try:
                    error = classify_probe_error(exc)
                except UnifAPIError:
                    raise AirflowFailException(
                        fatal_message(self.unifapi_conn_id, probe_hashtag_id, exc)
                    ) from None
            outcome = ProbeOutcome.after(client, spent, seen, error)
        finally:
            client.close()
        remember_balance(self.unifapi_conn_id, outcome.reading)
        message = describe_outcome(outcome, min_balance, probe_hashtag_id)
        if outcome.reading is None:
            self.log.warning("%s Still waiting.", message)
            return PokeReturnValue(False)
        self.log.info("%s", message)
        return PokeReturnValue(outcome.reading.balance >= min_balance, result_value(outcome.reading, "live"))

    def _rendered(self) -> tuple[int, str | None]:
        try:
            return check_min_balance(self.min_balance), check_probe_hashtag_id(self.probe_hashtag_id)
        except (TypeError, ValueError) as exc:
            raise AirflowFailException(str(exc)) from None

    def _max_age(self, hook: UnifAPIHook) -> float:
        if self.max_balance_age is not None:
            return float(self.max_balance_age)
        try:
            extras = hook.connection_extras()
        except UnifAPIError as exc:
            raise AirflowFailException(f"Connection {self.unifapi_conn_id!r} cannot be used: {exc}") from None
        return float(extras.get("balance_max_age", DEFAULT_MAX_BALANCE_AGE))

    # -- deferrable mode ---------------------------------------------------------------------------
    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        end_time = time.time() + self.timeout
        min_balance, probe_hashtag_id = self._soft_fail_aware(self._rendered)
        hook = UnifAPIHook(self.unifapi_conn_id)
        max_age = self._soft_fail_aware(lambda: self._max_age(hook))
        # One poke on the worker first: a balance that is already enough needs no triggerer round trip.
        result = self._soft_fail_aware(lambda: self._check(hook, min_balance, probe_hashtag_id, max_age))
        if result.is_done:
            self.log.info("Success criteria met. Exiting.")
            return result.xcom_value
        self.log.info(
            "Balance below %d credits; deferring to the triggerer, polling every %gs.",
            min_balance,
            self.poke_interval,
        )
        self.defer(
            trigger=UnifAPIBalanceTrigger(
                min_balance,
                unifapi_conn_id=self.unifapi_conn_id,
                poll_interval=self.poke_interval,
                end_time=end_time,
                probe_hashtag_id=probe_hashtag_id,
                max_balance_age=max_age,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout + self.poke_interval + _DEFERRAL_GRACE),
        )

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
