"""Twenty tasks at once against one workspace limited to 60 requests a minute: rate limiting must
show up as waits (429s retried after ``Retry-After``), not as failed tasks, and nothing is lost.

Twenty real processes, each paging its own hashtag, share the sandbox's token bucket, like 20
mapped tasks on a LocalExecutor with parallelism 20. The clients run with the connection's default
retry settings (what users get). Default run: collector processes (no Airflow import, ~1 s to
start) and a burst of 40, so ~20 calls wait for tokens at 1/s. Under ``make chaos``: processes
running the operator's ``execute`` and the sandbox's default burst (10), so ~50 calls wait.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.chaos import report, settings
from tests.chaos.analysis import key_hits, output_figures
from tests.chaos.harness import REPO, child_env
from tests.chaos.runner import TrySpec
from tests.conftest import API_KEY

pytestmark = pytest.mark.chaos

TASKS = 20
PAGES = 3
PAGE = 50


def start(cmd: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with open(log, "wb") as handle:
        return subprocess.Popen(
            cmd, cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )


@pytest.mark.timeout(600)
def test_twenty_tasks_share_a_60_per_minute_workspace(sandbox, tmp_path) -> None:
    full = settings.long_mode()
    burst = 10 if full else 40
    tags = [str(610_000 + i) for i in range(TASKS)]
    sandbox.reset(
        rate_limit_per_minute=60,
        rate_limit_burst=burst,
        short_page_rate=0.0,  # exactly PAGES pages per hashtag: the call count is known
        duplicate_rate=0.0,
        hashtags=[{"id": tag, "name": f"conc{tag}", "video_count": PAGES * PAGE} for tag in tags],
    )
    env = child_env(API_KEY)
    # the connection with no extras: default timeout, retries and Retry-After cap
    env["AIRFLOW_CONN_UNIFAPI_DEFAULT"] = json.dumps(
        {"conn_type": "unifapi", "host": sandbox.url, "password": API_KEY}
    )

    def launch(tag: str, wave: int) -> tuple[subprocess.Popen[bytes], Path, Path]:
        out, result, log = (
            tmp_path / tag,
            tmp_path / f"{tag}.{wave}.result.json",
            tmp_path / f"{tag}.{wave}.log",
        )
        if full:
            cmd = [sys.executable, "-m", "tests.chaos.operator_child", tag, f"file://{out}", str(result)]
        else:
            spec = TrySpec(base_url=sandbox.url, hashtag_id=tag, folder_url=f"file://{out}", page_size=PAGE)
            (tmp_path / f"{tag}.spec.json").write_text(spec.to_json(), encoding="utf-8")
            cmd = [sys.executable, "-m", "tests.chaos.child", str(tmp_path / f"{tag}.spec.json"), str(result)]
        return start(cmd, log, env), result, log

    def outcome_of(proc: subprocess.Popen[bytes], result: Path) -> dict[str, Any]:
        return json.loads(result.read_text()) if result.exists() else {"outcome": f"exit {proc.returncode}"}

    started = time.monotonic()
    texts: list[Any] = []
    first_wave_failures: dict[str, Any] = {}
    outcomes: dict[str, Any] = {}
    pending = list(tags)
    # Wave 0 is the real test; later waves are Airflow's task retries (a new process resuming the
    # same folder), so that "nothing lost" is checked even when some tasks failed.
    for wave in range(4):
        if not pending:
            break
        procs = {tag: launch(tag, wave) for tag in pending}
        for proc, _, _ in procs.values():
            proc.wait(timeout=max(1.0, 540 - (time.monotonic() - started)))
        pending = []
        for tag, (proc, result, log) in procs.items():
            outcome = outcome_of(proc, result)
            texts += [log.read_bytes(), outcome]
            outcomes[tag] = outcome
            if outcome.get("outcome") != "done":
                pending.append(tag)
                if wave == 0:
                    first_wave_failures[tag] = (
                        outcome.get("error_type"),
                        (outcome.get("error_text") or "")[-200:],
                    )
    wall = time.monotonic() - started

    from upath import UPath

    from airflow_provider_unifapi.storage.run_folder import iter_run_records

    calls = sandbox.ledger()["calls"]
    texts.append(json.dumps(calls))
    statuses = Counter(c["status"] for c in calls)
    lost = duplicates = 0
    for tag in tags:
        if outcomes[tag].get("outcome") != "done":
            lost += PAGES * PAGE
            continue
        ids = [str(r["id"]) for r in iter_run_records(UPath(f"file://{tmp_path / tag}"))]
        checked = output_figures(ids, sandbox.truth(tag), outcomes[tag]["summary"]["stop_reason"])
        lost += checked["records_lost"]
        duplicates += checked["duplicates"]
    figures = {
        "tasks": TASKS,
        "burst": burst,
        "mode": "operator processes" if full else "collector processes",
        "wall_s": round(wall, 1),
        "tries": TASKS + sum(1 for _ in first_wave_failures),
        "calls": len(calls),
        "rate_limited_retries": statuses.get(429, 0),
        "faults": {"429 rate limit": statuses.get(429, 0)},
        "failed_tasks": len(first_wave_failures),
        "records": statuses.get(200, 0) * PAGE,
        "records_lost": lost,
        "duplicates": duplicates,
        "key_hits": key_hits(API_KEY, texts),
        "unfinished": len(pending),
    }
    report.record("concurrency", figures)
    assert statuses.get(429, 0) > 0, "the rate limit never engaged: this run proves nothing about waiting"
    assert lost == 0 and duplicates == 0 and not pending, figures
    assert figures["key_hits"] == 0
    # the promise: rate limiting shows up as waits, not as failed tasks (no retry wave needed)
    assert not first_wave_failures, (
        f"{len(first_wave_failures)} of {TASKS} tasks failed on the rate limit instead of waiting: {first_wave_failures}"
    )
    assert statuses.get(200, 0) == TASKS * PAGES, f"each page exactly once: {statuses}"
