"""Asset (Dataset on 2.11) events carry the run's summary, and a downstream DAG sees it.

``test_scheduler_runs_the_downstream_dag_with_the_summary`` starts a real Airflow on 127.0.0.1 (Airflow
3: api-server + scheduler + dag-processor with the LocalExecutor; 2.11: the scheduler with the
SequentialExecutor, the only one SQLite allows there) on a fresh SQLite database, with the example
pair of DAGs in its DAGs folder, and waits for the asset-scheduled DAG to run and return what it read.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_unifapi._compat import AIRFLOW_V_3
from airflow_provider_unifapi.collector import dollars
from tests.conftest import API_KEY, REPO, assert_no_key, conn_uri_json

TAG = "4343"
VIDEOS = 180
SUMMARY_KEYS = {"hashtag_id", "output_path", "records", "credits_charged", "possibly_billed_credits"}
SUMMARY_KEYS |= {"stop_reason", "files", "tries", "credits_spent", "dollars_spent", "reused"}


@pytest.fixture
def sb(unifapi_conn):
    unifapi_conn.add_hashtag(TAG, "assettest", VIDEOS)
    return unifapi_conn


def asset_events(url: str) -> list[dict[str, Any]]:
    """The extras of every asset (dataset) event whose summary names ``url``, oldest first."""
    from airflow.utils.session import create_session

    if AIRFLOW_V_3:
        from airflow.models.asset import AssetEvent as Event
    else:
        from airflow.models.dataset import DatasetEvent as Event  # type: ignore[no-redef]
    with create_session() as session:
        extras = [dict(e.extra or {}) for e in session.query(Event).order_by(Event.id).all()]
    return [e for e in extras if e.get("output_path") == url]


def test_every_event_carries_the_summary_and_a_reused_folder_says_so(sb, dag_runner, tmp_path):
    url = f"file://{tmp_path}/lake/"
    asset = "Asset" if AIRFLOW_V_3 else "Dataset"
    module = "airflow.sdk" if AIRFLOW_V_3 else "airflow.datasets"
    path = dag_runner.write(
        "asset_producer",
        f"""
        from {module} import {asset}
        TikTokHashtagVideosOperator(
            task_id="collect", hashtag_id={TAG!r}, output_path={url!r}, max_credits=150,
            outlets=[{asset}({url!r})],
        )
        """,
    )
    if not AIRFLOW_V_3:
        # 2.11's dag.test() records events only for datasets already known to the metadata DB, which
        # the scheduler's DAG processing writes; do its part here.
        import importlib.util

        spec = importlib.util.spec_from_file_location("asset_producer_sync", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.dag.sync_to_db()
    first = dag_runner.run(path)
    assert first.state == "success"
    events = asset_events(url)
    assert len(events) == 1
    extra = events[0]
    assert set(extra) >= SUMMARY_KEYS
    summary = first.xcoms["collect"]
    assert {k: extra[k] for k in summary} == summary  # the whole summary, as returned
    # a run stopped at its cap is told apart from a complete one
    assert extra["stop_reason"] == "max_credits" and extra["records"] < VIDEOS
    assert extra["credits_charged"] == sb.credits_charged() <= 150
    assert extra["credits_spent"] == extra["credits_charged"] + extra["possibly_billed_credits"]
    assert extra["dollars_spent"] == dollars(extra["credits_spent"])
    assert extra["reused"] is False and extra["credits_spent_this_run"] == extra["credits_spent"]

    second = dag_runner.run(path)  # the folder is complete: reused for free, and the event says so
    assert second.state == "success"
    again = asset_events(url)[-1]
    assert again["reused"] is True and again["credits_spent_this_run"] == 0
    assert again["records"] == extra["records"] and sb.credits_charged() == extra["credits_charged"]
    assert_no_key(events, again)


# -- a real scheduler ---------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class AirflowStack:
    """A throw-away Airflow (its own home and SQLite DB) with the example pair of DAGs."""

    def __init__(self, root: Path, sandbox_url: str) -> None:
        self.root = root
        self.home = root / "home"
        self.dags = root / "dags"
        self.procs: list[subprocess.Popen[bytes]] = []
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        # Airflow 2.11 executors run tasks as `airflow tasks run ...` found on PATH
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        env.update(
            AIRFLOW_HOME=str(self.home),
            AIRFLOW__CORE__DAGS_FOLDER=str(self.dags),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__CORE__UNIT_TEST_MODE="False",
            AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="False",
            AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{self.home}/airflow.db",
            AIRFLOW__CORE__EXECUTOR="LocalExecutor" if AIRFLOW_V_3 else "SequentialExecutor",
            AIRFLOW__CORE__PARALLELISM="2",
            AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC="1",
            AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL="5",
            AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5",
            AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{port}/execution/",
            AIRFLOW__API__BASE_URL=f"http://127.0.0.1:{port}/",
            AIRFLOW__API__HOST="127.0.0.1",
            AIRFLOW__API__PORT=str(port),
            AIRFLOW__API_AUTH__JWT_SECRET=os.urandom(24).hex(),
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
            AIRFLOW__WEBSERVER__WEB_SERVER_HOST="127.0.0.1",
            AIRFLOW_CONN_UNIFAPI_DEFAULT=conn_uri_json(sandbox_url),
            UNIFAPI_HASHTAG_ID=TAG,
            UNIFAPI_OUTPUT_BASE=f"file://{root}/lake",
            UNIFAPI_MAX_CREDITS="100000",
        )
        self.env = env

    def airflow(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "airflow", *args]

    def start(self) -> None:
        self.home.mkdir(parents=True)
        self.dags.mkdir()
        shutil.copy(REPO / "example_dags" / "example_unifapi_asset_pipeline.py", self.dags)
        subprocess.run(self.airflow("db", "migrate"), env=self.env, check=True, capture_output=True)
        if AIRFLOW_V_3:  # tasks talk to the api-server: it must answer before the first task starts
            self._spawn(self.airflow("api-server"))
            self._wait_for_port(int(self.env["AIRFLOW__API__PORT"]))
            self._spawn(self.airflow("dag-processor"))
        self._spawn(self.airflow("scheduler", "--skip-serve-logs"))

    def _spawn(self, command: list[str]) -> None:
        log = open(self.root / f"process-{len(self.procs)}.log", "wb")  # noqa: SIM115 - lives with the process
        self.procs.append(
            subprocess.Popen(
                command, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        )

    def _wait_for_port(self, port: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return
            time.sleep(0.5)
        raise AssertionError(f"the api-server did not listen on 127.0.0.1:{port}")

    def stop(self) -> None:
        for proc in self.procs:  # each in its own session: its workers go with it
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.home / "airflow.db", timeout=30) as db:
            return db.execute(sql, params).fetchall()

    def wait_for_success(self, dag_id: str, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = {row[0] for row in self.query("select state from dag_run where dag_id = ?", dag_id)}
            if "success" in states:
                return
            if "failed" in states:
                break
            time.sleep(1)
        logs = "\n".join(
            p.read_text(errors="replace")[-3000:] for p in sorted(self.root.glob("process-*.log"))
        )
        raise AssertionError(f"{dag_id} did not succeed (runs: {states}); last logs:\n{logs}")


def _value(raw: Any) -> Any:
    if isinstance(raw, bytes):
        raw = raw.decode()
    value = json.loads(raw)
    return json.loads(value) if isinstance(value, str) else value


@pytest.mark.airflow
def test_scheduler_runs_the_downstream_dag_with_the_summary(sb, tmp_path):
    stack = AirflowStack(tmp_path, sb.url)
    try:
        stack.start()
        stack.wait_for_success("example_unifapi_asset_collect")
        stack.wait_for_success("example_unifapi_asset_report")
        run_types = stack.query("select run_type from dag_run where dag_id = 'example_unifapi_asset_report'")
        assert run_types and {r[0] for r in run_types} <= {"asset_triggered", "dataset_triggered"}
        table = "asset_event" if AIRFLOW_V_3 else "dataset_event"
        extras = [_value(row[0]) for row in stack.query(f"select extra from {table}")]
        assert len(extras) == 1
        extra = extras[0]
        assert set(extra) >= SUMMARY_KEYS
        assert extra["hashtag_id"] == TAG and extra["records"] == VIDEOS == len(sb.truth(TAG))
        assert extra["stop_reason"] == "exhausted" and extra["credits_charged"] == sb.credits_charged()
        assert extra["output_path"].startswith(f"file://{tmp_path}/lake/hashtag={TAG}/ds=")
        # the downstream task read the same summary from triggering_asset_events and returned it
        rows = stack.query(
            "select value from xcom where dag_id = 'example_unifapi_asset_report' and key = 'return_value'"
        )
        assert [_value(row[0]) for row in rows] == [[extra]]
        logs = "".join(p.read_text(errors="replace") for p in tmp_path.rglob("*.log"))
        assert_no_key(logs, extra)
        assert API_KEY not in logs
    finally:
        stack.stop()
