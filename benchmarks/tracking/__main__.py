"""``python -m benchmarks.tracking`` (``make bench-tracking``): hashtags tracked day after day.

For each entry model (``low``, ``high``) and each contestant of the registry
(``benchmarks/tracking/contestant.py``): reset the sandbox in timeline mode (same seed, same world),
run the contestant's day in a child process, read the ledger and its output, move the clock a day;
after the last day, judge it against the sandbox's ``/timeline`` truth. Writes a Markdown report,
results.json and a chart into the run's work folder (or ``--output-md`` / ``--output-json``).
``--smoke``: 2 small hashtags, 3 days, seconds; exit 1 if a contestant fails or a full re-pull
misses a video it could see.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import run_meta
from benchmarks.tracking import report
from benchmarks.tracking.config import ENTRY_RANKS, SMOKE, Scenario
from benchmarks.tracking.contestant import BY_NAME, REGISTRY, Entry
from benchmarks.tracking.runner import REPO, child_env, probe_index, run_cell

WORK = REPO / "benchmarks" / ".work" / "tracking"


def _range(text: str) -> tuple[int, int]:
    low, _, high = text.partition("-")
    return int(low), int(high or low)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    d = Scenario()
    p = argparse.ArgumentParser(prog="python -m benchmarks.tracking", description=__doc__.splitlines()[0])
    p.add_argument("--hashtags", type=int, default=d.hashtags)
    p.add_argument("--days", type=int, default=d.days)
    p.add_argument("--entry-rank", default=",".join(ENTRY_RANKS), help="low,high (comma-separated)")
    p.add_argument("--backlog", default="2000-6000", help="video_count per hashtag, min-max (seeded)")
    p.add_argument("--daily-new", default="50-400", help="mean new videos a day per hashtag, min-max")
    p.add_argument("--visible-cap", type=int, default=d.visible_cap)
    p.add_argument("--latency-ms", type=float, default=d.latency_ms)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--time-limit", type=float, default=d.time_limit_s, help="seconds per contestant-day")
    p.add_argument("--contestants", default=",".join(e.name for e in REGISTRY), help="comma-separated")
    p.add_argument("--probe-ids", type=int, default=1_000_000, help="ids in the index RSS probe (0: none)")
    p.add_argument("--smoke", action="store_true", help="2 small hashtags, 3 days: a check of the harness")
    p.add_argument("--work", type=Path, help=f"scratch folder (default {WORK}/<time>)")
    p.add_argument("--output-md", type=Path, help="default <work>/TRACKING.md")
    p.add_argument("--output-json", type=Path, help="default <work>/results.json")
    return p.parse_args(argv)


def scenario_from(args: argparse.Namespace) -> Scenario:
    ranks = tuple(r.strip() for r in args.entry_rank.split(",") if r.strip())
    unknown = set(ranks) - set(ENTRY_RANKS)
    if unknown:
        raise SystemExit(f"--entry-rank: unknown {sorted(unknown)} (low, high)")
    if args.smoke:
        return Scenario(**{**SMOKE.public(), "entry_ranks": ranks})
    return Scenario(
        hashtags=args.hashtags,
        days=args.days,
        entry_ranks=ranks,
        backlog=_range(args.backlog),
        daily_new=_range(args.daily_new),
        visible_cap=args.visible_cap,
        latency_ms=args.latency_ms,
        seed=args.seed,
        time_limit_s=args.time_limit,
    )


def entries(names: str) -> tuple[list[Entry], dict[str, str]]:
    """The contestants asked for that this environment can run, and why the others cannot."""
    chosen, skipped = [], {}
    for name in (n.strip() for n in names.split(",") if n.strip()):
        if name not in BY_NAME:
            raise SystemExit(f"--contestants: unknown {name!r} (known: {', '.join(BY_NAME)})")
        entry = BY_NAME[name]
        if entry.needs and importlib.util.find_spec(entry.needs) is None:
            skipped[name] = f"{entry.needs} is not installed"
        else:
            chosen.append(entry)
    return chosen, skipped


def add_probes(
    results: list[dict[str, Any]], chosen: list[Entry], ids: int, work: Path, limit_s: float
) -> None:
    """Peak RSS with ``ids`` ids in each contestant's index (those that have an ``index_probe``)."""
    for entry in chosen:
        probe = probe_index(entry, ids, work, limit_s) if ids else None
        if probe is not None:
            print(f"tracking: {entry.name} index probe, {ids:,} ids: {probe['state']}, {probe['rss_mb']} MB")
        for r in results:
            if r["contestant"] == entry.name:
                r["index_probe"] = probe
                r["rss_1m_ids_mb"] = probe["rss_mb"] if probe and probe["state"] == "success" else None


def run_matrix(scenario: Scenario, chosen: list[Entry], work: Path) -> list[dict[str, Any]]:
    from benchmarks.sandbox import SandboxProcess

    env = {k: v for k, v in child_env().items() if not k.startswith("RUNTIME__")}
    results = []
    with SandboxProcess([], env, work / "sandbox.log") as sandbox:
        for rank in scenario.entry_ranks:
            for entry in chosen:
                cell = run_cell(sandbox, scenario, entry, rank, work)
                results.append(cell)
                if cell["state"] == "success":
                    print(
                        f"tracking: {rank} {entry.name}: {cell['credits_total']:,} credits, "
                        f"{cell['credits_per_new']} / new video, recall {cell['recall_same_day']} that day, "
                        f"{cell['recall_eventual']} eventually, {cell['duplicate_rows']:,} duplicate rows",
                        flush=True,
                    )
    return results


def smoke_problems(results: list[dict[str, Any]]) -> list[str]:
    """What makes ``--smoke`` fail: a contestant that did not finish, or a daily full pull (every
    baseline re-pulls everything) that missed a new video visible at its run."""
    bad = [f"{r['entry_rank']} {r['contestant']}: {r['state']}" for r in results if r["state"] != "success"]
    for r in results:
        if r["state"] == "success" and r["recall_same_day"] not in (1.0, None):
            bad.append(f"{r['entry_rank']} {r['contestant']}: recall that day {r['recall_same_day']}, not 1")
    return bad


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    scenario = scenario_from(args)
    chosen, skipped = entries(args.contestants)
    work = (args.work or WORK / time.strftime("%Y%m%d-%H%M%S")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    for name, why in skipped.items():
        print(f"tracking: skipping {name}: {why}", flush=True)
    results = run_matrix(scenario, chosen, work)
    add_probes(results, chosen, args.probe_ids, work, scenario.time_limit_s)
    meta = run_meta(scenario.public(), skipped)
    md = (args.output_md or work / "TRACKING.md").resolve()
    chart = report.chart(results, md.parent / f"{md.stem.lower()}-chart.png")
    meta["chart"] = chart
    report.write(md, args.output_json or work / "results.json", meta, results)
    print(f"tracking: report {md}", flush=True)
    print(md.read_text(), flush=True)
    bad = smoke_problems(results) if args.smoke else [r["state"] for r in results if r["state"] != "success"]
    for line in bad:
        print(f"tracking: {line}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
