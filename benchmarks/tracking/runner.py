"""One cell: a contestant over every simulated day of one entry model, each day in a child process.

The cell starts from a reset sandbox (same seed, same world, clean ledger, clock at day 0); after
each day the harness reads the ledger's credits and the contestant's output, then moves the clock
a day (not after the last day: the run clocks are then exactly the sandbox's observed clocks).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.fleet.measure import RssSampler
from benchmarks.fleet.runner import stop_group
from benchmarks.sandbox import SandboxProcess
from benchmarks.tracking.config import Scenario
from benchmarks.tracking.contestant import DayContext, Delivery, Entry, load
from benchmarks.tracking.figures import cell_figures
from benchmarks.tracking.truth import read_truth

REPO = Path(__file__).resolve().parents[2]


def child_env() -> dict[str, str]:
    """No inherited Airflow config; the repository on the import path; dlt quiet and offline."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env["RUNTIME__DLTHUB_TELEMETRY"] = "false"
    env["RUNTIME__LOG_LEVEL"] = "ERROR"
    return env


def _measured(
    cmd: list[str], env: dict[str, str], out: Path, log_path: Path, limit_s: float
) -> dict[str, Any]:
    """Run ``cmd`` (which writes ``out``): state, wall (launch to exit), peak RSS of its tree (sampled)
    or its own VmHWM, whichever is higher, the JSON it wrote, and its log's tail if it failed."""
    started = time.monotonic()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=REPO
        )
        sampler = RssSampler({"tree": lambda: [(proc.pid, True)]}, interval=0.2)
        with sampler:
            try:
                code = proc.wait(timeout=limit_s)
                state = "success" if code == 0 and out.exists() else f"failed (exit {code})"
            except subprocess.TimeoutExpired:
                state = "stopped at the time limit"
            finally:
                stop_group(proc)
    wall = time.monotonic() - started
    result: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
    rss_mb = max(sampler.peaks_mb()["tree"], result.get("hwm_kb", 0) / 1024)
    tail = "" if state == "success" else log_path.read_text(errors="replace")[-1500:]
    return {
        "state": state,
        "wall_s": round(wall, 2),
        "rss_mb": round(rss_mb, 1),
        "result": result,
        "log_tail": tail,
    }


def run_child(ctx: DayContext, env: dict[str, str], logs: Path, limit_s: float) -> dict[str, Any]:
    """One contestant-day in its own process."""
    spec, out, log_path = (logs / f"day{ctx.day}.{k}" for k in ("ctx.json", "out.json", "log"))
    spec.write_text(json.dumps(ctx.as_json()))
    cmd = [sys.executable, "-m", "benchmarks.tracking.child", str(spec), str(out)]
    return _measured(cmd, env, out, log_path, limit_s)


def probe_index(entry: Entry, ids: int, work: Path, limit_s: float) -> dict[str, Any] | None:
    """The peak RSS of a process holding ``ids`` ids in the contestant's index (``None``: no index)."""
    if not hasattr(load(entry.module), "index_probe"):
        return None
    folder = work / f"probe-{entry.name}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    out = folder / "out.json"
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.tracking.child",
        "--probe",
        entry.module,
        str(ids),
        str(folder),
        str(out),
    ]
    run = _measured(cmd, child_env(), out, folder / "log", limit_s)
    return {
        "ids": ids,
        "state": run["state"],
        "rss_mb": run["rss_mb"],
        "wall_s": run["wall_s"],
        **run["result"],
    }


def _day_row(day: int, run: dict[str, Any], credits: int, delivery: Delivery | None) -> dict[str, Any]:
    row = {
        "day": day,
        "state": run["state"],
        "wall_s": run["wall_s"],
        "rss_mb": run["rss_mb"],
        "credits": credits,
    }
    result = run["result"]
    row.update(index_bytes=result.get("index_bytes"), index_ids=result.get("index_ids"))
    if delivery is not None:
        row.update(
            delivered=sum(len(s) for s in delivery.ids.values()),
            rows_added=delivery.rows_added,
            rows_total=delivery.rows_total,
            distinct_total=delivery.distinct_total,
        )
    return row


def run_cell(
    sandbox: SandboxProcess, scenario: Scenario, entry: Entry, entry_rank: str, work: Path
) -> dict[str, Any]:
    """Reset the sandbox, run ``entry`` day after day, judge it against the truth."""
    settings = scenario.sandbox_settings(entry_rank)
    sandbox.reset(settings.pop("latency_ms"), **settings)
    cell = work / f"{entry_rank}-{entry.name}"
    shutil.rmtree(cell, ignore_errors=True)
    (cell / "state").mkdir(parents=True)
    (cell / "logs").mkdir()
    module, env, ids = load(entry.module), child_env(), scenario.ids()
    days: list[dict[str, Any]] = []
    delivered: list[dict[str, set[str]]] = []
    spent = 0
    for day in range(scenario.days):
        if day:
            sandbox.admin.post("/_sandbox/clock", json={"advance_days": 1}).raise_for_status()
        ctx = DayContext(
            entry.name, entry.module, day, ids, sandbox.url, str(cell / "state"), dict(entry.params)
        )
        run = run_child(ctx, env, cell / "logs", scenario.time_limit_s)
        total = int(sandbox.totals()["credits_charged"])
        delivery = module.delivered(ctx) if run["state"] == "success" else None
        days.append(_day_row(day, run, total - spent, delivery))
        spent = total
        print(
            f"tracking: {entry_rank} {entry.name} day {day}: {run['state']}, {run['wall_s']:.1f} s, "
            f"{days[-1]['credits']:,} credits",
            flush=True,
        )
        if delivery is None:
            return {
                "contestant": entry.name,
                "entry_rank": entry_rank,
                "state": run["state"],
                "problem": run["log_tail"],
                "days": days,
            }
        delivered.append(delivery.ids)
    truth = read_truth(sandbox.admin, ids, scenario.days)
    figures = cell_figures(truth, days, delivered)
    return {"contestant": entry.name, "entry_rank": entry_rank, "state": "success", **figures, "days": days}
