"""Provider metadata read by Airflow's ProvidersManager on every ``airflow`` command: standard library
only. The form declared here (Airflow 3.2+) is mirrored by ``UnifAPIHook`` classmethods for older
Airflow versions; ``tests/test_provider_info.py`` proves the two agree."""

from __future__ import annotations

from typing import Any

from airflow_provider_unifapi import __version__
from airflow_provider_unifapi.client.config import EXTRA_FIELDS, ExtraField


def field_help(spec: ExtraField) -> str:
    """The form's help text of an extra, with its range and default."""
    return f"{spec.help} Accepts {spec.range_text()}; default {spec.default_text()}."


#: The extras' JSON schemas. The help text states the range and default, which Airflow 3's form hides.
CONN_FIELDS: dict[str, dict[str, Any]] = {
    spec.name: {**spec.conn_field(), "description": field_help(spec)} for spec in EXTRA_FIELDS
}

#: Port stays visible: Airflow 3.3's Test button needs it (docs/connection.md, "Testing the connection").
HIDDEN_FIELDS: list[str] = ["schema", "login", "extra"]
RELABELING: dict[str, str] = {"host": "Base URL", "password": "API key"}
PLACEHOLDERS: dict[str, str] = {
    "host": "https://api.unifapi.com",
    "port": "443 (the sandbox: its port)",
    "password": "your UnifAPI API key",
}

_PACKAGE = "airflow_provider_unifapi"


def _modules(*names: str) -> list[dict[str, Any]]:
    return [{"integration-name": "UnifAPI", "python-modules": [f"{_PACKAGE}.{name}" for name in names]}]


def get_provider_info() -> dict[str, Any]:
    """Return the provider description Airflow's ProvidersManager expects."""
    return {
        # Must equal the distribution name, or every `airflow` command fails to start.
        "package-name": "airflow-provider-unifapi",
        "name": "UnifAPI",
        "description": "Collect TikTok data through UnifAPI: hook, operator, balance sensor and trigger.",
        "versions": [__version__],
        "hook-class-names": [f"{_PACKAGE}.hooks.unifapi.UnifAPIHook"],
        "connection-types": [
            {
                "hook-class-name": f"{_PACKAGE}.hooks.unifapi.UnifAPIHook",
                "hook-name": "UnifAPI",
                "connection-type": "unifapi",
                "conn-fields": CONN_FIELDS,
                "ui-field-behaviour": {
                    "hidden-fields": HIDDEN_FIELDS,
                    "relabeling": RELABELING,
                    "placeholders": PLACEHOLDERS,
                },
            }
        ],
        "hooks": _modules("hooks.unifapi"),
        "operators": _modules("operators.hashtag_videos", "operators.hashtag_batch"),
        "sensors": _modules("sensors.balance"),
        "triggers": _modules("triggers.balance"),
        "integrations": [
            {"integration-name": "UnifAPI", "external-doc-url": "https://unifapi.com", "tags": ["service"]}
        ],
    }
