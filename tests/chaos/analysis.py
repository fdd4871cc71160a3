"""Checks of one finished run against the sandbox's ground truth and ledger, as figures.

Pure functions over plain data (ledger calls, truth ids, output ids, the summary), so what "lost",
"duplicate", "unaccounted" and "unjustified re-fetch" mean is written down once, here.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

PREFIX_STOPS = ("max_credits", "max_records", "max_pages", "balance_truncated", "min_balance")


def output_figures(ids: list[str], truth: list[str], stop_reason: str | None) -> dict[str, int]:
    """Records lost, duplicated, foreign or out of order in ``ids`` against ``truth``.

    A run that ended on ``exhausted`` must hold every truth id; one that ended on a budget may hold
    a prefix of the truth, and then every id up to the furthest one written.
    """
    position = {video_id: i for i, video_id in enumerate(truth)}
    seen: set[str] = set()
    duplicates = foreign = out_of_order = 0
    last = -1
    for video_id in ids:
        if video_id in seen:
            duplicates += 1
            continue
        seen.add(video_id)
        at = position.get(video_id)
        if at is None:
            foreign += 1
            continue
        if at < last:
            out_of_order += 1
        last = max(last, at)
    expected = len(truth) if stop_reason == "exhausted" else last + 1
    present = sum(1 for video_id in truth[:expected] if video_id in seen)
    return {
        "records": len(ids),
        "expected_records": expected,
        "records_lost": expected - present,
        "duplicates": duplicates,
        "foreign_records": foreign,
        "out_of_order": out_of_order,
    }


def read_known(path: Path) -> tuple[set[str], set[str]]:
    """Request ids of committed pages, and of those that were truncated by balance (see runner.on_page)."""
    committed: set[str] = set()
    truncated: set[str] = set()
    if not path.exists():
        return committed, truncated
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.split()
        if len(parts) != 2 or not re.fullmatch(r"unif_[0-9a-f]+", parts[0]):
            continue  # a line cut by SIGKILL; the checkpoint read after the kill covers that page
        committed.add(parts[0])
        if parts[1] == "1":
            truncated.add(parts[0])
    return committed, truncated


def money_figures(
    calls: Iterable[dict[str, Any]],
    summary: dict[str, Any],
    committed: set[str],
    truncated: set[str],
    max_credits: int | None,
) -> dict[str, Any]:
    """Ledger credits against the summary, the budget, and which pages were paid twice.

    - ``credits_charged`` must equal the ledger's charge for the pages the run committed, exactly;
    - the ledger total must not pass ``credits_charged + possibly_billed_credits`` (the summary's worst case);
    - with ``max_credits``, neither the ledger nor that worst case may pass it;
    - a page (ledger offset) may be paid twice only when the earlier payment was not committed (in
      flight at a kill, billed but unreadable, a lost response) or was a page truncated by balance.
    """
    paid = [c for c in calls if c["endpoint"] == "videos" and (c["credits_charged"] or 0) > 0]
    ledger = sum(c["credits_charged"] for c in paid)
    committed_credits = sum(c["credits_charged"] for c in paid if c["request_id"] in committed)
    unknown_billed = ledger - committed_credits
    charged = int(summary["credits_charged"])
    possibly_billed = int(summary["possibly_billed_credits"])
    miscounted = abs(committed_credits - charged)
    beyond_worst_case = max(0, ledger - charged - possibly_billed)
    breach = 0
    if max_credits is not None and (ledger > max_credits or charged + possibly_billed > max_credits):
        breach = 1
    by_offset: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for call in paid:
        by_offset[call["offset"]].append(call)
    refetched = unjustified = 0
    unjustified_detail = []
    for offset, group in by_offset.items():
        for earlier in group[:-1]:
            refetched += 1
            if earlier["request_id"] in committed and earlier["request_id"] not in truncated:
                unjustified += 1
                unjustified_detail.append({"offset": offset, "request_id": earlier["request_id"]})
    return {
        "ledger_credits": ledger,
        "credits_charged": charged,
        "possibly_billed_credits": possibly_billed,
        "unknown_billed_credits": unknown_billed,
        "credits_miscounted": miscounted,
        "credits_beyond_worst_case": beyond_worst_case,
        "credits_unaccounted": miscounted + beyond_worst_case,
        "budget_breaches": breach,
        "refetched_pages": refetched,
        "unjustified_refetches": unjustified,
        "unjustified_detail": unjustified_detail[:5],
        "paid_calls": len(paid),
    }


def fault_counts(view: dict[str, Any], calls: Iterable[dict[str, Any]]) -> dict[str, int]:
    """Faults injected by kind: the plan's per-rule ``fired`` counters (by the rule's ``note``), plus
    the sandbox's own rate-limit 429s and 402s (ledger calls with no fault)."""
    counts: dict[str, int] = {}
    for rule, fired in zip(view.get("plan", []), view.get("fired", []), strict=False):
        if fired:
            label = rule.get("note") or rule.get("kind")
            counts[label] = counts.get(label, 0) + int(fired)
    for call in calls:
        if call.get("fault") is None and call.get("status") in (402, 429):
            label = "402 balance empty" if call["status"] == 402 else "429 rate limit"
            counts[label] = counts.get(label, 0) + 1
    return counts


def key_hits(key: str, texts: Iterable[Any]) -> int:
    """How many of ``texts`` (str, bytes or JSON-able) contain the key or its secret part."""
    secret = key.split("_")[-1]
    hits = 0
    for text in texts:
        if isinstance(text, (bytes, bytearray)):
            text = bytes(text).decode("utf-8", "replace")
        elif not isinstance(text, str):
            text = json.dumps(text, default=str)
        if key in text or secret in text:
            hits += 1
    return hits


def folder_texts(folder: Path) -> list[bytes]:
    """Every file under ``folder``, gzip parts decompressed (what a key scan must read)."""
    import gzip

    out = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        data = path.read_bytes()
        if path.name.endswith(".gz"):
            # a part cut by a kill is scanned as it is
            with contextlib.suppress(OSError, EOFError):
                data = gzip.decompress(data)
        out.append(data)
    return out
