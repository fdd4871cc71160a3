"""Full operator runs for the chaos suite: real task runs through ``dag.test()``, SIGKILL of the task
process, and "retry" as a new run on the same output folder.

These are slower than collector tries (an Airflow task run each), so they check what only the
operator adds: the Airflow retry loop, AirflowException vs AirflowFailException, the task log's
money lines, the XCom summary, and resume after the real task process was killed.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pendulum

#: kinds whose charge the client cannot know (billed, then the answer is lost or unreadable)
UNKNOWN_BILLED_FAULTS = ("malformed", "truncated", "shape", "reset", "slow")
DONE_LINE = re.compile(r"(\d+) credits charged \(\+(\d+) possibly billed\)")


def kill_task_process(
    sandbox: Any, dag_file: Path, nth_call: int, logical_date: Any, rng: random.Random, log_path: Path
) -> int | None:
    """Run the DAG's task in a child process (``dag_test``) and SIGKILL its process group once the
    sandbox has seen ``nth_call`` more video calls. Returns the ledger seq at the kill, or ``None``
    when the run ended first."""
    start = sandbox.ledger(since=10**12)["totals"]["calls"]
    code = (
        "import importlib.util, pendulum;"
        f"spec = importlib.util.spec_from_file_location('chaoskilldag', {str(dag_file)!r});"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m);"
        "from airflow_provider_unifapi._compat import dag_test;"
        f"dag_test(m.dag, pendulum.parse({logical_date.isoformat()!r}))"
    )
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", code],
            env=os.environ.copy(),
            start_new_session=True,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 240
    try:
        while proc.poll() is None:
            calls = [c for c in sandbox.ledger(since=start)["calls"] if c["endpoint"] == "videos"]
            if len(calls) >= nth_call:
                time.sleep(rng.uniform(0, 0.02))
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=60)
                return int(sandbox.ledger(since=10**12)["totals"]["calls"])
            assert time.monotonic() < deadline, "the task process never reached the call to kill it at"
            time.sleep(0.005)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
    return None


def coarse_money(
    calls: list[dict[str, Any]], summary: dict[str, Any], max_credits: int | None, kill_seqs: list[int]
) -> dict[str, Any]:
    """Money checks from the ledger alone (the operator has no per-page hook to say what it committed).

    ``credits_charged <= ledger <= credits_charged + possibly_billed_credits``; equality when no call
    could have been billed without the client knowing (no billed fault fired, no kill); and a page
    is paid twice only after a billed fault, a kill in flight, or a page that drained the balance.
    """
    paid = [c for c in calls if c["endpoint"] == "videos" and (c["credits_charged"] or 0) > 0]
    ledger = sum(c["credits_charged"] for c in paid)
    charged, possibly_billed = int(summary["credits_charged"]), int(summary["possibly_billed_credits"])
    unknown = [c for c in paid if c["fault"] in UNKNOWN_BILLED_FAULTS or c["status"] != 200]
    in_flight = set()
    for seq in kill_seqs:
        before = [c for c in paid if c["seq"] <= seq]
        if before:
            in_flight.add(before[-1]["seq"])
    unaccounted = max(0, charged - ledger) + max(0, ledger - charged - possibly_billed)
    if not unknown and not kill_seqs:
        unaccounted += abs(ledger - charged)
    breach = int(
        max_credits is not None and (ledger > max_credits or charged + possibly_billed > max_credits)
    )
    groups: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for call in paid:
        groups[call["offset"]].append(call)
    refetched = unjustified = 0
    for group in groups.values():
        for earlier in group[:-1]:
            refetched += 1
            justified = (
                earlier["fault"] in UNKNOWN_BILLED_FAULTS
                or earlier["seq"] in in_flight
                or earlier["balance_after"] == 0
            )
            unjustified += not justified
    return {
        "ledger_credits": ledger,
        "credits_charged": charged,
        "possibly_billed_credits": possibly_billed,
        "credits_unaccounted": unaccounted,
        "budget_breaches": breach,
        "refetched_pages": refetched,
        "unjustified_refetches": unjustified,
    }


def done_line_credits(log_text: str) -> tuple[int, int] | None:
    """(charged, possibly billed) of the last "Done with hashtag" line of a task log."""
    found = DONE_LINE.findall(log_text)
    return (int(found[-1][0]), int(found[-1][1])) if found else None


def next_date(n: int) -> Any:
    # distinct logical dates per run of one DAG (Airflow 2.11 cannot reuse one in dag.test())
    return pendulum.datetime(2024, 2, 1, tz="UTC").add(minutes=n)
