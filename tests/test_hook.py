"""UnifAPIHook: env-var connections, extras validation, clients, test_connection."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from airflow_provider_unifapi.exceptions import UnifAPIInputError
from airflow_provider_unifapi.hooks.unifapi import UnifAPIHook
from tests.conftest import API_KEY, assert_no_key, conn_uri_json


def test_reads_env_var_connection_in_json_form(unifapi_conn):
    hook = UnifAPIHook()
    client = hook.get_conn()
    assert client.base_url == unifapi_conn.url
    assert hook.get_conn() is client  # cached
    assert client.policy.backoff_base == 0.01 and client.timeout == 10.0
    page = client.get_video_page("5050", limit=3)
    assert len(page.data) == 3


def test_default_base_url_is_the_real_api(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_UNIFAPI_DEFAULT", json.dumps({"conn_type": "unifapi", "password": API_KEY})
    )
    assert UnifAPIHook().client_kwargs()["base_url"] == "https://api.unifapi.com"


def test_async_conn(unifapi_conn):
    async def go():
        client = await UnifAPIHook().get_async_conn()
        try:
            return await client.get_video_page("5050", limit=2)
        finally:
            await client.aclose()

    page = asyncio.run(go())
    assert len(page.data) == 2


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"timeout": "soon"}, "timeout"),
        ({"max_retries": 2.5}, "max_retries"),
        ({"max_retries": -1}, "max_retries"),
        ({"retry_billed_errors": "maybe"}, "retry_billed_errors"),
        ({"verify": False}, "verify"),
    ],
)
def test_bad_extras_give_clear_errors(monkeypatch, extra, field):
    monkeypatch.setenv(
        "AIRFLOW_CONN_UNIFAPI_DEFAULT",
        json.dumps(
            {"conn_type": "unifapi", "host": "http://127.0.0.1:1", "password": API_KEY, "extra": extra}
        ),
    )
    with pytest.raises(UnifAPIInputError) as caught:
        UnifAPIClientFromHook()
    assert field in str(caught.value)


def UnifAPIClientFromHook():
    return UnifAPIHook().get_conn()


def test_ui_strings_and_prefixed_extras_are_accepted(monkeypatch):
    extra = {"extra__unifapi__timeout": "12.5", "max_retries": "3", "retry_billed_errors": "true"}
    monkeypatch.setenv(
        "AIRFLOW_CONN_UNIFAPI_DEFAULT",
        json.dumps(
            {"conn_type": "unifapi", "host": "http://127.0.0.1:1", "password": API_KEY, "extra": extra}
        ),
    )
    client = UnifAPIHook().get_conn()
    assert client.timeout == 12.5
    assert client.policy.max_retries == 3 and client.policy.retry_billed_errors is True


def test_missing_key_is_a_clear_error(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_UNIFAPI_DEFAULT", json.dumps({"conn_type": "unifapi", "host": "http://127.0.0.1:1"})
    )
    with pytest.raises(UnifAPIInputError) as caught:
        UnifAPIHook().get_conn()
    assert "password" in str(caught.value) and "API key" in str(caught.value)


def test_test_connection_success_says_what_it_cost(unifapi_conn, caplog):
    with caplog.at_level(logging.DEBUG):
        ok, message = UnifAPIHook().test_connection()
    assert ok, message
    charged = unifapi_conn.credits_charged()
    assert charged == 1
    assert f"cost {charged} credit" in message and "balance" in message
    assert_no_key(message, caplog.text)


def test_test_connection_never_raises(sandbox, monkeypatch, caplog):
    sandbox.reset(api_keys=[API_KEY])
    monkeypatch.setenv(
        "AIRFLOW_CONN_UNIFAPI_DEFAULT", conn_uri_json(sandbox.url, key="sk_test_wrongwrongwrong")
    )
    ok, message = UnifAPIHook().test_connection()
    assert not ok and "unauthorized" in message
    monkeypatch.setenv("AIRFLOW_CONN_UNIFAPI_DEFAULT", conn_uri_json("http://127.0.0.1:1"))
    ok, message = UnifAPIHook().test_connection()
    assert not ok and "transport_error" in message
    monkeypatch.setenv("AIRFLOW_CONN_UNIFAPI_DEFAULT", conn_uri_json("http://example.com"))
    ok, message = UnifAPIHook().test_connection()
    assert not ok and "base_url" in message
    sandbox.reset(balance=0)
    monkeypatch.setenv("AIRFLOW_CONN_UNIFAPI_DEFAULT", conn_uri_json(sandbox.url))
    ok, message = UnifAPIHook().test_connection()
    assert ok and "cost 0 credits" in message
    assert_no_key(message, caplog.text)
