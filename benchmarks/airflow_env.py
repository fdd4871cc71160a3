"""Airflow for the contestants that run as real tasks: a migrated SQLite home (parent side) and a
``dag.test()`` run of a DAG file written into the DAGs folder (child side).

``dag.test()`` runs the task in the calling process, so the contestant's process is the task's
process; its start-up (imports, DAG serialisation, the in-process execution API) stays outside
the measured window, which the operators open inside ``execute()``.
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from benchmarks.spec import SPEC_ENV, RunSpec

_DAG_FILE = """\
# Benchmark DAG (airflow dag), written by benchmarks.airflow_env for one contestant.
import os

from benchmarks.spec import SPEC_ENV, RunSpec
from {module} import build_dag

dag = build_dag(RunSpec.load(os.environ[SPEC_ENV]))
"""


def airflow_env(home: Path, dags_folder: Path) -> dict[str, str]:
    """Environment variables that point Airflow at ``home`` (SQLite) and ``dags_folder``."""
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
    }


def ensure_migrated(home: Path, env: dict[str, str], *, trust_existing: bool = False) -> None:
    """``airflow db migrate`` once per home (under a file lock: two harnesses may share it).

    :param trust_existing: an ``airflow.db`` already there is migrated (a home given by the caller).
    """
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".bench-migrate.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        marker = home / ".bench-migrated"
        if (home / "airflow.db").exists() and (trust_existing or marker.exists()):
            return
        done = subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"], env=env, capture_output=True, text=True
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"airflow db migrate failed in {home}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            )
        marker.touch()


def run_dag(builder_module: str, spec: RunSpec) -> None:
    """Write the contestant's DAG file, import it, and run it once with ``dag.test()`` (child side)."""
    import pendulum

    from airflow_provider_unifapi._compat import dag_test

    folder = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{spec.dag_id}.py"
    text = _DAG_FILE.format(module=builder_module)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    assert os.environ.get(SPEC_ENV), "the harness sets the spec path"
    module_spec = importlib.util.spec_from_file_location(f"bench_dag_{spec.dag_id}", path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    # A fresh logical date per run: a DagRun id cannot repeat.
    run = dag_test(module.dag, pendulum.now("UTC"))
    state = str(run.state).split(".")[-1].lower()
    if state != "success":
        print(f"benchmark child: dag run {spec.dag_id} ended {state}", file=sys.stderr)
