"""``[core] hostname_callable`` of the cluster test's Celery workers (see :mod:`tests.cluster.cluster`)."""

from __future__ import annotations

import os


def worker_name() -> str:
    """The worker's name from its environment, so task instances say which worker ran them."""
    return os.environ["UNIFAPI_CLUSTER_WORKER"]
