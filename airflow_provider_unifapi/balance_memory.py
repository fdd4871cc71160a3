"""Where the last workspace balance seen is remembered for the balance sensor: an Airflow Variable.

There is no free balance endpoint, so every balance reading costs a credit unless it is remembered
from an earlier response. The operator and the sensor write ``unifapi_balance__<conn_id>`` with
``{"balance", "seen_at", "request_id"}``; the sensor reads it for free while it is fresh.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime

from airflow_provider_unifapi.models import BalanceReading

log = logging.getLogger(__name__)

VARIABLE_PREFIX = "unifapi_balance__"


def variable_name(conn_id: str) -> str:
    """Name of the Variable that remembers the balance of ``conn_id``'s workspace."""
    return f"{VARIABLE_PREFIX}{conn_id}"


def remember_balance(conn_id: str, reading: BalanceReading | None) -> None:
    """Store ``reading`` unless a newer one is already stored. Never fails the caller's task."""
    if reading is None:
        return
    from airflow_provider_unifapi._compat import Variable

    try:
        current = recall_balance(conn_id)
        if current is not None and current.seen_at > reading.seen_at:
            return
        Variable.set(
            variable_name(conn_id),
            json.dumps(
                {
                    "balance": reading.balance,
                    "seen_at": reading.seen_at.isoformat(),
                    "request_id": reading.request_id,
                }
            ),
            description="Last UnifAPI workspace balance seen (written by airflow-provider-unifapi).",
        )
    except Exception as exc:  # remembering is an optimisation: losing it costs one paid probe
        log.warning("Could not remember the UnifAPI balance in Variable %s: %s", variable_name(conn_id), exc)


def recall_balance(conn_id: str) -> BalanceReading | None:
    """The remembered reading for ``conn_id``, or ``None`` when there is none or it is unreadable."""
    from airflow_provider_unifapi._compat import get_variable

    try:
        raw = get_variable(variable_name(conn_id))
    except Exception as exc:
        log.warning("Could not read Variable %s: %s", variable_name(conn_id), exc)
        return None
    if not raw:
        return None
    try:
        data = json.loads(raw)
        return BalanceReading(
            balance=int(data["balance"]),
            seen_at=datetime.fromisoformat(data["seen_at"]),
            request_id=data.get("request_id"),
        )
    except (ValueError, KeyError, TypeError):
        log.warning("Variable %s does not hold a balance reading; ignoring it", variable_name(conn_id))
        return None
