"""The servers around the cluster, each on 127.0.0.1 and stopped by its context manager: Redis (the
Celery broker and result backend), moto's S3 server (the lake) and the UnifAPI sandbox.

The sandbox runs in a process of its own rather than in the test process: the test process already
hosts moto's threads and polls the ledger, and on two cores the sandbox must not share their GIL.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.airflow_stack import free_port, wait_for_port

BUCKET = "lake"
REGION = "us-east-1"


@contextmanager
def redis_server(folder: Path) -> Iterator[str]:
    """Debian's ``redis-server`` on a free 127.0.0.1 port without persistence; yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed: `make cluster-test` installs it with apt-get")
    port = free_port()
    # --save "" and --appendonly no: nothing is written to disk, the broker lives as long as the test
    command = [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"]
    with open(folder / "redis.log", "wb") as log:
        proc = subprocess.Popen(
            command, cwd=folder, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_for_port(port, "redis-server", timeout=30)
        yield f"redis://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@contextmanager
def moto_s3() -> Iterator[tuple[str, Any]]:
    """moto's S3 server with the bucket ``lake``; yields its endpoint URL and a boto3 client."""
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per S3 request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        s3.create_bucket(Bucket=BUCKET)
        yield endpoint, s3
    finally:
        server.stop()


def aws_conn_json(endpoint: str) -> str:
    """The ``aws`` connection the DAG writes with (``UNIFAPI_OUTPUT_CONN_ID``), pointed at moto."""
    return json.dumps(
        {
            "conn_type": "aws",
            "login": "testing",
            "password": "testing",
            "extra": {"endpoint_url": endpoint, "region_name": REGION},
        }
    )


@contextmanager
def sandbox_process(folder: Path) -> Iterator[str]:
    """``python -m airflow_provider_unifapi.sandbox`` on a free port; yields its URL."""
    out = folder / "sandbox.out"
    with open(out, "wb") as stdout, open(folder / "sandbox.err", "wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "airflow_provider_unifapi.sandbox", "--port", "0"],
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        prefix = "UnifAPI sandbox listening on "
        while not out.read_text().startswith(prefix):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"the sandbox did not start: {(folder / 'sandbox.err').read_text()[-2000:]}"
                )
            time.sleep(0.1)
        yield out.read_text().splitlines()[0].removeprefix(prefix).strip()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
