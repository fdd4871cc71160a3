"""The Celery cluster test: run only by ``make cluster-test`` (``scripts/cluster_test.sh``).

That script installs Debian's ``redis-server`` if missing and runs this folder with
``UNIFAPI_CLUSTER_TEST=1``. Without that variable (``make test``), only the judge's own tests
(``test_judge.py``: pure functions, a second) are collected, not the cluster run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.services import moto_s3, redis_server, sandbox_process

ENABLED = os.environ.get("UNIFAPI_CLUSTER_TEST") == "1"
collect_ignore_glob = [] if ENABLED else ["test_cluster_run.py"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "cluster: a CeleryExecutor cluster with Redis and moto (make cluster-test)"
    )


@pytest.fixture(scope="session")
def services_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("services")


@pytest.fixture(scope="session")
def redis_url(services_dir: Path) -> Iterator[str]:
    with redis_server(services_dir) as url:
        yield url


@pytest.fixture(scope="session")
def s3(services_dir: Path) -> Iterator[tuple[str, Any]]:
    """moto's S3 endpoint and a boto3 client on it (bucket ``lake``)."""
    with moto_s3() as found:
        yield found


@pytest.fixture(scope="session")
def sandbox_url(services_dir: Path) -> Iterator[str]:
    with sandbox_process(services_dir) as url:
        yield url
