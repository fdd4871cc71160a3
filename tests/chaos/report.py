"""Figures of every chaos run in this session, aggregated and written as JSON for RELIABILITY.md.

Tests call :func:`record` with one dict of figures per run (before asserting on them, so a failing
run is in the report too). At the end of the session ``conftest.py`` writes the report to the path in
``CHAOS_REPORT`` (if set) and prints a short summary.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

#: Figures that must be 0 after every run; a non-zero one is a broken promise of the package.
MUST_BE_ZERO = (
    "records_lost",
    "duplicates",
    "budget_breaches",
    "credits_unaccounted",
    "unjustified_refetches",
    "untyped_errors",
    "key_hits",
    "unfinished",
)
#: Counters summed over runs.
SUMMED = (
    "tries",
    "kills_sigkill",
    "kills_simulated",
    "records",
    "calls",
    "ledger_credits",
    "refetched_pages",
    "balance_stops",
    "rate_limited_retries",
    *MUST_BE_ZERO,
)

_lock = threading.Lock()
_runs: list[dict[str, Any]] = []
_started = time.time()


def record(suite: str, figures: dict[str, Any]) -> None:
    """Add one run's figures (``faults`` is a dict kind -> count) under ``suite``."""
    with _lock:
        _runs.append({"suite": suite, **figures})


def runs() -> list[dict[str, Any]]:
    with _lock:
        return list(_runs)


def totals(items: list[dict[str, Any]]) -> dict[str, Any]:
    faults: Counter[str] = Counter()
    out: dict[str, Any] = {"runs": len(items)}
    for name in SUMMED:
        out[name] = sum(int(item.get(name) or 0) for item in items)
    for item in items:
        faults.update(item.get("faults") or {})
    out["faults"] = dict(sorted(faults.items()))
    out["faults_total"] = sum(faults.values())
    return out


def build() -> dict[str, Any]:
    items = runs()
    suites = sorted({item["suite"] for item in items})
    import airflow

    return {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "duration_s": round(time.time() - _started, 1),
        "environment": {
            "python": sys.version.split()[0],
            "airflow": airflow.__version__,
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "settings": {
            "CHAOS_RUNS": os.environ.get("CHAOS_RUNS"),
            "CHAOS_SOAK": os.environ.get("CHAOS_SOAK"),
        },
        "totals": totals(items),
        "suites": {suite: totals([i for i in items if i["suite"] == suite]) for suite in suites},
        "runs": items,
    }


def write(path: str) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(build(), indent=2, default=str) + "\n", encoding="utf-8")
    return target


def summary_lines() -> list[str]:
    items = runs()
    if not items:
        return []
    t = totals(items)
    lines = [
        f"chaos: {t['runs']} runs, {t['tries']} tries, {t['kills_sigkill']} SIGKILLs + "
        f"{t['kills_simulated']} simulated kills, {t['faults_total']} faults injected, "
        f"{t['records']} records, {t['ledger_credits']} credits on the ledger",
        "chaos: faults by kind: " + ", ".join(f"{k}={v}" for k, v in t["faults"].items()),
        "chaos: " + ", ".join(f"{name}={t[name]}" for name in MUST_BE_ZERO),
    ]
    for suite in sorted({str(item["suite"]) for item in items if str(item["suite"]).startswith("batch-")}):
        mine = [item for item in items if item["suite"] == suite]
        b = totals(mine)
        lines.append(
            f"chaos: {suite}: {b['runs']} runs of {sum(int(i.get('hashtags') or 0) for i in mine)} hashtags, "
            f"{b['tries']} tries, {b['kills_sigkill']} SIGKILLs, "
            f"{sum(int(i.get('squeezes') or 0) for i in mine)} balance squeezes, {b['faults_total']} faults, "
            f"{b['records']} records; " + ", ".join(f"{name}={b[name]}" for name in MUST_BE_ZERO)
        )
    return lines
