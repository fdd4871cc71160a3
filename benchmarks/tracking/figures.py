"""A cell's figures from the truth, the days' ledger credits and what the contestant delivered.

- *credits per new video*: credits of runs 1 .. D-1 (run 0 is the first pull of the backlog, shown
  apart) over the new videos that were collectable (visible at some run clock);
- *recall that day*: of the new videos of run r visible at run r's clock, the share delivered by
  run r; *eventually*: of those collectable, the share delivered by run r or any later run;
- *duplicate rows*: rows the output holds at the end minus distinct (hashtag, id) pairs in it;
  *videos on > 1 day*: distinct videos delivered by more than one run.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from benchmarks.tracking.truth import Truth

Delivered = list[dict[str, set[str]]]


def _ratio(a: float, b: float, digits: int = 4) -> float | None:
    return round(a / b, digits) if b else None


def _suffix_unions(delivered: Delivered) -> list[dict[str, set[str]]]:
    """``out[r][hid]``: every id delivered for ``hid`` by run r or later."""
    out: list[dict[str, set[str]]] = [{} for _ in delivered]
    acc: dict[str, set[str]] = {}
    for r in range(len(delivered) - 1, -1, -1):
        for hid, ids in delivered[r].items():
            acc[hid] = acc.get(hid, set()) | ids
        out[r] = {hid: set(ids) for hid, ids in acc.items()}
    return out


def recall(truth: Truth, delivered: Delivered) -> dict[str, Any]:
    """Recall that day and eventually, in all and per run."""
    later = _suffix_unions(delivered)
    per_run: list[dict[str, Any]] = []
    sums = Counter[str]()
    for r in range(1, len(truth.runs)):
        rt = truth.runs[r]
        row = Counter[str]()
        for hid, visible in rt.visible.items():
            row["visible"] += len(visible)
            row["same_day"] += len(visible & delivered[r].get(hid, set()))
            row["collectable"] += len(rt.collectable[hid])
            row["eventually"] += len(rt.collectable[hid] & later[r].get(hid, set()))
        sums.update(row)
        per_run.append(
            {
                "run": r,
                "created": rt.created,
                "never_visible": rt.never_visible,
                **row,
                "recall_same_day": _ratio(row["same_day"], row["visible"]),
                "recall_eventual": _ratio(row["eventually"], row["collectable"]),
            }
        )
    return {
        "new_created": sum(rt.created for rt in truth.runs),
        "new_visible_same_day": sums["visible"],
        "new_collectable": sums["collectable"],
        "never_visible": sum(rt.never_visible for rt in truth.runs),
        "recall_same_day": _ratio(sums["same_day"], sums["visible"]),
        "recall_eventual": _ratio(sums["eventually"], sums["collectable"]),
        "per_run": per_run,
    }


def duplicates(days: list[dict[str, Any]], delivered: Delivered) -> dict[str, Any]:
    """Duplicate rows in the output at the end, and videos delivered on more than one day."""
    runs = Counter((hid, vid) for day in delivered for hid, ids in day.items() for vid in ids)
    last = days[-1]
    if last["rows_total"] is None:  # append-only output: every day's rows are still there
        rows, distinct = sum(d["rows_added"] for d in days), len(runs)
    else:
        rows, distinct = last["rows_total"], last["distinct_total"]
    return {
        "rows_total": rows,
        "distinct_total": distinct,
        "duplicate_rows": rows - distinct,
        "videos_on_many_days": sum(1 for n in runs.values() if n > 1),
        "deliveries": sum(runs.values()),
    }


def cell_figures(truth: Truth, days: list[dict[str, Any]], delivered: Delivered) -> dict[str, Any]:
    figures = recall(truth, delivered)
    figures.update(duplicates(days, delivered))
    credits = [d["credits"] for d in days]
    after_first = sum(credits[1:])
    index = days[-1]
    figures.update(
        credits_total=sum(credits),
        credits_first_run=credits[0],
        credits_after_first=after_first,
        credits_per_new=_ratio(after_first, figures["new_collectable"], 2),
        credits_per_day_after_first=_ratio(after_first, len(credits) - 1, 1),
        backlog_ever_visible=truth.backlog_ever_visible,
        wall_s=round(sum(d["wall_s"] for d in days), 1),
        wall_day_mean_s=_ratio(sum(d["wall_s"] for d in days), len(days), 2),
        peak_rss_mb=max(d["rss_mb"] for d in days),
        index_bytes=index.get("index_bytes"),
        index_bytes_per_id=_ratio(index.get("index_bytes") or 0, index.get("index_ids") or 0, 1),
    )
    return figures
