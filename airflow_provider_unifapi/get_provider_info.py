"""Provider metadata read by Airflow's ProvidersManager through the ``apache_airflow_provider`` entry point.

It must stay cheap: no imports beyond the standard library, no Airflow, no network.
The connection form is declared here (``conn-fields`` / ``ui-field-behaviour``, read by Airflow 3.2+)
and mirrored by :class:`~airflow_provider_unifapi.hooks.unifapi.UnifAPIHook` classmethods for older
Airflow versions; ``tests/test_provider_info.py`` proves the two agree.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_unifapi import __version__

#: Extra fields of a ``unifapi`` connection, with the JSON schema the UI validates them against.
CONN_FIELDS: dict[str, dict[str, Any]] = {
    "timeout": {
        "label": "Timeout (seconds)",
        "schema": {"type": ["number", "null"], "default": 30, "minimum": 0.1},
        "description": "Seconds to wait for each HTTP request (connect, read, write).",
    },
    "max_retries": {
        "label": "Max retries",
        "schema": {"type": ["integer", "null"], "default": 5, "minimum": 0, "maximum": 20},
        "description": "Retries of one call after a retryable error (429, 503, 500 internal_error, network).",
    },
    "max_retry_wait": {
        "label": "Max retry wait (seconds)",
        "schema": {"type": ["number", "null"], "default": 60, "minimum": 0},
        "description": "Longest single wait between retries; also caps a server's Retry-After.",
    },
    "balance_max_age": {
        "label": "Remembered balance max age (seconds)",
        "schema": {"type": ["integer", "null"], "default": 300, "minimum": 0},
        "description": "How long a balance seen in an earlier response answers the balance sensor for free.",
    },
}

HIDDEN_FIELDS: list[str] = ["schema", "login", "port", "extra"]
RELABELING: dict[str, str] = {"host": "Base URL", "password": "API key"}
PLACEHOLDERS: dict[str, str] = {"host": "https://api.unifapi.com", "password": "your UnifAPI API key"}


def get_provider_info() -> dict[str, Any]:
    """Return the provider description Airflow's ProvidersManager expects."""
    return {
        # Must equal the distribution name, or every `airflow` command fails to start.
        "package-name": "airflow-provider-unifapi",
        "name": "UnifAPI",
        "description": "Collect TikTok data through UnifAPI: hook, operator, balance sensor and trigger.",
        "versions": [__version__],
        "hook-class-names": ["airflow_provider_unifapi.hooks.unifapi.UnifAPIHook"],
        "connection-types": [
            {
                "hook-class-name": "airflow_provider_unifapi.hooks.unifapi.UnifAPIHook",
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
        "hooks": [
            {
                "integration-name": "UnifAPI",
                "python-modules": ["airflow_provider_unifapi.hooks.unifapi"],
            }
        ],
        "operators": [
            {
                "integration-name": "UnifAPI",
                "python-modules": ["airflow_provider_unifapi.operators.hashtag_videos"],
            }
        ],
        "sensors": [
            {"integration-name": "UnifAPI", "python-modules": ["airflow_provider_unifapi.sensors.balance"]}
        ],
        "triggers": [
            {"integration-name": "UnifAPI", "python-modules": ["airflow_provider_unifapi.triggers.balance"]}
        ],
        "integrations": [
            {
                "integration-name": "UnifAPI",
                "external-doc-url": "https://unifapi.com",
                "tags": ["service"],
            }
        ],
    }
