"""UnifAPIBalanceTrigger on its own: validation, exact serialization, and ``run()`` against the sandbox.

The trigger is run with ``asyncio`` directly, as the triggerer would; the sensor tests cover it
inside real deferred task runs.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_unifapi.triggers.balance import UnifAPIBalanceTrigger
from tests.conftest import API_KEY, Sandbox, assert_no_key, conn_uri_json
from tests.test_balance_sensor import WhenCalls, forget_remembered

CLASSPATH = "airflow_provider_unifapi.triggers.balance.UnifAPIBalanceTrigger"


@pytest.fixture(autouse=True)
def _no_remembered_balance() -> Iterator[None]:
    forget_remembered()
    yield
    forget_remembered()


def run_trigger(trigger: UnifAPIBalanceTrigger) -> dict[str, Any]:
    """Every event ``run()`` yields (there must be exactly one); returns its payload."""

    async def collect() -> list[Any]:
        return [event async for event in trigger.run()]

    events = asyncio.run(collect())
    assert len(events) == 1
    payload = events[0].payload
    json.dumps(payload)  # events are stored as JSON by the triggerer
    assert_no_key(payload)
    return payload


# -- construction and serialization ----------------------------------------------------------------
def test_serialize_round_trips_exactly(unifapi_conn):
    from airflow_provider_unifapi._compat import BaseTrigger

    trigger = UnifAPIBalanceTrigger(
        1_000,
        unifapi_conn_id="unifapi_default",
        poll_interval=30,
        end_time=1_900_000_000.5,
        probe_hashtag_id=5050,
        max_balance_age=120,
    )
    assert isinstance(trigger, BaseTrigger)
    classpath, kwargs = trigger.serialize()
    assert classpath == CLASSPATH
    assert kwargs == {
        "min_balance": 1_000,
        "unifapi_conn_id": "unifapi_default",
        "poll_interval": 30,
        "end_time": 1_900_000_000.5,
        "probe_hashtag_id": 5050,
        "max_balance_age": 120,
    }
    rebuilt = UnifAPIBalanceTrigger(**json.loads(json.dumps(kwargs)))
    assert rebuilt.serialize() == (classpath, kwargs)
    assert_no_key(kwargs, repr(trigger.__dict__))
    # Defaults round-trip too.
    plain = UnifAPIBalanceTrigger(5)
    assert UnifAPIBalanceTrigger(**plain.serialize()[1]).serialize() == plain.serialize()
    assert plain.serialize()[1]["end_time"] is None and plain.serialize()[1]["probe_hashtag_id"] is None


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"min_balance": "lots"}, "min_balance"),
        ({"min_balance": True}, "min_balance"),
        ({"min_balance": 1.5}, "min_balance"),
        ({"min_balance": -1}, "min_balance"),
        ({"poll_interval": 0}, "poll_interval"),
        ({"poll_interval": -3}, "poll_interval"),
        ({"poll_interval": float("nan")}, "poll_interval"),
        ({"poll_interval": "60"}, "poll_interval"),
        ({"end_time": "tomorrow"}, "end_time"),
        ({"end_time": float("inf")}, "end_time"),
        ({"probe_hashtag_id": "cats"}, "probe_hashtag_id"),
        ({"probe_hashtag_id": "50/../50"}, "probe_hashtag_id"),
        ({"max_balance_age": -1}, "max_balance_age"),
        ({"max_balance_age": None}, "max_balance_age"),
        ({"unifapi_conn_id": ""}, "unifapi_conn_id"),
        ({"unifapi_conn_id": None}, "unifapi_conn_id"),
    ],
)
def test_bad_arguments_end_in_an_error_event_naming_them(unifapi_conn, kwargs, argument):
    # The constructor only assigns (Airflow builds triggers from stored kwargs); run() checks them.
    trigger = UnifAPIBalanceTrigger(**{"min_balance": 100, "poll_interval": 0.01, **kwargs})
    payload = run_trigger(trigger)
    assert payload["status"] == "error"
    assert f"Invalid {argument}" in payload["message"]
    assert unifapi_conn.calls() == []


# -- run() against the sandbox ----------------------------------------------------------------------
def test_success_event(unifapi_conn):
    payload = run_trigger(UnifAPIBalanceTrigger(100, poll_interval=0.05, end_time=time.time() + 30))
    assert payload["status"] == "success"
    assert payload["balance"] == 999_999 and payload["source"] == "live"
    assert payload["credits_spent"] == 1 and payload["polls"] == 1
    assert "this poke cost 1 credit" in payload["message"]
    assert [(c["endpoint"], c["limit"], c["max_credits"]) for c in unifapi_conn.calls()] == [("search", 1, 1)]


def test_probe_hashtag_id_reads_the_hashtag_endpoint(unifapi_conn):
    payload = run_trigger(
        UnifAPIBalanceTrigger(100, poll_interval=0.05, probe_hashtag_id="4242", end_time=time.time() + 10)
    )
    assert payload["status"] == "success" and payload["credits_spent"] == 1
    assert [(c["endpoint"], c["hashtag_id"], c["credits_charged"]) for c in unifapi_conn.calls()] == [
        ("hashtag", "4242", 1)
    ]


def test_waits_for_a_top_up_paying_one_credit_per_poll(unifapi_conn):
    unifapi_conn.set_balance(10)
    with WhenCalls(unifapi_conn, 3, lambda: Sandbox(unifapi_conn.url).set_balance(5_000)):
        payload = run_trigger(UnifAPIBalanceTrigger(1_000, poll_interval=0.05, end_time=time.time() + 60))
    calls = unifapi_conn.calls()
    assert payload["status"] == "success" and payload["balance"] == calls[-1]["balance_after"] >= 1_000
    assert payload["polls"] == payload["credits_spent"] == len(calls) >= 4
    assert all(c["credits_charged"] == 1 for c in calls)


def test_402_costs_nothing_and_keeps_waiting(unifapi_conn):
    unifapi_conn.set_balance(0)
    with WhenCalls(unifapi_conn, 3, lambda: Sandbox(unifapi_conn.url).set_balance(500)):
        payload = run_trigger(UnifAPIBalanceTrigger(100, poll_interval=0.05, end_time=time.time() + 60))
    calls = unifapi_conn.calls()
    assert [c["status"] for c in calls[:-1]] == [402] * (len(calls) - 1) and len(calls) >= 4
    assert payload["status"] == "success" and payload["credits_spent"] == 1 == unifapi_conn.credits_charged()
    assert payload["balance"] == 499


def test_timeout_event(unifapi_conn):
    unifapi_conn.set_balance(10)
    payload = run_trigger(UnifAPIBalanceTrigger(1_000, poll_interval=0.05, end_time=time.time() + 0.5))
    calls = unifapi_conn.calls()
    assert payload["status"] == "timeout"
    assert "Timed out" in payload["message"] and "1000 credits" in payload["message"]
    assert payload["balance"] == calls[-1]["balance_after"] < 1_000
    assert payload["polls"] == payload["credits_spent"] == len(calls) >= 2


def test_timeout_event_at_balance_zero_cost_nothing(unifapi_conn):
    unifapi_conn.set_balance(0)
    payload = run_trigger(UnifAPIBalanceTrigger(100, poll_interval=0.05, end_time=time.time() + 0.3))
    assert payload["status"] == "timeout" and payload["balance"] == 0 and payload["credits_spent"] == 0
    assert {c["status"] for c in unifapi_conn.calls()} == {402}
    assert unifapi_conn.credits_charged() == 0


def test_an_end_time_already_past_still_reads_once(unifapi_conn):
    unifapi_conn.set_balance(10)
    payload = run_trigger(UnifAPIBalanceTrigger(1_000, poll_interval=60, end_time=time.time() - 1))
    assert payload["status"] == "timeout" and payload["polls"] == 1
    assert len(unifapi_conn.calls()) == 1


def test_error_event_for_an_invalid_key(sandbox, monkeypatch):
    sandbox.reset(api_keys=[API_KEY], balance=1_000)
    wrong = "sk_wrong_" + "1" * 32
    monkeypatch.setenv("AIRFLOW_CONN_UNIFAPI_DEFAULT", conn_uri_json(sandbox.url, key=wrong))
    payload = run_trigger(UnifAPIBalanceTrigger(100, poll_interval=0.05, end_time=time.time() + 60))
    assert payload["status"] == "error"
    assert "refused the API key of connection 'unifapi_default'" in payload["message"]
    assert payload["error"]["error_type"] == "unauthorized" and payload["error"]["status"] == 401
    assert [(c["status"], c["credits_charged"]) for c in sandbox.calls()] == [
        (401, 0)
    ]  # no waiting, no retry
    assert wrong not in json.dumps(payload) and wrong[8:] not in json.dumps(payload)


def test_error_event_for_a_connection_without_a_key(sandbox, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_UNIFAPI_NOKEY",
        json.dumps({"conn_type": "unifapi", "host": sandbox.url, "password": ""}),
    )
    payload = run_trigger(
        UnifAPIBalanceTrigger(
            100, unifapi_conn_id="unifapi_nokey", poll_interval=0.05, end_time=time.time() + 10
        )
    )
    assert payload["status"] == "error" and "password" in payload["message"]
    assert sandbox.calls() == []


def test_error_event_for_a_probe_hashtag_that_does_not_exist(unifapi_conn):
    unifapi_conn.reset(balance=1_000, not_found_ids=["999"])
    payload = run_trigger(
        UnifAPIBalanceTrigger(100, poll_interval=0.05, probe_hashtag_id="999", end_time=time.time() + 10)
    )
    assert payload["status"] == "error" and payload["error"]["error_type"] == "not_found"
    assert "pick another probe_hashtag_id" in payload["message"]


def test_run_never_blocks_the_event_loop(unifapi_conn, monkeypatch):
    """No blocking sleep on the loop's thread, and other coroutines run while the trigger waits."""
    loop_thread = threading.get_ident()
    real_sleep = time.sleep

    def guarded_sleep(seconds: float) -> None:
        assert threading.get_ident() != loop_thread, "time.sleep() on the event loop's thread"
        real_sleep(seconds)

    monkeypatch.setattr(time, "sleep", guarded_sleep)
    unifapi_conn.set_balance(10)
    ticks = 0

    async def ticker(done: asyncio.Event) -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0.01)

    async def main() -> tuple[dict[str, Any], int]:
        done = asyncio.Event()
        ticking = asyncio.create_task(ticker(done))
        events = [
            e async for e in UnifAPIBalanceTrigger(1_000, poll_interval=0.1, end_time=time.time() + 0.5).run()
        ]
        polls_seen_by = ticks
        done.set()
        await ticking
        return events[0].payload, polls_seen_by

    payload, ticks_during = asyncio.run(main())
    assert payload["status"] == "timeout"
    # The ticker ran between the polls: many more ticks than polls.
    assert ticks_during > 2 * payload["polls"]
