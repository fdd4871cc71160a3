"""What a failed collection tells Airflow: retry (``AirflowException``) or not (``AirflowFailException``).

Both operators fail through :func:`task_failure`, so a failure reads and retries the same whichever
ran it: bad input and a refused key are never retried (a retry cannot help and nothing was paid
because of them); a transient error, a call of unknown outcome, a low balance and a busy folder are
(a retry resumes from the checkpoint, or finds the folder free).
"""

from __future__ import annotations

from airflow_provider_unifapi._compat import AirflowException, AirflowFailException, AirflowNotFoundException
from airflow_provider_unifapi.collector import RunStopped
from airflow_provider_unifapi.exceptions import (
    UnifAPIError,
    UnifAPIInputError,
    UnifAPIOutputError,
    UnifAPIUnauthorizedError,
    is_retryable,
)


def task_failure(exc: BaseException, *, conn_id: str, hashtag: str | None = None) -> AirflowException:
    """The exception that ends the task for ``exc``, its message naming what to fix.

    :param exc: what went wrong.
    :param conn_id: the ``unifapi`` connection (named when it is missing or its key is refused).
    :param hashtag: the hashtag concerned, if one.
    """
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
        # Transient, lost in transit, or a busy folder: an Airflow retry resumes from the checkpoint.
        return AirflowException(message)
    return AirflowFailException(message)
