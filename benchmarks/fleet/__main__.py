"""``python -m benchmarks.fleet`` (``make bench-fleet``): N hashtags at the workspace rate limit.

Runs every contestant on every N against one sandbox process (reset before each cell: clean
ledger, full bucket, the cell's catalogue), one cell at a time, and writes the fleet section of
BENCHMARKS.md (between its markers) and ``benchmarks/fleet/results.json``. ``--smoke`` runs a
seconds-scale version (3 tiny hashtags, a high limit) into a scratch folder and fails (exit 1) when
a contestant fails or writes anything but the truth.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.fleet import report
from benchmarks.fleet.config import CONTESTANTS, EXTRA_CONTESTANTS, MAPPED, Scenario
from benchmarks.fleet.runner import REPO, run_cell
from benchmarks.harness import run_meta

WORK = REPO / "benchmarks" / ".work" / "fleet"
SMOKE = Scenario(
    latency_ms=20, jitter_ms=10, rate=3_000, burst=50, concurrency=3, videos=(30, 120), time_limit_s=240
)


def available(names: list[str]) -> tuple[list[str], dict[str, str]]:
    """The contestants this environment can run, and why the others cannot."""
    from airflow_provider_unifapi._compat import AIRFLOW_V_3

    missing: dict[str, str] = {}
    if importlib.util.find_spec("airflow.providers.http") is None:
        missing["http-mapped"] = "apache-airflow-providers-http is not installed"
    if importlib.util.find_spec("dlt") is None:
        missing["dlt"] = "dlt is not installed"
    if not AIRFLOW_V_3:  # 2.x runs no LocalExecutor on SQLite
        missing.update(dict.fromkeys(MAPPED, "mapped runs need Airflow 3 (LocalExecutor on SQLite)"))
        missing["http-mapped"] = missing["ours-mapped-paced"] = missing["ours-mapped"]
    return [n for n in names if n not in missing], {n: why for n, why in missing.items() if n in names}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    d = Scenario()
    p = argparse.ArgumentParser(prog="python -m benchmarks.fleet", description=__doc__.splitlines()[0])
    p.add_argument("--n", default="10,100,1000", help="hashtag counts, comma-separated")
    p.add_argument("--latency-ms", type=float, default=d.latency_ms)
    p.add_argument("--jitter-ms", type=float, default=d.jitter_ms)
    p.add_argument("--rate", type=int, default=d.rate, help="workspace limit R, requests/min")
    p.add_argument("--burst", type=int, help="sandbox bucket size (default R // 60, one second's worth)")
    p.add_argument("--concurrency", type=int, default=d.concurrency)
    p.add_argument(
        "--contestants",
        default=",".join(CONTESTANTS),
        help=f"comma-separated, of {', '.join(CONTESTANTS + EXTRA_CONTESTANTS)}",
    )
    p.add_argument("--videos", default="100-3000", help="hashtag sizes (min-max) up to --large-from")
    p.add_argument("--videos-large", default="20-200", help="hashtag sizes when N > --large-from")
    p.add_argument("--large-from", type=int, default=d.large_from)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--time-limit", type=float, default=d.time_limit_s, help="seconds per cell")
    p.add_argument("--smoke", action="store_true", help="seconds-scale check of every contestant")
    p.add_argument("--output-md", type=Path, help="default BENCHMARKS.md (smoke: the work folder)")
    p.add_argument("--output-json", type=Path, help="default benchmarks/fleet/results.json")
    p.add_argument(
        "--merge",
        action="store_true",
        help="keep the cells of the existing results.json that this run does not redo (split runs)",
    )
    p.add_argument("--work", type=Path, help=f"scratch folder (default {WORK}/<time>)")
    return p.parse_args(argv)


def _range(text: str) -> tuple[int, int]:
    low, _, high = text.partition("-")
    return int(low), int(high)


def scenario_from(args: argparse.Namespace) -> Scenario:
    if args.smoke:
        return SMOKE
    return Scenario(
        latency_ms=args.latency_ms,
        jitter_ms=args.jitter_ms,
        rate=args.rate,
        burst=args.burst if args.burst is not None else max(1, args.rate // 60),
        concurrency=args.concurrency,
        videos=_range(args.videos),
        videos_large=_range(args.videos_large),
        large_from=args.large_from,
        seed=args.seed,
        time_limit_s=args.time_limit,
    )


def base_env(work: Path) -> dict[str, str]:
    """The children's environment: no inherited Airflow config; a migrated home for ``dag.test()``."""
    from benchmarks.airflow_env import airflow_env, ensure_migrated

    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # Airflow would recompile ~2,000 modules per process
    env["RUNTIME__DLTHUB_TELEMETRY"] = "false"
    env["PROVIDERS__ENABLE_AIRFLOW_SECRETS"] = "false"  # see benchmarks.harness.child_env
    home = work / "airflow-home"
    child = {**env, **airflow_env(home, work / "dags")}
    ensure_migrated(home, child)
    return child


def run_matrix(
    args: argparse.Namespace, scenario: Scenario, work: Path
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    from benchmarks.sandbox import BALANCE, SandboxProcess

    names, skipped = available([c.strip() for c in args.contestants.split(",") if c.strip()])
    sizes = [3] if args.smoke else [int(n) for n in args.n.split(",")]
    meta = run_meta(scenario.public(), skipped)
    for name, why in skipped.items():
        print(f"fleet: skipping {name}: {why}", flush=True)
    env = base_env(work)
    results: list[dict[str, Any]] = []
    sandbox_env = {k: v for k, v in env.items() if not k.startswith("AIRFLOW")}
    with SandboxProcess([], sandbox_env, work / "sandbox.log") as sandbox:
        sandbox.admin.post("/_sandbox/reset", json={"balance": BALANCE}).raise_for_status()
        for n in sizes:
            for name in names:
                print(f"fleet: N={n} {name} ...", flush=True)
                cell = run_cell(sandbox, scenario, name, n, work, env)
                print(
                    f"fleet: N={n} {name}: {cell['state']}, {cell['wall_s']:.0f} s, "
                    f"{cell['sustained_frac']:.2f} R sustained, {cell['calls_429']} x 429",
                    flush=True,
                )
                cell.update(commit=meta["commit"], when=meta["when"])
                results.append(cell)
    return meta, results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    scenario = scenario_from(args)
    work = (args.work or WORK / time.strftime("%Y%m%d-%H%M%S")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    meta, results = run_matrix(args, scenario, work)
    default_md = work / "BENCHMARKS.md" if args.smoke else REPO / "BENCHMARKS.md"
    default_json = work / "results.json" if args.smoke else REPO / "benchmarks" / "fleet" / "results.json"
    json_path = args.output_json or default_json
    if args.merge:
        results = report.merged(json_path, results)
    report.write_json(json_path, meta, results)
    report.write_markdown(args.output_md or default_md, report.section(meta, results))
    bad = [r for r in results if r["state"] != "success"]
    for r in bad:
        print(f"fleet: {r['contestant']} N={r['n']}: {r['state']} {r.get('problem') or ''}", file=sys.stderr)
    return 1 if args.smoke and bad else 0


if __name__ == "__main__":
    sys.exit(main())
