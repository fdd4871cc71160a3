"""Runs a :class:`ChaosCase` to the end, try after try, the way Airflow retries would, then checks it.

A "try" is one task process: in-process (fast, with simulated kills at exact points) or a child
process that the parent SIGKILLs once the sandbox has seen the chosen call of that try, after a
seeded random delay so the kill lands anywhere in the page's processing (mid-call, while staging,
while compacting, while saving the checkpoint). The retry is a new try on the same output folder.
"""

from __future__ import annotations

import io
import json
import logging
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.chaos.analysis import (
    fault_counts,
    folder_texts,
    key_hits,
    money_figures,
    output_figures,
    read_known,
)
from tests.chaos.cases import CLIENT, ChaosCase, Kill
from tests.chaos.runner import KillAt, TryOutcome, TrySpec, run_try

MAX_TRIES = 150
REPO = Path(__file__).resolve().parents[2]


@dataclass
class CaseRun:
    """What happened while running a case (inputs of the checks)."""

    outcomes: list[TryOutcome] = field(default_factory=list)
    kills_sigkill: int = 0
    kills_simulated: int = 0
    balance_stops: int = 0
    texts: list[Any] = field(default_factory=list)  # everything to scan for the key
    final: TryOutcome | None = None


def child_env(api_key: str) -> dict[str, str]:
    env = os.environ.copy()
    env["UNIFAPI_CHAOS_API_KEY"] = api_key
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def start_child(
    spec: Any, workdir: Path, name: str, api_key: str, module: str = "tests.chaos.child"
) -> tuple[subprocess.Popen[bytes], Path, Path]:
    """Start ``python -m <module>`` (a collector try, or ``tests.chaos.batch_child``) on ``spec``
    (anything with ``to_json()``); returns the process, its result and log paths."""
    spec_path = workdir / f"{name}.spec.json"
    result_path = workdir / f"{name}.result.json"
    log_path = workdir / f"{name}.log"
    spec_path.write_text(spec.to_json(), encoding="utf-8")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", module, str(spec_path), str(result_path)],
            cwd=REPO,
            env=child_env(api_key),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the kill takes everything it started
        )
    return proc, result_path, log_path


def sigkill_try(
    sandbox: Any, spec: TrySpec, workdir: Path, name: str, api_key: str, nth: int, rng: random.Random
) -> tuple[TryOutcome, bool]:
    """Run a try in a child and SIGKILL it after its ``nth`` video call reached the sandbox."""

    def api_calls() -> int:
        # totals only (cheap at any ledger size); every API call of a chaos run is a video call
        return int(sandbox.ledger(since=10**12)["totals"]["calls"])

    start = api_calls()
    proc, result_path, log_path = start_child(spec, workdir, name, api_key)
    killed = False
    deadline = time.monotonic() + 1200
    try:
        while proc.poll() is None:
            made = api_calls() - start
            if made >= nth:
                time.sleep(rng.uniform(0, 0.02))  # anywhere in the page's processing
                os.killpg(proc.pid, signal.SIGKILL)
                killed = True
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"child {name} neither finished nor reached call {nth}")
            time.sleep(0.002 if nth - made < 20 else 0.02)
    finally:
        if proc.poll() is None and not killed:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    if killed and proc.returncode == -signal.SIGKILL:
        return TryOutcome("killed", error_text=log_path.read_text(errors="replace")), True
    if result_path.exists():
        outcome = TryOutcome.from_json(result_path.read_text(encoding="utf-8"))
    else:
        outcome = TryOutcome("untyped", error_type=f"child exit {proc.returncode}")
    outcome.error_text += "\n" + log_path.read_text(errors="replace")
    return outcome, False


def read_checkpoint(folder: Path) -> dict[str, Any] | None:
    """The last complete commit of ``_checkpoint.json`` (one JSON document, or a journal of JSON
    lines whose torn last line a kill may have left), or ``None``."""
    path = folder / "_checkpoint.json"
    if not path.exists():
        return None
    data = path.read_bytes()
    try:
        return json.loads(data)
    except ValueError:
        pass
    for line in reversed(data.split(b"\n")[:-1]):  # what follows the last newline is torn
        try:
            return json.loads(line)
        except ValueError:
            continue
    return None


def checkpoint_request_id(folder: Path) -> str | None:
    """``last_request_id`` of the checkpoint on disk: a page committed just before a kill, whose
    ``on_page`` line may not have been written."""
    checkpoint = read_checkpoint(folder)
    return None if checkpoint is None else checkpoint.get("last_request_id")


def run_case(case: ChaosCase, sandbox: Any, workdir: Path, api_key: str) -> tuple[CaseRun, TrySpec]:
    """Reset the sandbox for ``case`` and run tries until the collector returns a summary."""
    sandbox.reset(
        seed=case.seed,
        balance=case.start_balance,
        hashtags=[{"id": case.hashtag_id, "name": f"chaos{case.seed}", "video_count": case.video_count}],
        **case.sandbox_settings,
    )
    sandbox.faults(*case.faults)
    out = workdir / "out"
    spec = TrySpec(
        base_url=sandbox.url,
        hashtag_id=case.hashtag_id,
        folder_url=f"file://{out}",
        output_format=case.output_format,
        page_size=case.page_size,
        records_per_part=case.records_per_part,
        max_credits=case.max_credits,
        min_balance=case.min_balance,
        max_records=case.max_records,
        fail_on_low_balance=case.fail_on_low_balance,
        client=dict(CLIENT),
        known_path=str(workdir / "committed.txt"),
    )
    rng = random.Random(case.seed * 7919)
    kills: list[Kill] = list(case.kills)
    top_ups = list(case.top_ups)
    run = CaseRun()
    log_buffer = io.StringIO()
    handler = logging.StreamHandler(log_buffer)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    logger = logging.getLogger(f"chaos.case{case.seed}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    client_log = logging.getLogger("airflow_provider_unifapi")
    client_log.addHandler(handler)
    try:
        for attempt in range(1, MAX_TRIES + 1):
            kill = kills[0] if kills else None
            if kill is not None and kill.mode == "sigkill":
                outcome, fired = sigkill_try(sandbox, spec, workdir, f"try{attempt}", api_key, kill.nth, rng)
                run.kills_sigkill += fired
            else:
                outcome = run_try(spec, api_key, KillAt(kill.mode, kill.nth) if kill else None, logger=logger)
                fired = outcome.outcome == "killed"
                run.kills_simulated += fired
            if fired:
                kills.pop(0)
                # the page committed just before the kill may have missed its on_page line
                last = checkpoint_request_id(out)
                if last:
                    with open(spec.known_path, "a", encoding="utf-8") as known:  # type: ignore[arg-type]
                        known.write(f"{last} 0\n")
            run.outcomes.append(outcome)
            run.texts.append(outcome.error_text)
            if (out / "_checkpoint.json").exists():
                run.texts.append((out / "_checkpoint.json").read_bytes())
            if outcome.outcome == "done":
                run.final = outcome
                break
            if outcome.outcome == "stopped":
                run.balance_stops += 1
                if sandbox.balance() < case.page_size:
                    sandbox.add_balance(top_ups.pop(0) if top_ups else 10_000_000)
    finally:
        logger.removeHandler(handler)
        client_log.removeHandler(handler)
    run.texts.append(log_buffer.getvalue())
    return run, spec


def check_case(
    case: ChaosCase, sandbox: Any, workdir: Path, run: CaseRun, spec: TrySpec, api_key: str
) -> dict[str, Any]:
    """Figures of a finished case (see :mod:`tests.chaos.analysis` for what each one means)."""
    from upath import UPath

    from airflow_provider_unifapi.storage.run_folder import iter_run_records

    ledger = sandbox.ledger()
    calls = ledger["calls"]
    view = sandbox.admin.get("/_sandbox/faults").raise_for_status().json()
    outcomes = Counter(o.outcome for o in run.outcomes)
    figures: dict[str, Any] = {
        "seed": case.seed,
        "video_count": case.video_count,
        "page_size": case.page_size,
        "output_format": case.output_format,
        "max_credits": case.max_credits,
        "min_balance": case.min_balance,
        "tries": len(run.outcomes),
        "outcomes": dict(outcomes),
        "kills_sigkill": run.kills_sigkill,
        "kills_simulated": run.kills_simulated,
        "balance_stops": run.balance_stops,
        "calls": sum(1 for c in calls if c["endpoint"] == "videos"),
        "faults": fault_counts(view, calls),
        "untyped_errors": outcomes.get("untyped", 0),
        "untyped_detail": [o.error_text[-2000:] for o in run.outcomes if o.outcome == "untyped"][:2],
        "unfinished": int(run.final is None),
    }
    out = workdir / "out"
    texts = [*list(run.texts), json.dumps(ledger)]
    if run.final is None or run.final.summary is None:
        figures.update({"records_lost": 0, "duplicates": 0, "key_hits": key_hits(api_key, texts)})
        return figures
    summary = run.final.summary
    figures["stop_reason"] = summary["stop_reason"]
    records = list(iter_run_records(UPath(f"file://{out}")))
    ids = [str(r["id"]) for r in records]
    figures.update(output_figures(ids, sandbox.truth(case.hashtag_id), summary["stop_reason"]))
    committed, truncated = read_known(Path(spec.known_path or ""))
    figures.update(money_figures(calls, summary, committed, truncated, case.max_credits))
    # max_records is exact: a run that stopped on it holds exactly that many records
    figures["max_records"] = case.max_records
    figures["records_lost"] += int(
        summary["stop_reason"] == "max_records" and figures["records"] != case.max_records
    )
    if case.min_balance is not None:
        # the workspace balance after every charge, straight from the ledger, against the floor
        lowest = min((c["balance_after"] for c in calls if (c["credits_charged"] or 0) > 0), default=None)
        figures["lowest_balance"] = lowest
        figures["min_balance"] = case.min_balance
        figures["budget_breaches"] += int(lowest is not None and lowest < case.min_balance)
    texts += [summary, records, *folder_texts(out), *(p.read_bytes() for p in workdir.glob("*.log"))]
    figures["key_hits"] = key_hits(api_key, texts)
    return figures


PROMISES = (
    ("unfinished", "the run did not finish within the tries allowed"),
    ("untyped_errors", "a try ended in an exception outside the typed contract"),
    ("records_lost", "records of the ground truth are missing from the output"),
    ("duplicates", "records were written twice"),
    ("foreign_records", "records not in the ground truth were written"),
    ("out_of_order", "records were written out of the API's order"),
    ("budget_breaches", "a budget was crossed (credits past max_credits, or the balance below min_balance)"),
    ("credits_unaccounted", "ledger credits differ from what the summary reports"),
    ("unjustified_refetches", "a page committed before the last checkpoint was paid for again"),
    ("key_hits", "the API key appeared in an artifact"),
)


def assert_promises(figures: dict[str, Any]) -> None:
    broken = [f"{message} ({name}={figures.get(name)})" for name, message in PROMISES if figures.get(name)]
    assert not broken, (
        f"seed {figures.get('seed')}: " + "; ".join(broken) + f"\nfigures: {json.dumps(figures, default=str)}"
    )
