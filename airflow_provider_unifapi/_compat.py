"""Every import that differs between Airflow 3 (Task SDK) and Airflow 2.11, in one place: the package
imports Airflow names from here only, so supporting a new Airflow line means touching this module alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow import __version__ as AIRFLOW_VERSION

AIRFLOW_V_3 = int(AIRFLOW_VERSION.split(".")[0]) >= 3

# Type checking runs against Airflow 3 (the pinned lint environment), so it reads the first branch.
if TYPE_CHECKING or AIRFLOW_V_3:
    from airflow.sdk import (
        DAG,
        Asset,
        BaseHook,
        BaseOperator,
        BaseSensorOperator,
        Context,
        ObjectStoragePath,
        PokeReturnValue,
        Variable,
        conf,
        task,
    )
    from airflow.sdk.exceptions import (
        AirflowException,
        AirflowFailException,
        AirflowNotFoundException,
        AirflowSensorTimeout,
        AirflowSkipException,
    )
else:  # Airflow 2.11
    from airflow.configuration import conf
    from airflow.datasets import Dataset as Asset  # Airflow 3's Asset is 2.11's Dataset
    from airflow.decorators import task
    from airflow.exceptions import (
        AirflowException,
        AirflowFailException,
        AirflowNotFoundException,
        AirflowSensorTimeout,
        AirflowSkipException,
    )
    from airflow.hooks.base import BaseHook
    from airflow.io.path import ObjectStoragePath
    from airflow.models import BaseOperator, Variable
    from airflow.models.dag import DAG
    from airflow.sensors.base import BaseSensorOperator, PokeReturnValue
    from airflow.utils.context import Context

# Triggers still live in core on both lines.
from airflow.triggers.base import BaseTrigger, TriggerEvent  # noqa: E402

__all__ = [
    "AIRFLOW_VERSION",
    "AIRFLOW_V_3",
    "DAG",
    "AirflowException",
    "AirflowFailException",
    "AirflowNotFoundException",
    "AirflowSensorTimeout",
    "AirflowSkipException",
    "Asset",
    "BaseHook",
    "BaseOperator",
    "BaseSensorOperator",
    "BaseTrigger",
    "Context",
    "ObjectStoragePath",
    "PokeReturnValue",
    "TriggerEvent",
    "Variable",
    "add_outlet_extra",
    "aget_connection",
    "conf",
    "dag_test",
    "default_deferrable",
    "get_variable",
    "task",
    "task_state_store",
]


def default_deferrable() -> bool:
    """``[operators] default_deferrable``, read at call time like Airflow's own sensors do."""
    return conf.getboolean("operators", "default_deferrable", fallback=False)


async def aget_connection(hook: Any, conn_id: str) -> Any:
    """Fetch a connection from async code (the triggerer) without blocking its event loop."""
    try:
        from airflow.providers.common.compat.connection import get_async_connection
    except ImportError:  # common-compat too old or absent: run the sync lookup in a thread
        from asgiref.sync import sync_to_async

        return await sync_to_async(hook.get_connection)(conn_id)
    return await get_async_connection(conn_id=conn_id, hook=hook)


def get_variable(key: str) -> Any:
    """A Variable's value, or ``None`` when it does not exist (the default's keyword differs)."""
    if TYPE_CHECKING or AIRFLOW_V_3:
        return Variable.get(key, default=None)
    return Variable.get(key, default_var=None)


def dag_test(dag: Any, logical_date: Any) -> Any:
    """``dag.test()`` for one logical date (Airflow 2 calls it ``execution_date``); returns the DagRun."""
    if AIRFLOW_V_3:
        return dag.test(logical_date=logical_date)
    return dag.test(execution_date=logical_date)


def add_outlet_extra(context: Any, outlets: Any, extra: dict[str, Any]) -> int:
    """Put the JSON-able ``extra`` into the task's event of every Asset (Dataset on 2.11) outlet;
    return how many (aliases and references are left alone)."""
    events = context.get("outlet_events")
    if events is None:
        return 0
    assets = [outlet for outlet in outlets or () if isinstance(outlet, Asset)]
    for asset in assets:
        events[asset].extra.update(extra)
    return len(assets)


def task_state_store(context: Any) -> Any | None:
    """Airflow >= 3.3's per-task key-value store shared by the tries of one task instance, else ``None``."""
    return context.get("task_state_store") if AIRFLOW_V_3 else None
