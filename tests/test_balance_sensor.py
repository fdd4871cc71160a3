"""UnifAPIBalanceSensor through real task runs (``dag.test()``) against the sandbox.

Every test reads the sandbox's call ledger, so "free", "one probe per poke" and "402 costs nothing"
are checked on what the API was actually asked and charged, not on what the sensor says.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from airflow_provider_unifapi.hooks.balance_reading import variable_name
from tests.conftest import API_KEY, Sandbox, assert_no_key, conn_uri_json

CONN_ID = "unifapi_default"
MODES = {
    "poke": 'mode="poke"',
    "reschedule": 'mode="reschedule"',
    "deferrable": "deferrable=True",
}


# -- helpers shared with test_balance_trigger.py ----------------------------------------------------
def set_remembered(balance: int, age_seconds: float, key: str = API_KEY) -> None:
    """Write the remembered reading as the operator would (through the metadata DB: no task context here)."""
    from airflow.models import Variable

    seen_at = datetime.now(timezone.utc) - timedelta(seconds=age_seconds)
    Variable.set(
        variable_name(key),
        json.dumps({"balance": balance, "seen_at": seen_at.isoformat(), "request_id": "unif_remembered"}),
    )


def get_remembered(key: str = API_KEY) -> dict[str, Any] | None:
    from airflow.models import Variable

    raw = Variable.get(variable_name(key), default_var=None)
    return json.loads(raw) if raw else None


def forget_remembered(key: str = API_KEY) -> None:
    from airflow.models import Variable

    Variable.delete(variable_name(key))


class WhenCalls:
    """Run ``action`` from a background thread once the sandbox ledger holds ``calls`` calls.

    Keyed on the ledger, not on a clock, so the sensor has provably waited (poked ``calls`` times
    and found the balance short) before the action, however slow the DAG run is to start. With
    ``again`` (seconds), the action is repeated at that pace until the block ends.
    """

    def __init__(
        self, sandbox: Sandbox, calls: int, action: Callable[[], Any], again: float | None = None
    ) -> None:
        self.sandbox, self.calls, self.action, self.again = sandbox, calls, action, again
        self.fired = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        watcher = Sandbox(self.sandbox.url)  # its own HTTP client: never share one across threads
        try:
            while not self._stop.wait(0.05):
                if len(watcher.calls()) >= self.calls:
                    break
            else:
                return
            while True:
                self.action()
                self.fired.set()
                if self.again is None or self._stop.wait(self.again):
                    return
        finally:
            watcher.admin.close()

    def __enter__(self) -> WhenCalls:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def top_up_after(sandbox: Sandbox, calls: int, balance: int) -> WhenCalls:
    return WhenCalls(sandbox, calls, lambda: Sandbox(sandbox.url).set_balance(balance))


def paid_pokes_logged(log_text: str) -> int:
    """Pokes whose log line says they cost 1 credit, by request id (log handlers may repeat lines)."""
    return len(
        set(
            re.findall(
                r"Live balance reading \([^)]*request_id (\S+)\): [^;]*; this poke cost 1 credit\.", log_text
            )
        )
    )


def waits_logged(log_text: str) -> int:
    """Pokes whose log line says a transient error kept the sensor waiting (errors carry request ids)."""
    return len(set(re.findall(r"Live balance reading \([^)]*\) failed: (.*?); this poke cost", log_text)))


@pytest.fixture(autouse=True)
def _no_remembered_balance() -> Iterator[None]:
    # The Variable outlives a test in the session's metadata DB; a leftover fresh reading would
    # make the next test free and its ledger counts meaningless.
    forget_remembered()
    yield
    forget_remembered()


def run_sensor(dag_runner: Any, capsys: Any, caplog: Any, dag_id: str, args: str) -> Any:
    path = dag_runner.write(dag_id, f"UnifAPIBalanceSensor(task_id='wait', {args})")
    result = dag_runner.run(path, capsys=capsys, caplog=caplog)
    assert_no_key(result.log_text, result.xcoms)
    return result


# -- succeed / wait / top-up ------------------------------------------------------------------------
@pytest.mark.parametrize("mode", list(MODES))
def test_succeeds_at_once_when_the_balance_is_enough(unifapi_conn, dag_runner, capsys, caplog, mode):
    result = run_sensor(
        dag_runner,
        capsys,
        caplog,
        f"bal_enough_{mode}",
        f"min_balance=100, poke_interval=0.2, timeout=30, {MODES[mode]}",
    )
    assert result.ti_state("wait") == "success"
    calls = unifapi_conn.calls()
    assert [(c["endpoint"], c["status"], c["credits_charged"], c["limit"]) for c in calls] == [
        ("search", 200, 1, 1)
    ]
    assert result.xcoms["wait"]["balance"] == unifapi_conn.balance() == 999_999
    assert result.xcoms["wait"]["source"] == "live"
    assert paid_pokes_logged(result.log_text) == 1
    # The live reading is remembered for the next poke and other sensors.
    assert get_remembered()["balance"] == 999_999


@pytest.mark.parametrize("mode", list(MODES))
def test_waits_then_succeeds_after_a_top_up(unifapi_conn, dag_runner, capsys, caplog, mode):
    unifapi_conn.set_balance(10)
    with top_up_after(unifapi_conn, calls=2, balance=5_000) as top_up:
        result = run_sensor(
            dag_runner,
            capsys,
            caplog,
            f"bal_topup_{mode}",
            f"min_balance=1000, poke_interval=0.2, timeout=60, {MODES[mode]}",
        )
    assert top_up.fired.is_set()
    assert result.ti_state("wait") == "success"
    calls = unifapi_conn.calls()
    assert len(calls) >= 3  # two short readings before the top-up, one after
    assert all(c["endpoint"] == "search" and c["status"] == 200 and c["credits_charged"] == 1 for c in calls)
    assert calls[0]["balance_after"] < 1000 and calls[-1]["balance_after"] >= 1000
    assert result.xcoms["wait"]["balance"] == calls[-1]["balance_after"]
    # One paid probe per poke, and the log says what each poke cost.
    assert paid_pokes_logged(result.log_text) == len(calls)


def test_a_402_reading_costs_nothing_and_the_sensor_keeps_waiting(unifapi_conn, dag_runner, capsys, caplog):
    unifapi_conn.set_balance(0)
    with top_up_after(unifapi_conn, calls=3, balance=500):
        result = run_sensor(
            dag_runner, capsys, caplog, "bal_402", "min_balance=100, poke_interval=0.2, timeout=60"
        )
    assert result.ti_state("wait") == "success"
    calls = unifapi_conn.calls()
    refused, paid = calls[:-1], calls[-1]
    assert len(refused) >= 3
    assert all(c["status"] == 402 and c["credits_charged"] == 0 for c in refused)
    assert (paid["status"], paid["credits_charged"]) == (200, 1)
    assert unifapi_conn.credits_charged() == 1
    assert "balance 0 < min_balance 100; this poke cost 0 credits" in result.log_text
    assert result.xcoms["wait"]["balance"] == 499


# -- the remembered balance -------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["poke", "deferrable"])
def test_a_fresh_remembered_balance_costs_no_credit(unifapi_conn, dag_runner, capsys, caplog, mode):
    set_remembered(5_000, age_seconds=30)
    result = run_sensor(
        dag_runner, capsys, caplog, f"bal_fresh_{mode}", f"min_balance=100, timeout=30, {MODES[mode]}"
    )
    assert result.ti_state("wait") == "success"
    assert unifapi_conn.calls() == []
    assert unifapi_conn.credits_charged() == 0
    assert result.xcoms["wait"]["source"] == "remembered"
    assert result.xcoms["wait"]["balance"] == 5_000
    assert "this poke cost 0 credits" in result.log_text


def test_a_reading_remembered_with_another_key_is_not_used(unifapi_conn, dag_runner, capsys, caplog):
    # The connection's key changed (another workspace): the old key's reading must not answer.
    old_key = "sk_test_" + "0" * 32
    set_remembered(5_000, age_seconds=30, key=old_key)
    try:
        result = run_sensor(dag_runner, capsys, caplog, "bal_other_key", "min_balance=100, timeout=30")
    finally:
        forget_remembered(old_key)
    assert result.ti_state("wait") == "success"
    assert result.xcoms["wait"]["source"] == "live" and result.xcoms["wait"]["balance"] == 999_999
    assert unifapi_conn.credits_charged() == 1


@pytest.mark.parametrize(
    ("args", "endpoint"),
    [
        ("", "search"),
        ("probe_hashtag_id='5050'", "hashtag"),
        ('probe_hashtag_id=\'{{ "50" ~ "50" }}\'', "hashtag"),
    ],
    ids=["search", "hashtag", "hashtag-templated"],
)
def test_a_stale_remembered_balance_costs_one_probe(unifapi_conn, dag_runner, capsys, caplog, args, endpoint):
    set_remembered(5_000, age_seconds=3_600)  # older than the default 300 s
    result = run_sensor(
        dag_runner,
        capsys,
        caplog,
        f"bal_stale_{endpoint}_{len(args)}",
        f"min_balance=100, timeout=30, {args}",
    )
    assert result.ti_state("wait") == "success"
    calls = unifapi_conn.calls()
    assert [(c["endpoint"], c["credits_charged"]) for c in calls] == [(endpoint, 1)]
    if endpoint == "hashtag":
        assert calls[0]["hashtag_id"] == "5050"
    assert result.xcoms["wait"]["source"] == "live"
    assert get_remembered()["balance"] == 999_999  # the stale reading was replaced


def test_a_fresh_but_low_remembered_balance_is_read_live(unifapi_conn, dag_runner, capsys, caplog):
    # A top-up leaves no trace in a remembered reading, so a low one never answers.
    set_remembered(10, age_seconds=1)
    result = run_sensor(dag_runner, capsys, caplog, "bal_fresh_low", "min_balance=100, timeout=30")
    assert result.ti_state("wait") == "success"
    assert len(unifapi_conn.calls("search")) == 1


def test_one_paid_probe_per_poke_while_waiting(unifapi_conn, dag_runner, capsys, caplog):
    set_remembered(5_000, age_seconds=3_600)
    unifapi_conn.set_balance(50)
    result = run_sensor(
        dag_runner, capsys, caplog, "bal_per_poke", "min_balance=1000, poke_interval=0.2, timeout=1"
    )
    assert result.ti_state("wait") == "failed"  # timed out
    calls = unifapi_conn.calls()
    assert len(calls) >= 3
    assert all(c["endpoint"] == "search" and c["credits_charged"] == 1 for c in calls)
    assert paid_pokes_logged(result.log_text) == len(calls) == unifapi_conn.credits_charged()


def test_max_balance_age_comes_from_the_connection_extra(sandbox, monkeypatch, dag_runner, capsys, caplog):
    monkeypatch.setenv("AIRFLOW_CONN_UNIFAPI_DEFAULT", conn_uri_json(sandbox.url, balance_max_age=10))
    set_remembered(5_000, age_seconds=60)  # fresh for the default 300 s, stale for this connection
    result = run_sensor(dag_runner, capsys, caplog, "bal_conn_age", "min_balance=100, timeout=30")
    assert result.ti_state("wait") == "success"
    assert len(sandbox.calls("search")) == 1
    # ...and the argument wins over the connection.
    set_remembered(5_000, age_seconds=60)
    result = run_sensor(
        dag_runner, capsys, caplog, "bal_arg_age", "min_balance=100, timeout=30, max_balance_age=120"
    )
    assert result.ti_state("wait") == "success"
    assert len(sandbox.calls("search")) == 1
    assert result.xcoms["wait"]["source"] == "remembered"


def test_the_trigger_answers_from_a_reading_another_task_remembered(unifapi_conn, dag_runner, capsys, caplog):
    unifapi_conn.set_balance(10)

    def another_task_remembers() -> None:
        # While the sensor is deferred, "another DAG's operator" sees a high balance and remembers
        # it, stamped a little ahead (as by a worker whose clock runs fast) so that the probes' own
        # readings, being older, do not replace it. Checked again in case a probe remembered at the
        # same instant won anyway; written rarely, as SQLite is shared with the running task.
        current = get_remembered()
        if current is None or current["balance"] != 9_000:
            set_remembered(9_000, age_seconds=-5)

    with WhenCalls(unifapi_conn, 2, another_task_remembers, again=0.5):
        result = run_sensor(
            dag_runner,
            capsys,
            caplog,
            "bal_trigger_remembered",
            "min_balance=1000, poke_interval=0.2, timeout=60, deferrable=True",
        )
    assert result.ti_state("wait") == "success"
    assert result.xcoms["wait"] == {**result.xcoms["wait"], "balance": 9_000, "source": "remembered"}
    assert unifapi_conn.balance() == 10 - len(unifapi_conn.calls())  # only the probes before were paid


# -- timeout, soft_fail, errors ---------------------------------------------------------------------
@pytest.mark.parametrize("mode", list(MODES))
def test_times_out(unifapi_conn, dag_runner, capsys, caplog, mode):
    unifapi_conn.set_balance(10)
    result = run_sensor(
        dag_runner,
        capsys,
        caplog,
        f"bal_timeout_{mode}",
        f"min_balance=1000, poke_interval=0.2, timeout=0.6, {MODES[mode]}",
    )
    assert result.ti_state("wait") == "failed"
    assert result.state == "failed"
    assert len(unifapi_conn.calls()) >= 2
    assert re.search(r"AirflowSensorTimeout|[Tt]imed out", result.log_text)


@pytest.mark.parametrize("mode", ["poke", "deferrable"])
def test_soft_fail_skips_on_timeout(unifapi_conn, dag_runner, capsys, caplog, mode):
    unifapi_conn.set_balance(10)
    result = run_sensor(
        dag_runner,
        capsys,
        caplog,
        f"bal_soft_{mode}",
        f"min_balance=1000, poke_interval=0.2, timeout=0.6, soft_fail=True, {MODES[mode]}",
    )
    assert result.ti_state("wait") == "skipped"


@pytest.mark.parametrize("mode", list(MODES))
def test_an_invalid_key_fails_fast(sandbox, monkeypatch, dag_runner, capsys, caplog, mode):
    sandbox.reset(api_keys=[API_KEY], balance=1_000_000)
    wrong = "sk_wrong_" + "0" * 32
    monkeypatch.setenv("AIRFLOW_CONN_UNIFAPI_DEFAULT", conn_uri_json(sandbox.url, key=wrong))
    result = run_sensor(
        dag_runner,
        capsys,
        caplog,
        f"bal_401_{mode}",
        f"min_balance=100, poke_interval=0.2, timeout=15, {MODES[mode]}",
    )
    assert result.ti_state("wait") == "failed"
    # One refused call, not a poke every 0.2 s until the timeout.
    assert [(c["status"], c["credits_charged"]) for c in sandbox.calls()] == [(401, 0)]
    assert "refused the API key of connection 'unifapi_default'" in result.log_text
    assert wrong not in result.log_text and wrong[8:] not in result.log_text


def test_a_key_revoked_while_deferred_fails_through_the_trigger(unifapi_conn, dag_runner, capsys, caplog):
    unifapi_conn.set_balance(10)
    revoke = WhenCalls(
        unifapi_conn, 2, lambda: Sandbox(unifapi_conn.url).reset(balance=10, api_keys=["sk_other_key"])
    )
    with revoke:
        result = run_sensor(
            dag_runner,
            capsys,
            caplog,
            "bal_401_trigger",
            "min_balance=1000, poke_interval=0.2, timeout=15, deferrable=True",
        )
    assert result.ti_state("wait") == "failed"
    assert [c["status"] for c in unifapi_conn.calls()] == [401]  # the reset cleared the ledger; one refusal
    assert "refused the API key of connection 'unifapi_default'" in result.log_text


def test_a_probe_hashtag_that_does_not_exist_fails_fast(unifapi_conn, dag_runner, capsys, caplog):
    unifapi_conn.reset(balance=1_000, not_found_ids=["999"])
    result = run_sensor(
        dag_runner,
        capsys,
        caplog,
        "bal_404",
        "min_balance=100, probe_hashtag_id='999', poke_interval=0.2, timeout=15",
    )
    assert result.ti_state("wait") == "failed"
    assert [c["status"] for c in unifapi_conn.calls()] == [404]
    assert "pick another probe_hashtag_id" in result.log_text


def test_transient_errors_keep_the_sensor_waiting(sandbox, monkeypatch, dag_runner, capsys, caplog):
    # Two pokes each fail after the client's own retry (max_retries=1); the third reads the balance.
    monkeypatch.setenv("AIRFLOW_CONN_UNIFAPI_DEFAULT", conn_uri_json(sandbox.url, max_retries=1))
    sandbox.faults({"kind": "error", "status": 503, "times": 4})
    result = run_sensor(
        dag_runner, capsys, caplog, "bal_503", "min_balance=100, poke_interval=0.2, timeout=60"
    )
    assert result.ti_state("wait") == "success"
    assert [c["status"] for c in sandbox.calls()] == [503, 503, 503, 503, 200]
    assert sandbox.credits_charged() == 1
    assert waits_logged(result.log_text) == 2


# -- construction -----------------------------------------------------------------------------------
def test_constructor_only_assigns():
    from airflow_provider_unifapi.sensors.balance import UnifAPIBalanceSensor

    # Values are stored as given and checked after rendering, when the task runs: a template, an
    # XComArg or even a bad value must not fail the DAG file's parse.
    sensor = UnifAPIBalanceSensor(task_id="f", min_balance="{{ params.credits }}", probe_hashtag_id="../x")
    assert sensor.min_balance == "{{ params.credits }}" and sensor.probe_hashtag_id == "../x"
    assert "min_balance" in sensor.template_fields and "probe_hashtag_id" in sensor.template_fields


@pytest.mark.parametrize(
    ("args", "argument"),
    [
        ("min_balance='lots'", "min_balance"),
        ("min_balance=-1", "min_balance"),
        ("min_balance=1, probe_hashtag_id='../videos'", "probe_hashtag_id"),
        ("min_balance=1, max_balance_age=-5", "max_balance_age"),
        ("min_balance=1, deferrable=True, poke_interval=0", "poke_interval"),
    ],
)
def test_bad_arguments_fail_the_task_before_any_call(
    unifapi_conn, dag_runner, capsys, caplog, args, argument
):
    result = run_sensor(dag_runner, capsys, caplog, f"bal_bad_{argument}", f"{args}, timeout=15")
    assert result.ti_state("wait") == "failed"
    assert f"Invalid {argument}: must be" in result.log_text
    assert unifapi_conn.calls() == []


def test_min_balance_from_an_upstream_task(unifapi_conn, dag_runner, capsys, caplog):
    unifapi_conn.set_balance(1_001)
    path = dag_runner.write(
        "bal_xcomarg",
        """
        @task
        def budget():
            return 1000

        UnifAPIBalanceSensor(task_id="wait", min_balance=budget(), timeout=30)
        """,
    )
    result = dag_runner.run(path, capsys=capsys, caplog=caplog)
    assert result.ti_state("wait") == "success", result.log_text[-3000:]
    assert "balance 1000 >= min_balance 1000" in result.log_text


def test_deferrable_defaults_to_the_airflow_setting(monkeypatch):
    from airflow_provider_unifapi.sensors.balance import UnifAPIBalanceSensor

    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "True")
    assert UnifAPIBalanceSensor(task_id="a", min_balance=1).deferrable is True
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "False")
    assert UnifAPIBalanceSensor(task_id="b", min_balance=1).deferrable is False


def test_templated_min_balance_is_rendered(unifapi_conn, dag_runner, capsys, caplog):
    unifapi_conn.set_balance(1_001)  # 1000 after the probe: exactly the rendered threshold
    result = run_sensor(
        dag_runner, capsys, caplog, "bal_templated", "min_balance='{{ 2 * 500 }}', timeout=30"
    )
    assert result.ti_state("wait") == "success"
    assert "balance 1000 >= min_balance 1000" in result.log_text


def test_a_template_that_renders_to_no_number_fails_fast(unifapi_conn, dag_runner, capsys, caplog):
    result = run_sensor(
        dag_runner, capsys, caplog, "bal_bad_template", "min_balance='{{ \"lots\" }}', timeout=15"
    )
    assert result.ti_state("wait") == "failed"
    assert unifapi_conn.calls() == []
    assert "Invalid min_balance: must be an integer number of credits" in result.log_text


# -- the fan-out example DAG ------------------------------------------------------------------------
def test_the_fan_out_example_runs_behind_the_sensor(
    unifapi_conn, dag_runner, monkeypatch, tmp_path, capsys, caplog
):
    import shutil
    from pathlib import Path

    monkeypatch.setenv("UNIFAPI_HASHTAG_IDS", "5050,4242")
    monkeypatch.setenv("UNIFAPI_MAX_CREDITS_PER_HASHTAG", "60")
    monkeypatch.setenv("UNIFAPI_OUTPUT_BASE", tmp_path.as_uri())
    example = Path(__file__).resolve().parents[1] / "example_dags" / "example_unifapi_fan_out.py"
    path = shutil.copy(example, dag_runner.folder / "example_unifapi_fan_out.py")
    result = dag_runner.run(Path(path), capsys=capsys, caplog=caplog)
    assert_no_key(result.log_text)
    assert result.state == "success"
    assert result.xcoms["report"] == {
        "hashtags": 2,
        "records": result.xcoms["report"]["records"],
        "credits_charged": unifapi_conn.credits_charged() - 1,  # minus the sensor's reading
    }
    assert 0 < result.xcoms["report"]["credits_charged"] <= 2 * 60
    for hashtag_id in ("5050", "4242"):
        assert (tmp_path / f"hashtag={hashtag_id}" / "ds=2024-01-01" / "_manifest.json").exists()


def test_the_fan_out_example_parses_with_its_settings():
    import importlib.util
    from pathlib import Path

    example = Path(__file__).resolve().parents[1] / "example_dags" / "example_unifapi_fan_out.py"
    spec = importlib.util.spec_from_file_location("example_unifapi_fan_out_parse", example)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dag = module.dag
    sensor, collect = dag.get_task("wait_for_credits"), dag.get_task("collect")
    assert sensor.min_balance == len(module.HASHTAG_IDS) * module.MAX_CREDITS_PER_HASHTAG
    assert sensor.deferrable is True
    assert collect.partial_kwargs["pool"] == "unifapi"
    assert collect.partial_kwargs["max_credits"] == module.MAX_CREDITS_PER_HASHTAG
    assert "collect" in sensor.downstream_task_ids
