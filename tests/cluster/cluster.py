"""A CeleryExecutor Airflow on 127.0.0.1: :class:`~tests.airflow_stack.AirflowStack` plus named Celery
workers, and the SIGKILL of one worker with every process under it.

Both workers run on this one machine, so Airflow's default hostname (the machine's) would not say
which worker ran a try. Each worker therefore gets ``[core] hostname_callable`` =
:func:`tests.cluster.hostnames.worker_name` and its own ``UNIFAPI_CLUSTER_WORKER``: the task
instance rows (and their history) then carry the worker's name.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from typing import Any

import psutil

from tests.airflow_stack import AirflowStack

DAG_ID = "example_unifapi_batches"


@dataclass
class Worker:
    name: str
    proc: subprocess.Popen[bytes]


@dataclass
class Try:
    """One try of a task instance, and the worker that ran it (``None`` if none started it)."""

    task_id: str
    map_index: int
    try_number: int
    state: str | None
    worker: str | None


class CeleryCluster(AirflowStack):
    """The stack's api-server, dag-processor and scheduler, plus Celery workers started by name."""

    workers: dict[str, Worker]

    def start_worker(self, name: str, concurrency: int) -> Worker:
        env = {
            **self.env,
            "UNIFAPI_CLUSTER_WORKER": name,
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tests.cluster.hostnames.worker_name",
        }
        command = self.airflow(
            "celery", "worker", "--celery-hostname", f"{name}@%h", "--concurrency", str(concurrency),
            "--skip-serve-logs",  # the log server binds 0.0.0.0:8793: two workers would clash
            "--without-mingle", "--without-gossip",
        )  # fmt: skip
        log = open(self.root / f"process-{name}.log", "wb")  # noqa: SIM115 - lives with the process
        proc = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.procs.append(proc)  # stop() ends it with the rest
        self.workers = {**getattr(self, "workers", {}), name: Worker(name, proc)}
        return self.workers[name]

    def wait_for_workers(self, timeout: float = 180) -> None:
        """Wait until every worker logged Celery's ``ready``."""
        deadline = time.monotonic() + timeout
        for name in self.workers:
            log = self.root / f"process-{name}.log"
            while b" ready." not in log.read_bytes():
                assert self.workers[name].proc.poll() is None, f"worker {name} exited:\n{self.logs()}"
                assert time.monotonic() < deadline, f"worker {name} not ready:\n{self.logs()}"
                time.sleep(0.5)

    def sigkill_worker(self, name: str) -> int:
        """SIGKILL worker ``name``: its process group and every process under it (the task
        supervisor puts each task in a process group of its own); returns how many died."""
        root = psutil.Process(self.workers[name].proc.pid)
        victims = [root, *root.children(recursive=True)]
        groups = {os.getpgid(p.pid) for p in victims if p.is_running()}
        for group in groups:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
        for proc in victims:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        self.workers[name].proc.wait(timeout=30)
        return len(victims)

    def wait_for_dag(self, timeout: float = 180) -> None:
        """Wait until the dag-processor stored the DAG."""
        deadline = time.monotonic() + timeout
        while not self.query("select 1 from dag where dag_id = ?", DAG_ID):
            assert time.monotonic() < deadline, f"{DAG_ID} was not parsed:\n{self.logs()}"
            time.sleep(1)

    def running(self, task_id: str) -> list[tuple[int, str, int]]:
        """``(map_index, worker, try_number)`` of the tries of ``task_id`` running now."""
        rows = self.query(
            "select map_index, hostname, try_number from task_instance "
            "where dag_id = ? and task_id = ? and state = 'running'",
            DAG_ID,
            task_id,
        )
        return [(int(m), str(h), int(t)) for m, h, t in rows if h]

    def tries(self) -> list[Try]:
        """Every try of every task of the DAG: the history's earlier tries plus the current ones."""
        columns = "task_id, map_index, try_number, state, hostname"
        rows: list[Any] = self.query(
            f"select {columns} from task_instance_history where dag_id = ?", DAG_ID
        ) + self.query(f"select {columns} from task_instance where dag_id = ?", DAG_ID)
        found = {
            (r[0], int(r[1]), int(r[2])): Try(r[0], int(r[1]), int(r[2]), r[3], r[4] or None) for r in rows
        }
        return sorted(found.values(), key=lambda t: (t.task_id, t.map_index, t.try_number))

    def run_state(self) -> str | None:
        """The state of the DAG's run, ``None`` before the scheduler created it."""
        rows = self.query("select state from dag_run where dag_id = ?", DAG_ID)
        return str(rows[0][0]) if rows else None

    def run_times(self) -> tuple[str, str, str]:
        """The DAG run's state, start and end (ISO text from the DB)."""
        rows = self.query("select state, start_date, end_date from dag_run where dag_id = ?", DAG_ID)
        assert len(rows) == 1, f"expected one run of {DAG_ID}, found {rows}"
        return rows[0]
