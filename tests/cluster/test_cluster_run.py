"""The batches example DAG on a real CeleryExecutor cluster, one worker SIGKILLed mid-run.

Airflow 3 (api-server, dag-processor, scheduler) on SQLite, Redis as Celery broker and result
backend, two Celery workers of 2 slots, S3 on moto's server, the sandbox with a per-call latency and
``CLUSTER_HASHTAGS`` hashtags (default 300, 50-600 videos each) in mapped batches. Once a ``collect``
batch has paid pages but is far from done, the worker running it is SIGKILLed with every process
under it; the scheduler notices through the task-instance heartbeat timeout, the retry runs on the
other worker and resumes from the S3 checkpoints. The one DAG run must succeed, then
:mod:`tests.cluster.judge` holds it against the sandbox's truth and ledger.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_unifapi.operators.hashtag_batch import chunk
from tests.cluster.cluster import DAG_ID, CeleryCluster
from tests.cluster.judge import MUST_BE_ZERO, Kill, judge, paid_pages, read_lake
from tests.cluster.report import render, write_between_markers
from tests.cluster.services import BUCKET, aws_conn_json
from tests.cluster.tamper import assert_judge_catches
from tests.conftest import API_KEY, REPO, Sandbox, conn_uri_json

HASHTAGS = int(os.environ.get("CLUSTER_HASHTAGS", "300"))
PER_TASK = int(os.environ.get("CLUSTER_HASHTAGS_PER_TASK") or max(5, math.ceil(HASHTAGS / 12)))
SIZES = (50, 600)
LATENCY_MS = float(os.environ.get("CLUSTER_LATENCY_MS", "30"))
MAX_CONCURRENCY = 4
WORKER_SLOTS = 2
# a per-hashtag cap above the largest hashtag plus a page per chain paid again: never binding on a
# good run, so the batch cap (per_task x this) is a real bound the ledger is checked against
MAX_CREDITS_PER_HASHTAG = SIZES[1] + 50 * MAX_CONCURRENCY
HEARTBEAT_TIMEOUT_S = 30
KILL_AFTER = 0.2  # share of the run's pages paid before a worker is killed
RUN_TIMEOUT_S = float(os.environ.get("CLUSTER_TIMEOUT", "3600"))


def catalogue() -> dict[str, int]:
    """Hashtag id -> video count, the same for a given size (seeded)."""
    rng = random.Random(HASHTAGS)
    return {str(880_000 + i): rng.randint(*SIZES) for i in range(HASHTAGS)}


def cluster_env(sandbox_url: str, redis_url: str, s3_endpoint: str, tags: dict[str, int]) -> dict[str, str]:
    return {
        "AIRFLOW_CONN_UNIFAPI_DEFAULT": conn_uri_json(sandbox_url),
        "AIRFLOW_CONN_AWS_LAKE": aws_conn_json(s3_endpoint),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "UNIFAPI_HASHTAGS": ",".join(tags),
        "UNIFAPI_HASHTAGS_PER_TASK": str(PER_TASK),
        "UNIFAPI_MAX_CONCURRENCY": str(MAX_CONCURRENCY),
        "UNIFAPI_OUTPUT_BASE": f"s3://{BUCKET}/cluster",
        "UNIFAPI_OUTPUT_CONN_ID": "aws_lake",
        "UNIFAPI_MAX_CREDITS_PER_HASHTAG": str(MAX_CREDITS_PER_HASHTAG),
        "UNIFAPI_POOL": "unifapi",
        "UNIFAPI_RETRY_DELAY_SECONDS": "5",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",  # unpaused once the workers are up
        "AIRFLOW__CORE__PARALLELISM": str(2 * WORKER_SLOTS),
        "AIRFLOW__CELERY__BROKER_URL": f"{redis_url}/0",
        "AIRFLOW__CELERY__RESULT_BACKEND": f"{redis_url}/1",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(WORKER_SLOTS),
        # a killed task is noticed when its heartbeats stop: soon, but well above a loaded machine's gaps
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT_S),
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
        # the workers import tests.cluster.hostnames
        "PYTHONPATH": str(REPO),
    }


def start(cluster: CeleryCluster) -> float:
    """Start everything, then unpause the DAG (the scheduler creates its one run); returns when."""
    cluster.start()
    cluster.run("pools", "set", "unifapi", str(2 * WORKER_SLOTS), "UnifAPI rate limit")
    for name in ("worker-a", "worker-b"):
        cluster.start_worker(name, WORKER_SLOTS)
    cluster.wait_for_workers()
    cluster.wait_for_dag()
    cluster.run("dags", "unpause", DAG_ID)
    return time.time()


def kill_mid_run(
    cluster: CeleryCluster, sb: Sandbox, chunks: dict[int, list[str]], tags: dict[str, int]
) -> tuple[Kill, int, int]:
    """SIGKILL the worker of a running ``collect`` batch that has paid pages but is under 60 % done;
    returns the kill, how many processes died, and how many pages were paid by then."""
    batch_of = {h: b for b, hs in chunks.items() for h in hs}
    pages = {b: sum(-(-tags[h] // 50) for h in hs) for b, hs in chunks.items()}
    paid: dict[int, int] = dict.fromkeys(chunks, 0)
    seq = 0
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        for call in sb.ledger(since=seq)["calls"]:
            seq = max(seq, call["seq"])
            if paid_pages([call]) and call["hashtag_id"] in batch_of:
                paid[batch_of[call["hashtag_id"]]] += 1
        # late enough that both workers have run batches, early enough to leave work for the retry
        ripe = sum(paid.values()) >= KILL_AFTER * sum(pages.values())
        for batch, worker, _ in cluster.running("collect") if ripe else []:
            if 3 <= paid[batch] <= 0.6 * pages[batch]:
                running = sorted(b for b, w, _ in cluster.running("collect") if w == worker)
                at = time.time()
                processes = cluster.sigkill_worker(worker)
                return Kill(worker, at, sorted({batch, *running})), processes, sum(paid.values())
        assert cluster.run_state() in (None, "queued", "running"), "the run ended before any kill"
        time.sleep(0.3)
    raise AssertionError(f"no batch to kill mid-run:\n{cluster.logs()}")


def worker_table(cluster: CeleryCluster, kill: Kill) -> tuple[dict[str, list[str]], int, int]:
    """Which worker ran which ``collect`` try; the killed tries; the retries."""
    table: dict[str, list[str]] = {name: [] for name in cluster.workers}
    killed = retries = 0
    for t in cluster.tries():
        if t.task_id != "collect" or t.worker is None:
            continue
        dead = t.worker == kill.worker and t.state != "success"
        killed += dead
        retries += t.try_number > 1
        if dead and t.map_index not in kill.batches:
            kill.batches.append(t.map_index)  # started on the victim but not yet seen running
        table.setdefault(t.worker, []).append(
            f"batch {t.map_index}#{t.try_number}" + (" killed" if dead else "")
        )
    return table, killed, retries


def texts_of(cluster: CeleryCluster) -> list[Any]:
    """Every file of the run (process and task logs, the metadata DB whole) and every XCom value."""
    files = [p.read_bytes() for p in cluster.root.rglob("*") if p.is_file()]
    return files + [row[0] for row in cluster.query("select value from xcom")]


@pytest.mark.cluster
@pytest.mark.timeout(RUN_TIMEOUT_S + 600)
def test_batches_dag_survives_a_worker_sigkill(
    tmp_path: Path, redis_url: str, s3: tuple[str, Any], sandbox_url: str
) -> None:
    began = time.time()
    tags = catalogue()
    chunks = dict(enumerate(chunk(list(tags), PER_TASK)))
    sb = Sandbox(sandbox_url)
    # only this run's key is accepted: the tasks' success proves the connection carried it
    sb.reset(api_keys=[API_KEY], latency_ms=LATENCY_MS, balance=10_000_000, hashtags=[
        {"id": h, "name": f"cluster{h}", "video_count": n} for h, n in tags.items()
    ])  # fmt: skip
    endpoint, s3_client = s3
    env = cluster_env(sandbox_url, redis_url, endpoint, tags)
    run = run_with_a_kill(tmp_path / "airflow", env, sb, chunks, tags)
    inputs: dict[str, Any] = {
        "chunks": chunks,
        "lake": read_lake(s3_client, BUCKET),
        "truths": {h: sb.truth(h) for h in tags},
        "calls": sb.ledger()["calls"],
        "kills": [run["kill"]],
        "max_concurrency": MAX_CONCURRENCY,
        "max_credits": PER_TASK * MAX_CREDITS_PER_HASHTAG,
        "api_key": API_KEY,
        "texts": run.pop("texts"),
    }
    figures = judge(**inputs)
    kill = run.pop("kill")
    figures.update(run, killed_worker=kill.worker, test_wall_s=round(time.time() - began))
    print(json.dumps(figures, indent=1))
    assert figures["tries_killed"] >= 1 and figures["retries"] >= 1, "the kill cut no collect try"
    assert {n: figures[n] for n in MUST_BE_ZERO} == dict.fromkeys(MUST_BE_ZERO, 0), figures
    assert figures["records"] == figures["expected_records"] == sum(len(t) for t in inputs["truths"].values())
    assert_judge_catches(inputs, figures)
    report(figures)


def run_with_a_kill(
    root: Path, env: dict[str, str], sb: Sandbox, chunks: dict[int, list[str]], tags: dict[str, int]
) -> dict[str, Any]:
    """Start the cluster, kill a worker mid-run, wait for the run's success; what happened."""
    dag = REPO / "example_dags" / "example_unifapi_batches.py"
    cluster = CeleryCluster(root, [dag], env, executor="CeleryExecutor")
    root.mkdir()
    try:
        unpaused = start(cluster)
        kill, processes, paid_at_kill = kill_mid_run(cluster, sb, chunks, tags)
        state = cluster.wait_for_run(DAG_ID, timeout=RUN_TIMEOUT_S)
        assert state == "success", f"the run ended {state}; last logs:\n{cluster.logs()}"
        workers, killed, retries = worker_table(cluster, kill)
        _, start_date, end_date = cluster.run_times()
        found: dict[str, Any] = {
            "kill": kill,
            "processes_killed": processes,
            "killed_after_s": round(kill.at - unpaused),
            "pages_paid_at_kill": paid_at_kill,
            "tries_killed": killed,
            "retries": retries,
            "workers": workers,
            "run_wall_s": round((_parse(end_date) - _parse(start_date)).total_seconds()),
        }
    finally:
        cluster.stop()
    found["texts"] = texts_of(cluster)  # after the stop: the logs are complete
    return found


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(str(text))


def report(figures: dict[str, Any]) -> None:
    """Into RELIABILITY.md when ``UNIFAPI_CLUSTER_REPORT_MD`` names it (the full run of the script)."""
    target = os.environ.get("UNIFAPI_CLUSTER_REPORT_MD")
    if not target:
        return
    import airflow

    figures.update(
        finished_at=datetime.now().strftime("%Y-%m-%d"),
        airflow=airflow.__version__,
        redis=os.environ.get("UNIFAPI_CLUSTER_REDIS_VERSION", "?"),
        worker_concurrency=WORKER_SLOTS,
        pool_slots=2 * WORKER_SLOTS,
        latency_ms=LATENCY_MS,
        size_range=f"{SIZES[0]}-{SIZES[1]}",
        hashtags_per_task=PER_TASK,
        max_concurrency=MAX_CONCURRENCY,
    )
    write_between_markers(Path(target), render(figures, MUST_BE_ZERO))
