"""The tracking report: a Markdown table per entry model, results.json, and a chart of credits per
new video against eventual recall."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks.tracking.contestant import BY_NAME


def _f(value: Any, spec: str = "") -> str:
    if value is None:
        return "-"
    return format(value, spec) if spec else str(value)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f} %"


_HEADER = (
    "| Contestant | Result | Credits (run 0 + later) | Credits / new video | Recall that day | "
    "Recall eventually | Duplicate rows | Videos on > 1 day | Wall s (mean / day) | Peak RSS MB | "
    "Index B / id | Peak RSS MB, probe index |\n"
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def _row(r: dict[str, Any]) -> str:
    if r["state"] != "success":
        return f"| {r['contestant']} | **{r['state']}** (day {len(r['days']) - 1}) |" + " - |" * 10
    return (
        f"| {r['contestant']} | ok | {r['credits_total']:,} ({r['credits_first_run']:,} + "
        f"{r['credits_after_first']:,}) | {_f(r['credits_per_new'], ',.2f')} | {_pct(r['recall_same_day'])} | "
        f"{_pct(r['recall_eventual'])} | {r['duplicate_rows']:,} | {r['videos_on_many_days']:,} | "
        f"{r['wall_s']:,.1f} ({_f(r['wall_day_mean_s'], '.2f')}) | {r['peak_rss_mb']:,.0f} | "
        f"{_f(r['index_bytes_per_id'], ',.1f')} | {_f(r.get('rss_1m_ids_mb'), ',.0f')} |"
    )


def _world(rows: list[dict[str, Any]]) -> str:
    ok = next((r for r in rows if r["state"] == "success"), None)
    if ok is None:
        return "No contestant finished: no truth."
    return (
        f"Truth: {ok['new_created']:,} videos created after run 0's clock and before the last run's; "
        f"{ok['new_collectable']:,} collectable (visible at some run clock), "
        f"{ok['new_visible_same_day']:,} of them visible at the first run after their creation; "
        f"{ok['never_visible']:,} never visible at any run clock (excluded). Backlog: "
        f"{ok['backlog_ever_visible']:,} videos visible at some run clock."
    )


DEFINITIONS = """\
Run r (r = 0 .. D-1) is made with the sandbox clock at day r's start, c_r; the clock moves a day
between runs. Run 0 pulls the backlog. The **new videos of run r** (r >= 1) are those created in
[c_{r-1}, c_r) (the day before the run), per the sandbox's `/timeline` (`first_visible` at the
observed clocks, which are exactly the run clocks). *Recall that day*: of the new videos of run r
visible in the feed at c_r, the share run r delivered. *Recall eventually*: of those visible at
some run clock (late entrants included), the share delivered by run r or later. A video never
visible at any run clock cannot be collected by anyone: excluded, counted in the truth line.
*Credits* come from the sandbox's ledger; *credits / new video* = credits of runs 1 .. D-1 over the
collectable new videos. *Duplicate rows*: rows the contestant's output holds at the end minus the
distinct (hashtag, id) pairs in it (daily snapshots keep every day's rows; dlt's merge replaces a
re-pulled row, measured from the SQLite destination). *Videos on > 1 day*: delivered by more than
one run. *Wall*: child-process launch to exit, summed over days. *Peak RSS*: the highest over days
of the contestant process's peak (its tree sampled every 0.2 s, and its own VmHWM). *Index B / id*:
the contestant's index of ids seen, bytes over ids after the last day; *peak RSS, 1M ids*: a process
of its own building that index with the probe's ids (`--probe-ids`, 1,000,000 by default). Both are
for tracking contestants: the baselines keep no index (`-`)."""


def section(meta: dict[str, Any], results: list[dict[str, Any]]) -> str:
    s = meta["scenario"]
    lines = [
        "## Tracking hashtags day after day (`make bench-tracking`)",
        "",
        f"{s['hashtags']} hashtags, {s['days']} simulated days, backlog {s['backlog'][0]:,}-"
        f"{s['backlog'][1]:,} videos and {s['daily_new'][0]}-{s['daily_new'][1]} new videos a day per "
        f"hashtag (seeded draws), visible cap {s['visible_cap']:,}, latency {s['latency_ms']:g} ms, no "
        f"rate limit, seed {s['seed']}, pages of 50. Code {meta['commit']}, {meta['when']}, "
        f"{meta['cpus']} CPUs.",
        "",
        DEFINITIONS,
        "",
        "Contestants:",
        *(
            f"- `{name}`: {BY_NAME[name].description}"
            for name in dict.fromkeys(r["contestant"] for r in results)
        ),
    ]
    for name, why in meta.get("skipped", {}).items():
        lines.append(f"- `{name}`: not run ({why})")
    for rank in dict.fromkeys(r["entry_rank"] for r in results):
        rows = [r for r in results if r["entry_rank"] == rank]
        lines += ["", f"### entry_rank = {rank}", "", _world(rows), "", _HEADER, *(_row(r) for r in rows)]
    if meta.get("chart"):
        lines += ["", f"![credits per new video against eventual recall]({meta['chart']})"]
    else:
        lines += ["", f"(no chart: {meta.get('chart_note', 'matplotlib is not installed')})"]
    return "\n".join(lines) + "\n"


def chart(results: list[dict[str, Any]], path: Path) -> str | None:
    """Credits per new video (x) against eventual recall (y); ``None`` when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.8))
    markers = {"low": "o", "high": "s"}
    points: dict[tuple[float, float, str], list[str]] = {}  # contestants on one point share a label
    for r in results:
        if r["state"] == "success" and r["credits_per_new"] is not None:
            key = (r["credits_per_new"], 100 * r["recall_eventual"], r["entry_rank"])
            points.setdefault(key, []).append(r["contestant"])
    for (x, y, rank), names in points.items():
        ax.scatter(x, y, marker=markers.get(rank, "x"))
        label = f"{', '.join(names)} ({rank})"
        ax.annotate(label, (x, y), textcoords="offset points", xytext=(5, 5), fontsize=8)
    ax.set_ylim(0, 105)
    ax.margins(x=0.35)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    ax.set_xlabel("credits per new video (runs 1 .. D-1, log)")
    ax.set_ylabel("eventual recall of new videos (%)")
    ax.set_title("Tracking: what a new video costs, and how many are caught")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def write(md: Path, json_path: Path, meta: dict[str, Any], results: list[dict[str, Any]]) -> None:
    md.parent.mkdir(parents=True, exist_ok=True)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps({"meta": meta, "results": results}, indent=1, default=sorted) + "\n")
    md.write_text(section(meta, results))
