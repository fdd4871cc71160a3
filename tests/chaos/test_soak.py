"""Soak: one million records under a 10 % fault rate and a SIGKILL, exactly once, in flat memory.

Only under ``make chaos`` (``CHAOS_SOAK=1``; it takes a few minutes): the test function does not
exist otherwise, so the default run neither runs nor skips it. Each try is a child process (the
task process) whose RSS is sampled every 100 pages through the collector's ``on_page`` hook.
"""

from __future__ import annotations

import gzip
import json
import random
import re
from pathlib import Path
from typing import Any

import pytest

from tests.chaos import report, settings
from tests.chaos.analysis import fault_counts, money_figures, output_figures, read_known
from tests.chaos.cases import CLIENT
from tests.chaos.harness import checkpoint_request_id, read_checkpoint, sigkill_try
from tests.chaos.runner import TryOutcome, TrySpec
from tests.conftest import API_KEY

pytestmark = pytest.mark.chaos

HASHTAG = "1000000"  # the sandbox's "bigdata": 1,000,000 videos
RECORDS = 1_000_000
#: RSS may grow by the compact dedupe set (~8 bytes an id: 8 MB at 1M) and allocator noise, not
#: with the records: keeping each record (~1 KB) or a Python set of ids (~90 B an id) would pass it.
MAX_GROWTH_MB = 48
_ID = re.compile(rb'^\{"id":"([^"]+)"')


def soak_faults(rng: random.Random) -> list[dict[str, Any]]:
    """About 10 % of calls fail; the client rides out most of them, a few end the try (billed bodies)."""
    table = [
        ("429 Retry-After: 1", 0.01, {"kind": "error", "status": 429, "retry_after": 1}),
        ("429 Retry-After: 0", 0.01, {"kind": "error", "status": 429, "retry_after": 0}),
        ("429 without Retry-After", 0.015, {"kind": "error", "status": 429}),
        ("500 internal_error", 0.015, {"kind": "error", "status": 500}),
        ("502 upstream_error", 0.008, {"kind": "error", "status": 502}),
        ("502 proxy HTML", 0.007, {"kind": "error", "status": 502, "html": True}),
        ("503 upstream_unavailable", 0.015, {"kind": "error", "status": 503}),
        ("504 proxy HTML", 0.005, {"kind": "error", "status": 504}),
        ("connection reset (not billed)", 0.01, {"kind": "reset"}),
        ("connection reset (billed)", 0.004, {"kind": "reset", "billed": True}),
        ("timeout (slow answer)", 0.0005, {"kind": "slow", "delay_s": 1.2, "times": 6}),
        ("malformed body (billed)", 0.0005, {"kind": "malformed", "times": 3}),
        ("truncated body (billed)", 0.0005, {"kind": "truncated", "times": 3}),
    ]
    return [
        {**rule, "path": "videos", "rate": rate, "seed": rng.randrange(2**31), "note": label}
        for label, rate, rule in table
    ]


def fast_ids(folder: Path) -> list[str]:
    """Ids of a complete jsonl.gz run folder, read without parsing every record."""
    manifest = json.loads((folder / "_manifest.json").read_text())
    ids: list[str] = []
    for part in manifest["parts"]:
        with gzip.open(folder / part["name"], "rb") as lines:
            for line in lines:
                match = _ID.match(line)
                ids.append(match.group(1).decode() if match else str(json.loads(line)["id"]))
    return ids


def run_rss(folder: Path) -> dict[str, float]:
    """Across every try of the run: the first try's settled RSS against the highest RSS any try
    reached (a later try holds the dedupe ids of everything before it: 1M ids at the end)."""
    tries = []
    for n in range(1, 100):
        path = folder / f"rss{n}.txt"
        if path.exists():
            rows = [
                tuple(int(v) for v in line.split())
                for line in path.read_text().splitlines()
                if len(line.split()) == 3
            ]
            if rows:
                tries.append(rows)
    if not tries:
        return {}
    first = tries[0][len(tries[0]) // 4][1]
    peak = max(row[2] for rows in tries for row in rows)
    return {
        "rss_first_try_mb": round(first / 1024, 1),
        "rss_run_peak_mb": round(peak / 1024, 1),
        "rss_run_growth_mb": round((peak - first) / 1024, 1),
    }


def rss_growth(path: Path) -> dict[str, float]:
    """RSS of the longest try: at a quarter of its pages, its peak after that, and the growth."""
    samples = [
        tuple(int(v) for v in line.split())
        for line in path.read_text().splitlines()
        if len(line.split()) == 3
    ]
    if len(samples) < 8:
        return {"rss_samples": len(samples)}
    settled = samples[len(samples) // 4][1]
    peak = max(s[1] for s in samples[len(samples) // 4 :])
    return {
        "rss_samples": len(samples),
        "rss_settled_mb": round(settled / 1024, 1),
        "rss_peak_mb": round(peak / 1024, 1),
        "rss_growth_mb": round((peak - settled) / 1024, 1),
        "hwm_mb": round(max(s[2] for s in samples) / 1024, 1),
    }


if settings.long_mode():

    @pytest.mark.timeout(1800)
    def test_soak_one_million_records_under_faults(sandbox, tmp_path) -> None:
        rng = random.Random(20240601)
        sandbox.reset(balance=5_000_000)
        sandbox.faults(*soak_faults(rng))
        out = tmp_path / "out"
        outcomes: list[TryOutcome] = []
        kills = 0
        best_rss: dict[str, float] = {}
        for attempt in range(1, 31):
            spec = TrySpec(
                base_url=sandbox.url,
                hashtag_id=HASHTAG,
                folder_url=f"file://{out}",
                page_size=50,
                client=dict(CLIENT),
                known_path=str(tmp_path / "committed.txt"),
                rss_path=str(tmp_path / f"rss{attempt}.txt"),
                rss_every=100,
            )
            # one SIGKILL, in the first try that starts past 30 % of the records, 500 calls into it
            progress = (read_checkpoint(out) or {}).get("records", 0)
            kill_at = 500 if kills == 0 and progress >= RECORDS * 3 // 10 else 10**9
            outcome, killed = sigkill_try(sandbox, spec, tmp_path, f"try{attempt}", API_KEY, kill_at, rng)
            outcomes.append(outcome)
            if killed:
                kills += 1
                last = checkpoint_request_id(out)
                if last:
                    with open(tmp_path / "committed.txt", "a", encoding="utf-8") as known:
                        known.write(f"{last} 0\n")
            rss = (
                rss_growth(tmp_path / f"rss{attempt}.txt")
                if (tmp_path / f"rss{attempt}.txt").exists()
                else {}
            )
            if rss.get("rss_samples", 0) > best_rss.get("rss_samples", 0):
                best_rss = rss
            if outcome.outcome == "done":
                break
        final = outcomes[-1]
        calls = sandbox.ledger()["calls"]
        view = sandbox.admin.get("/_sandbox/faults").json()
        figures: dict[str, Any] = {
            "tries": len(outcomes),
            "kills_sigkill": kills,
            "calls": sum(1 for c in calls if c["endpoint"] == "videos"),
            "faults": fault_counts(view, calls),
            "untyped_errors": sum(o.outcome == "untyped" for o in outcomes),
            "unfinished": int(final.outcome != "done"),
            **best_rss,
            **run_rss(tmp_path),
        }
        if final.outcome == "done" and final.summary is not None:
            ids = fast_ids(out)
            truth = sandbox.truth(HASHTAG)
            assert len(truth) == RECORDS
            figures.update(output_figures(ids, truth, final.summary["stop_reason"]))
            committed, truncated = read_known(tmp_path / "committed.txt")
            figures.update(money_figures(calls, final.summary, committed, truncated, None))
        report.record("soak", figures)
        print(f"soak figures: {json.dumps(figures)}")
        assert figures["unfinished"] == 0 and figures["untyped_errors"] == 0, figures
        assert (
            figures["records"] == RECORDS and figures["records_lost"] == 0 and figures["duplicates"] == 0
        ), figures
        assert figures["credits_unaccounted"] == 0 and figures["unjustified_refetches"] == 0, figures
        assert kills == 1
        assert figures.get("rss_samples", 0) >= 8, "no try ran long enough to judge its memory"
        assert figures["rss_growth_mb"] <= MAX_GROWTH_MB, (
            f"memory grew with the records within a try: {figures}"
        )
        assert figures["rss_run_growth_mb"] <= MAX_GROWTH_MB, (
            f"memory grew with the records over the run: {figures}"
        )
