"""What both collection operators share: their hook, their OpenLineage methods and how they fail."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from airflow_provider_unifapi._compat import (
    AirflowException,
    AirflowFailException,
    AirflowNotFoundException,
    BaseOperator,
)
from airflow_provider_unifapi.collector import RunStopped
from airflow_provider_unifapi.exceptions import (
    UnifAPIError,
    UnifAPIInputError,
    UnifAPIOutputError,
    UnifAPIUnauthorizedError,
    is_retryable,
)
from airflow_provider_unifapi.hooks.unifapi import UnifAPIHook


class CollectionOperator(BaseOperator):
    """Base of both operators; the lineage methods import :mod:`._lineage` (OpenLineage) only when called."""

    ui_color = "#25f4ee"
    unifapi_conn_id: str

    @cached_property
    def hook(self) -> UnifAPIHook:
        """The hook of ``unifapi_conn_id``: its connection's settings, client and remembered balance."""
        return UnifAPIHook(self.unifapi_conn_id)

    def get_openlineage_facets_on_start(self) -> Any:
        """START: the endpoints of the hashtags given by id (a name is resolved during execute)."""
        from airflow_provider_unifapi.operators._lineage import lineage_on_start

        return lineage_on_start(self)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """COMPLETE, and FAIL too (a failed try spent credits): resolved inputs, parts written, credits."""
        from airflow_provider_unifapi.operators._lineage import lineage_on_end

        return lineage_on_end(self)

    get_openlineage_facets_on_failure = get_openlineage_facets_on_complete


def task_failure(exc: BaseException, *, conn_id: str, hashtag: str | None = None) -> AirflowException:
    """The exception that ends the task for ``exc``: ``AirflowException`` (retried) when a retry can help
    (it resumes, or finds the folder free), else ``AirflowFailException``; its message names the fix."""
    about = f" for hashtag {hashtag}" if hashtag else ""
    if isinstance(exc, UnifAPIInputError):
        return AirflowFailException(str(exc))
    if isinstance(exc, AirflowNotFoundException):
        env = f"AIRFLOW_CONN_{conn_id.upper()}"
        return AirflowFailException(
            f"Connection {conn_id!r} does not exist: create it in Admin > Connections (type UnifAPI, the key "
            f'in its API key field), or set {env}=\'{{"conn_type": "unifapi", "password": "<key>"}}\'; '
            "or pass unifapi_conn_id= the id of an existing one"
        )
    if isinstance(exc, UnifAPIUnauthorizedError):
        return AirflowFailException(
            f"UnifAPI refused the API key of connection {conn_id!r}{about} ({exc}): check the API key field "
            f"of connection {conn_id!r} in Admin > Connections (`airflow connections test {conn_id}` "
            "checks it for 1 credit)"
        )
    if isinstance(exc, UnifAPIOutputError):  # a busy folder is retried (its writer ends); the rest not
        return (AirflowException if is_retryable(exc) else AirflowFailException)(f"Output{about}: {exc}")
    if isinstance(exc, RunStopped):
        return AirflowException(str(exc))
    message = f"UnifAPI call failed{about}: {exc}"
    if isinstance(exc, UnifAPIError) and (is_retryable(exc) or exc.may_have_been_billed):
        return AirflowException(message)
    return AirflowFailException(message)
