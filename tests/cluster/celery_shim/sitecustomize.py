"""Loaded at start-up by every process of the cluster test (its folder is on their ``PYTHONPATH``).

apache-airflow-providers-celery 3.26 imports ``retry`` from ``celery.backends.database``, which
celery 5.7 removed (its database backend retries by itself now): the Celery workers and the
scheduler's CeleryExecutor would not even import. Until the lock pins a compatible pair, this puts
back celery 5.6's decorator (retry an operation up to 3 times on a database error). The provider
uses it only with a database result backend; the cluster test's is Redis. Does nothing when
``retry`` exists or celery is not installed.
"""

from __future__ import annotations

import functools
from typing import Any


def _patch() -> None:
    try:
        import celery.backends.database as database
    except ImportError:
        return
    if hasattr(database, "retry"):
        return
    from sqlalchemy.exc import DatabaseError, InvalidRequestError
    from sqlalchemy.orm.exc import StaleDataError

    def retry(fun: Any) -> Any:
        @functools.wraps(fun)
        def inner(*args: Any, **kwargs: Any) -> Any:
            max_retries = kwargs.pop("max_retries", 3)
            for attempt in range(max_retries):
                try:
                    return fun(*args, **kwargs)
                except (DatabaseError, InvalidRequestError, StaleDataError):
                    if attempt + 1 >= max_retries:
                        raise
            return None

        return inner

    database.retry = retry


_patch()
