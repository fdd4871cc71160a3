"""One cell of the matrix: a clean sandbox workspace, one contestant on N hashtags, its figures.

Every figure about requests comes from the sandbox's ledger (status and time of every call), not
from what a contestant says of itself; the output is read back and compared with the truth.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.fleet.config import API_KEY, MAPPED, ChildSpec, Scenario, hashtag_id
from benchmarks.fleet.mapped import run_mapped
from benchmarks.fleet.measure import RssSampler, check_output, ledger_figures
from benchmarks.sandbox import SandboxProcess

REPO = Path(__file__).resolve().parents[2]
STOPPED = "stopped at the limit"


def contestant_env(base: dict[str, str], sandbox_url: str) -> dict[str, str]:
    """The connections (sandbox URL, fake key) and the import path every contestant gets."""
    env = dict(base)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), base.get("PYTHONPATH", "")) if p)
    conn = {"conn_type": "unifapi", "host": sandbox_url, "password": API_KEY, "extra": {"timeout": 60}}
    env["AIRFLOW_CONN_UNIFAPI_DEFAULT"] = json.dumps(conn)
    env["AIRFLOW_CONN_UNIFAPI_PACED"] = json.dumps({**conn, "extra": {"timeout": 60, "pace_requests": True}})
    env["AIRFLOW_CONN_UNIFAPI_HTTP"] = json.dumps({"conn_type": "http", "host": sandbox_url})
    return env


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """End a child's process group: SIGTERM, then SIGKILL after 20 s."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def run_child(spec: ChildSpec, env: dict[str, str], run_dir: Path, limit_s: float) -> dict[str, Any]:
    """A one-process contestant: its wall (launch to exit), state, and the peak RSS of its tree."""
    spec_path = run_dir / "spec.json"
    spec.dump(spec_path)
    log_path = run_dir / "child.log"
    cmd = [sys.executable, "-m", "benchmarks.fleet.child", str(spec_path)]
    started = time.monotonic()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=REPO
        )
        sampler = RssSampler({"process": lambda: [(proc.pid, True)]})
        with sampler:
            try:
                code = proc.wait(timeout=limit_s)
                state = "success" if code == 0 else f"failed (exit {code})"
            except subprocess.TimeoutExpired:
                state = STOPPED
            finally:
                stop_group(proc)
    wall = time.monotonic() - started
    tail = "" if state == "success" else log_path.read_text(errors="replace")[-1500:]
    return {
        "state": state,
        "wall_s": round(wall, 2),
        "startup_s": None,
        "slot_s": round(wall, 2),
        "rss_mb": sampler.peaks_mb(),
        "log_tail": tail,
    }


def run_cell(
    sandbox: SandboxProcess, scenario: Scenario, contestant: str, n: int, work: Path, env: dict[str, str]
) -> dict[str, Any]:
    """Reset the workspace, run ``contestant`` on the ``n`` hashtags, measure and check it."""
    settings = scenario.sandbox_settings(n)
    sandbox.reset(scenario.latency_ms, **settings)
    ids = [hashtag_id(i) for i in range(n)]
    run_dir = work / f"n{n}-{contestant}"
    run_dir.mkdir(parents=True, exist_ok=True)
    cenv = contestant_env(env, sandbox.url)
    started = time.monotonic()
    try:
        run = _run_contestant(contestant, scenario, ids, sandbox.url, run_dir, cenv)
    except Exception as exc:  # one broken cell is reported, the matrix goes on
        wall = round(time.monotonic() - started, 2)
        run = {"state": f"failed ({type(exc).__name__}: {exc})"[:300], "wall_s": wall, "startup_s": None}
        run.update(slot_s=wall, rss_mb={}, log_tail="")
    out = run_dir / "out"
    calls = sandbox.admin.get("/_sandbox/ledger", params={"since": 0}).raise_for_status().json()["calls"]
    # Kept per cell (time, status, hashtag) so a figure can be traced back to the calls behind it.
    compact = [(c["ts"], c["status"], c["hashtag_id"]) for c in calls]
    (run_dir / "ledger.json").write_text(json.dumps(compact))
    run.update(ledger_figures(calls, scenario.rate, run["wall_s"]))
    run["timeline_10s"] = timeline(calls)
    run.update(contestant=contestant, n=n, videos=sum(settings_sizes(settings)))
    _judge(run, sandbox, contestant, out, ids)
    return run


def _run_contestant(
    contestant: str, scenario: Scenario, ids: list[str], url: str, run_dir: Path, cenv: dict[str, str]
) -> dict[str, Any]:
    """Run one contestant to its end or the time limit; its state, wall, slot seconds and RSS."""
    limit = scenario.time_limit_s
    if contestant not in MAPPED:
        out = str(run_dir / "out")
        state = str(run_dir / "state")
        spec = ChildSpec(contestant, url, ids, out, scenario.concurrency, scenario.rate, work_dir=state)
        return run_child(spec, cenv, run_dir, limit)
    # The stack brings its own Airflow config: keep only the connections of ours.
    cenv = {k: v for k, v in cenv.items() if not k.startswith("AIRFLOW") or k.startswith("AIRFLOW_CONN_")}
    mapped = run_mapped(contestant, run_dir, ids, cenv, scenario.concurrency, limit)
    return {
        "state": mapped.state,
        "wall_s": round(mapped.wall_s, 2),
        "startup_s": round(mapped.startup_s, 2),
        "slot_s": round(mapped.slot_s, 2),
        "rss_mb": mapped.rss_mb,
        "log_tail": mapped.log_tail,
        "task_states": mapped.tis,
    }


def timeline(calls: list[dict[str, Any]], step: float = 10.0) -> list[int]:
    """Successful calls per ``step`` seconds from the first call: where a run ran below R."""
    if not calls:
        return []
    start = calls[0]["ts"]
    buckets = [0] * (int((calls[-1]["ts"] - start) // step) + 1)
    for c in calls:
        if c["status"] == 200:
            buckets[int((c["ts"] - start) // step)] += 1
    return buckets


def settings_sizes(settings: dict[str, Any]) -> list[int]:
    return [int(h["video_count"]) for h in settings["hashtags"]]


def _judge(run: dict[str, Any], sandbox: SandboxProcess, contestant: str, out: Path, ids: list[str]) -> None:
    """Check the output against the truth (a finished run only) and derive the per-record figures."""
    wall = run["wall_s"]
    run["records_per_s"] = round(run["records_served"] / wall, 1) if wall else 0.0
    if run["state"] != "success":
        run.update(correct=None, problem=None, credits_per_unique=None)
        return
    truth = {hid: _truth(sandbox, hid) for hid in ids}
    correct, problem, counts = check_output(contestant, out, truth)
    unique = sum(len(t) for t in truth.values())
    run.update(counts)
    run.update(
        correct=correct,
        problem=problem,
        unique_truth=unique,
        credits_per_unique=round(run["credits"] / unique, 4) if unique else None,
    )
    if not correct:
        run["state"] = "failed (wrong output)"


def _truth(sandbox: SandboxProcess, hid: str) -> list[str]:
    response = sandbox.admin.get(f"/_sandbox/hashtags/{hid}/truth").raise_for_status()
    return [str(i) for i in response.json()["ids"]]
