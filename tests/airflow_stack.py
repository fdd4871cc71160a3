"""A throw-away Airflow on 127.0.0.1: its own home, DB and DAGs folder, real scheduler processes.

Used by the asset test (LocalExecutor), the Celery cluster test and the rate-limit benchmark's
mapped contestants. No pytest import here: benchmarks use it too.

Airflow 3: api-server (tasks talk to its execution API) + dag-processor + scheduler; 2.11: the
scheduler alone. Every process runs in its own session, so ``stop()`` takes its children with it;
``spawn()`` starts more (Celery workers, say) that ``stop()`` also ends.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from airflow_provider_unifapi._compat import AIRFLOW_V_3


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, what: str, timeout: float = 120) -> None:
    """Wait until something listens on 127.0.0.1:``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise AssertionError(f"{what} did not listen on 127.0.0.1:{port}")


class AirflowStack:
    """A throw-away Airflow with ``dag_files`` in its DAGs folder and ``env`` on top of its config.

    :param root: an empty folder for the home, DAGs, DB and one log per process.
    :param dag_files: DAG files copied into the DAGs folder.
    :param env: extra environment (connections, ``UNIFAPI_*`` settings, config overrides).
    :param executor: the executor; default LocalExecutor on 3 (SequentialExecutor on 2.11).
    """

    def __init__(
        self,
        root: Path,
        dag_files: Iterable[Path],
        env: Mapping[str, str] | None = None,
        executor: str | None = None,
    ) -> None:
        self.root = root
        self.home = root / "home"
        self.dags = root / "dags"
        self.dag_files = list(dag_files)
        self.procs: list[subprocess.Popen[bytes]] = []
        self.api_port = free_port()
        base = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        # Airflow 2.11 executors run tasks as `airflow tasks run ...` found on PATH
        base["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{base.get('PATH', '')}"
        base.update(self._config(executor or ("LocalExecutor" if AIRFLOW_V_3 else "SequentialExecutor")))
        base.update(env or {})
        self.env = base

    def _config(self, executor: str) -> dict[str, str]:
        port = self.api_port
        return {
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home}/airflow.db",
            "AIRFLOW__CORE__EXECUTOR": executor,
            "AIRFLOW__CORE__PARALLELISM": "2",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}/",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API_AUTH__JWT_SECRET": os.urandom(24).hex(),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__WEBSERVER__WEB_SERVER_HOST": "127.0.0.1",
        }

    def airflow(self, *args: str) -> list[str]:
        """The command line of ``airflow <args>`` in this stack's Python."""
        return [sys.executable, "-m", "airflow", *args]

    def run(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        """Run ``airflow <args>`` to completion (``pools set``, ``dags trigger``...); raise on failure."""
        return subprocess.run(self.airflow(*args), env=self.env, check=True, capture_output=True)

    def start(self) -> None:
        """Migrate the DB, then start the api-server (3), dag-processor (3) and scheduler."""
        self.home.mkdir(parents=True)
        self.dags.mkdir()
        for path in self.dag_files:
            shutil.copy(path, self.dags)
        self.run("db", "migrate")
        if AIRFLOW_V_3:  # tasks talk to the api-server: it must answer before the first task starts
            self.spawn(self.airflow("api-server"))
            wait_for_port(self.api_port, "the api-server")
            self.spawn(self.airflow("dag-processor"))
        self.spawn(self.airflow("scheduler", "--skip-serve-logs"))

    def spawn(self, command: list[str], name: str | None = None) -> subprocess.Popen[bytes]:
        """Start ``command`` in its own session with this stack's environment; ``stop()`` ends it."""
        log = open(self.root / f"process-{name or len(self.procs)}.log", "wb")  # noqa: SIM115 - lives with the process
        proc = subprocess.Popen(
            command, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        """SIGTERM every process group, SIGKILL what is still there after 30 s."""
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Read the metadata DB (SQLite)."""
        with sqlite3.connect(self.home / "airflow.db", timeout=30) as db:
            return db.execute(sql, params).fetchall()

    def logs(self, tail: int = 3000) -> str:
        """The last ``tail`` characters of every process log, for a failure message."""
        return "\n".join(
            p.read_text(errors="replace")[-tail:] for p in sorted(self.root.glob("process-*.log"))
        )

    def wait_for_run(self, dag_id: str, timeout: float = 240) -> str:
        """Wait until a run of ``dag_id`` ends; its state (``success`` or ``failed``)."""
        deadline = time.monotonic() + timeout
        states: set[str] = set()
        while time.monotonic() < deadline:
            states = {row[0] for row in self.query("select state from dag_run where dag_id = ?", dag_id)}
            for end in ("success", "failed"):
                if end in states:
                    return end
            time.sleep(1)
        raise AssertionError(
            f"{dag_id} did not end in {timeout:.0f} s (runs: {states}); last logs:\n{self.logs()}"
        )

    def wait_for_success(self, dag_id: str, timeout: float = 240) -> None:
        """Wait until a run of ``dag_id`` succeeds; fail with the processes' last logs otherwise."""
        state = self.wait_for_run(dag_id, timeout)
        if state != "success":
            raise AssertionError(f"{dag_id} ended {state}; last logs:\n{self.logs()}")
