"""One table of connection extras (``ClientConfig``) and everything that must agree with it: the two
clients' signatures, the connection form, the README; and parsing a connection's extras."""

from __future__ import annotations

import inspect
import logging
import re
from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest

from airflow_provider_unifapi.client import AsyncUnifAPIClient, ClientConfig, UnifAPIClient
from airflow_provider_unifapi.client.config import EXTRA_FIELDS, ExtraKind
from airflow_provider_unifapi.exceptions import UnifAPIInputError
from airflow_provider_unifapi.get_provider_info import field_help, get_provider_info

README = Path(__file__).resolve().parent.parent / "README.md"
WHERE = "connection 'unifapi_default'"
NOT_EXTRAS = {"api_key", "base_url", "user_agent", "transport"}


def client_fields() -> list[tuple[str, object]]:
    return [(spec.name, spec.default) for spec in EXTRA_FIELDS if spec.client_keyword]


@pytest.mark.parametrize("cls", [UnifAPIClient, AsyncUnifAPIClient])
def test_client_keywords_and_defaults_are_the_tables(cls):
    parameters = inspect.signature(cls.__init__).parameters.values()
    declared = [
        (p.name, p.default)
        for p in parameters
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in NOT_EXTRAS
    ]
    assert declared == client_fields()
    assert not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def test_the_two_clients_take_the_same_arguments():
    sync_parameters = list(inspect.signature(UnifAPIClient.__init__).parameters)
    assert sync_parameters == list(inspect.signature(AsyncUnifAPIClient.__init__).parameters)


def test_balance_max_age_is_in_the_table_but_not_a_client_keyword():
    spec = {s.name: s for s in EXTRA_FIELDS}["balance_max_age"]
    assert not spec.client_keyword and spec.default == 300
    assert "balance_max_age" not in ClientConfig().client_kwargs()


def test_connection_form_fields_are_the_tables():
    conn_fields = get_provider_info()["connection-types"][0]["conn-fields"]
    assert list(conn_fields) == [spec.name for spec in EXTRA_FIELDS]
    json_types = {"integer": "integer", "number": "number", "boolean": "boolean", "CA-bundle path": "string"}
    for spec in EXTRA_FIELDS:
        field = conn_fields[spec.name]
        # the help text, then the range and default (Airflow 3's form does not show the schema's)
        assert field["label"] == spec.label and field["description"] == field_help(spec)
        assert field["description"].startswith(spec.help) and spec.default_text() in field["description"]
        schema = field["schema"]
        assert schema["type"] == [json_types[spec.kind.value], "null"]
        assert schema.get("minimum") == spec.minimum and schema.get("maximum") == spec.maximum
        assert "default" not in schema  # a saved form then stores only what the user set


def readme_rows() -> dict[str, str]:
    text = README.read_text()
    section = text[text.index("\n## Connection\n") :]
    section = section[: section.index("\n## ", 1)]
    return dict(re.findall(r"^\| Extra `(\w+)` \| (.*) \|$", section, flags=re.M))


def test_readme_connection_table_is_the_tables():
    rows = readme_rows()
    assert list(rows) == [spec.name for spec in EXTRA_FIELDS]
    for spec in EXTRA_FIELDS:
        row = rows[spec.name]
        stated = re.search(r"\(default ([^)]+)\)", row)
        assert stated is not None, f"README row of {spec.name} states no default"
        assert stated.group(1) == spec.default_text(), spec.name
        assert spec.range_text() in row, spec.name


def test_defaults_and_normalisation():
    config = ClientConfig(timeout=12, max_retries=3)
    assert config.timeout == 12.0 and isinstance(config.timeout, float)
    assert config.max_retries == 3 and config.verify is True
    with pytest.raises(FrozenInstanceError):
        config.timeout = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("timeout", 0),
        ("timeout", float("nan")),
        ("timeout", "30"),
        ("max_retries", 2.5),
        ("max_retries", 101),
        ("max_retries", True),
        ("max_response_bytes", 1023),
        ("max_connections", 0),
        ("retry_billed_errors", "yes"),
        ("verify", False),
        ("verify", "/no/such/ca.pem"),
    ],
)
def test_out_of_range_or_mistyped_keywords_are_refused_naming_them(name, value):
    with pytest.raises(UnifAPIInputError) as caught:
        ClientConfig(**{name: value})
    assert caught.value.argument == name and name in str(caught.value)


def test_from_extras_reads_ui_strings_prefixes_and_empty_fields():
    extras = {
        "extra__unifapi__timeout": "12.5",
        "max_retries": "3",
        "retry_billed_errors": "true",
        "max_response_bytes": 2048.0,
        "verify": "True",
        "max_connections": "",
        "backoff_base": None,
        "balance_max_age": "10",
    }
    config = ClientConfig.from_extras(extras, where=WHERE)
    assert config == ClientConfig(
        timeout=12.5,
        max_retries=3,
        retry_billed_errors=True,
        max_response_bytes=2048,
        balance_max_age=10.0,
    )
    assert config.max_connections == 10 and config.backoff_base == 0.5  # empty means the default


def test_from_extras_warns_about_unknown_keys(caplog):
    with caplog.at_level(logging.WARNING):
        config = ClientConfig.from_extras({"timout": 5, "max_retries": 1}, where=WHERE)
    assert config.max_retries == 1 and config.timeout == 30.0
    assert "timout" in caplog.text and WHERE in caplog.text


@pytest.mark.parametrize(
    ("extras", "name", "fix"),
    [
        ({"timeout": "soon"}, "timeout", "a number >= 0.001"),
        ({"max_retries": 2.5}, "max_retries", "an integer from 0 to 100"),
        ({"max_retries": "-1"}, "max_retries", "an integer from 0 to 100"),
        ({"retry_billed_errors": "maybe"}, "retry_billed_errors", "true or false"),
        ({"verify": " FALSE "}, "verify", "CA bundle path"),
        ({"verify": "0"}, "verify", "existing CA bundle file"),
        ({"max_connections": True}, "max_connections", "an integer from 1 to 1000"),
    ],
)
def test_from_extras_errors_name_the_connection_extra_and_the_fix(extras, name, fix):
    with pytest.raises(UnifAPIInputError) as caught:
        ClientConfig.from_extras(extras, where=WHERE)
    message = str(caught.value)
    assert f"{WHERE} extra {name!r}" in message and fix in message


def test_from_extras_refuses_a_non_object():
    with pytest.raises(UnifAPIInputError) as caught:
        ClientConfig.from_extras(["timeout"], where=WHERE)  # type: ignore[arg-type]
    assert "JSON object" in str(caught.value)


def test_client_kwargs_build_a_client(tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_text("not read until a TLS connection is made")
    config = ClientConfig.from_extras({"timeout": "7", "verify": str(bundle)}, where=WHERE)
    with UnifAPIClient("k" * 20, "http://127.0.0.1:9", **config.client_kwargs()) as client:
        assert client.timeout == 7.0 and client.config == config


def test_the_form_module_stays_free_of_httpx_and_pydantic():
    import subprocess
    import sys

    code = (
        "import sys, airflow_provider_unifapi.get_provider_info as m; m.get_provider_info(); "
        "print(sorted({k.split('.')[0] for k in sys.modules} & {'airflow', 'httpx', 'pydantic', 'tenacity'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert {spec.kind for spec in EXTRA_FIELDS} == set(ExtraKind)
