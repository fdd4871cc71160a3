"""Shared test fixtures: an isolated Airflow home, the local UnifAPI sandbox, and real DAG runs.

Tests speak HTTP to the sandbox on 127.0.0.1 and run real Airflow task instances with
``dag.test()`` on a SQLite metadata database. Airflow needs a DAG's file inside the DAGs folder to
serialize it, so :func:`dag_runner` writes a small DAG file per test into a per-session folder.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

# -- Airflow environment: must be set before anything imports airflow ------------------------------
_SESSION_DIR = Path(tempfile.mkdtemp(prefix="unifapi-tests-"))
_AIRFLOW_HOME = Path(os.environ.get("AIRFLOW_HOME") or (_SESSION_DIR / "airflow-home"))
_DAGS_FOLDER = _SESSION_DIR / "dags"
_DAGS_FOLDER.mkdir(parents=True, exist_ok=True)
os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(_DAGS_FOLDER)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{_AIRFLOW_HOME}/airflow.db")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")
# A key that looks like a real one, so the leak scans below would find it anywhere it leaked.
API_KEY = "sk_test_" + secrets.token_hex(16)
os.environ["UNIFAPI_TEST_API_KEY"] = API_KEY

import json  # noqa: E402
import textwrap  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

import httpx  # noqa: E402
import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SPEC_PATH = REPO / "tests" / "spec" / "unifapi-openapi-tiktok-subset.json"


def _migrate_db() -> None:
    db = _AIRFLOW_HOME / "airflow.db"
    if os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("sqlite:///") and db.exists():
        return
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=os.environ.copy(),
    )


_migrate_db()


# -- sandbox ---------------------------------------------------------------------------------------
class Sandbox:
    """Test-side handle on a running sandbox: its URL plus its admin API."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.admin = httpx.Client(base_url=url, timeout=60)

    def reset(self, **settings: Any) -> dict[str, Any]:
        response = self.admin.post("/_sandbox/reset", json=settings)
        response.raise_for_status()
        return response.json()

    def set_balance(self, value: int) -> int:
        return self.admin.post("/_sandbox/balance", json={"set": value}).raise_for_status().json()["balance"]

    def add_balance(self, value: int) -> int:
        return self.admin.post("/_sandbox/balance", json={"add": value}).raise_for_status().json()["balance"]

    def balance(self) -> int:
        return self.admin.get("/_sandbox/balance").raise_for_status().json()["balance"]

    def faults(self, *rules: dict[str, Any]) -> None:
        self.admin.post("/_sandbox/faults", json={"plan": list(rules)}).raise_for_status()

    def clear_faults(self) -> None:
        self.admin.delete("/_sandbox/faults").raise_for_status()

    def add_hashtag(self, hashtag_id: str, name: str, video_count: int) -> None:
        self.admin.post(
            "/_sandbox/hashtags", json={"id": hashtag_id, "name": name, "video_count": video_count}
        ).raise_for_status()

    def ledger(self, since: int = 0) -> dict[str, Any]:
        return self.admin.get("/_sandbox/ledger", params={"since": since}).raise_for_status().json()

    def calls(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        calls = self.ledger()["calls"]
        return [c for c in calls if endpoint is None or c["endpoint"] == endpoint]

    def credits_charged(self) -> int:
        return int(self.ledger()["totals"]["credits_charged"])

    def truth(self, hashtag_id: str) -> list[str]:
        return self.admin.get(f"/_sandbox/hashtags/{hashtag_id}/truth").raise_for_status().json()["ids"]


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[Any]:
    from airflow_provider_unifapi.sandbox import SandboxServer

    server = SandboxServer(host="127.0.0.1", port=0).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def sandbox(sandbox_server: Any) -> Iterator[Sandbox]:
    """A sandbox reset to a clean workspace (default balance, no faults, no rate limit)."""
    sb = Sandbox(sandbox_server.url)
    sb.reset(balance=1_000_000)
    try:
        yield sb
    finally:
        sb.admin.close()


FAST_RETRY_EXTRAS = {"backoff_base": 0.01, "max_retry_wait": 0.2, "timeout": 10}


def conn_uri_json(url: str, key: str = API_KEY, **extra: Any) -> str:
    return json.dumps(
        {"conn_type": "unifapi", "host": url, "password": key, "extra": {**FAST_RETRY_EXTRAS, **extra}}
    )


@pytest.fixture
def unifapi_conn(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    """``unifapi_default`` pointing at the sandbox (env-var connection in JSON form)."""
    monkeypatch.setenv("AIRFLOW_CONN_UNIFAPI_DEFAULT", conn_uri_json(sandbox.url))
    return sandbox


def sandbox_client(sandbox: Sandbox, **kwargs: Any) -> Any:
    from airflow_provider_unifapi.client import UnifAPIClient

    settings = {"backoff_base": 0.01, "max_retry_wait": 0.2, "timeout": 10, **kwargs}
    return UnifAPIClient(API_KEY, sandbox.url, **settings)


def async_sandbox_client(sandbox: Sandbox, **kwargs: Any) -> Any:
    from airflow_provider_unifapi.client import AsyncUnifAPIClient

    settings = {"backoff_base": 0.01, "max_retry_wait": 0.2, "timeout": 10, **kwargs}
    return AsyncUnifAPIClient(API_KEY, sandbox.url, **settings)


# -- real DAG runs ---------------------------------------------------------------------------------
@dataclass
class DagResult:
    state: str
    tis: dict[str, Any]
    xcoms: dict[str, Any]
    log_text: str

    def ti_state(self, task_id: str) -> str:
        return str(self.tis[task_id].state).split(".")[-1].lower()


class DagRunner:
    """Writes a DAG file into the DAGs folder, imports it and runs it with ``dag.test()``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = 0

    def write(self, dag_id: str, body: str) -> Path:
        header = textwrap.dedent(
            f"""
            from __future__ import annotations
            import pendulum
            from airflow_provider_unifapi._compat import DAG, task
            from airflow_provider_unifapi.operators.hashtag_videos import TikTokHashtagVideosOperator
            from airflow_provider_unifapi.sensors.balance import UnifAPIBalanceSensor

            with DAG({dag_id!r}, schedule=None, start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False) as dag:
            """
        )
        path = self.folder / f"{dag_id}.py"
        path.write_text(header + textwrap.indent(textwrap.dedent(body).strip() + "\n", "    "))
        return path

    def run(
        self, path: Path, *, logical_date: Any = None, capsys: Any = None, caplog: Any = None
    ) -> DagResult:
        import importlib.util

        import pendulum

        spec = importlib.util.spec_from_file_location(f"unifapi_test_dag_{self.count}", path)
        self.count += 1
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        from airflow_provider_unifapi._compat import dag_test

        # A distinct logical date per run (same day, so {{ ds }} stays 2024-01-01): Airflow 2.11 cannot
        # replace an existing DagRun of the same date in dag.test().
        default_date = pendulum.datetime(2024, 1, 1, tz="UTC").add(seconds=self.count)
        dr = dag_test(module.dag, logical_date or default_date)
        tis = {ti.task_id: ti for ti in dr.get_task_instances()}
        xcoms = {}
        for task_id, ti in tis.items():
            try:
                xcoms[task_id] = ti.xcom_pull(task_ids=task_id)
            except Exception:
                xcoms[task_id] = None
        text = ""
        if capsys is not None:
            captured = capsys.readouterr()
            text += captured.out + captured.err
        if caplog is not None:
            text += caplog.text
        return DagResult(state=str(dr.state).split(".")[-1].lower(), tis=tis, xcoms=xcoms, log_text=text)


@pytest.fixture(scope="session")
def dag_runner() -> DagRunner:
    return DagRunner(_DAGS_FOLDER)


def assert_no_key(*texts: Any) -> None:
    """The API key must appear in none of ``texts`` (strings, bytes, or JSON-able objects)."""
    for text in texts:
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        elif not isinstance(text, str):
            text = json.dumps(text, default=str)
        assert API_KEY not in text, "the API key leaked"
        assert API_KEY[8:] not in text, "the secret part of the API key leaked"


def read_variable(key: str) -> str | None:
    """A Variable's stored value, read from the metadata DB (the Task SDK reads it only inside tasks)."""
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.query(Variable).filter(Variable.key == key).one_or_none()
        return None if row is None else row.val


def run_dag_then_kill(sb: Sandbox, path: Path, *, page_calls: int) -> None:
    """Run the DAG file ``path`` with ``dag.test()`` in a process of its own and SIGKILL its whole
    process group once the sandbox ledger holds ``page_calls`` calls for pages; then wait until the
    ledger settles (a call of the killed process may still be in the sandbox, and would otherwise be
    logged as if the resumed run had made it)."""
    import signal
    import time

    code = (
        "import importlib.util, pendulum;"
        f"spec = importlib.util.spec_from_file_location('killdag', {str(path)!r});"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m);"
        "from airflow_provider_unifapi._compat import dag_test;"
        "dag_test(m.dag, pendulum.datetime(2024, 1, 1, tz='UTC'))"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        env=os.environ.copy(),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while len(sb.calls("videos")) < page_calls:
            assert proc.poll() is None, "the task process ended before it could be killed"
            assert time.monotonic() < deadline, "the task never got going"
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    settled, count = time.monotonic(), len(sb.calls())
    while time.monotonic() - settled < 0.5:
        time.sleep(0.05)
        if len(sb.calls()) != count:
            settled, count = time.monotonic(), len(sb.calls())
