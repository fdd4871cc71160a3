"""``python -m benchmarks.run``: the benchmark of issue 5 (``make bench``), or its smoke (``--smoke``).

The sandbox runs in its own process, serving one hashtag per size; each contestant runs in a process
of its own, one at a time, interleaved across rounds (ABCABC); every run's output is checked against
the sandbox's ground truth. The full run writes ``BENCHMARKS.md``, ``benchmarks/chart.png`` and
``benchmarks/results.json``; the smoke writes only under its work directory.

Examples::

    python -m benchmarks.run                                   # the full matrix (long: see --help)
    python -m benchmarks.run --sizes 10000,100000 --latency 0,50 --runs 5
    python -m benchmarks.run --smoke                           # seconds: tiny sizes, one round
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import airflow_env, report
from benchmarks.contestants import BY_NAME, CONTESTANTS, select
from benchmarks.harness import (
    NODUP_KIND,
    REPO,
    Harness,
    KillOutcome,
    Sample,
    child_env,
    failure_reason,
    git,
    kill_test,
)
from benchmarks.sandbox import SandboxProcess

DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
DEFAULT_LATENCIES = (0.0, 50.0)
#: Cells whose rounds would take too long at the default 5 runs (1M records at 50 ms is ~20,400
#: pages x 50 ms = 17 min per contestant per round): fewer rounds there, said in BENCHMARKS.md.
DEFAULT_CELL_RUNS = "100000@50=2,1000000@0=2,1000000@50=1"
SMOKE_SIZES = (300,)
SMOKE_LATENCIES = (0.0,)


def _numbers(text: str, kind: type) -> list[Any]:
    return [kind(part) for part in text.split(",") if part.strip()]


def parse_cell_runs(text: str) -> dict[tuple[int, float], int]:
    """``"100000@50=2,1000000@0=1"`` -> ``{(100000, 50.0): 2, (1000000, 0.0): 1}``."""
    cells: dict[tuple[int, float], int] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        cell, _, runs = item.partition("=")
        size, _, latency = cell.partition("@")
        cells[(int(size), float(latency))] = int(runs)
    return cells


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    p.add_argument(
        "--sizes", type=lambda s: _numbers(s, int), help="hashtag sizes (default 10000,100000,1000000)"
    )
    p.add_argument("--latency", type=lambda s: _numbers(s, float), help="latencies in ms (default 0,50)")
    p.add_argument("--runs", type=int, default=5, help="interleaved rounds per cell (default 5)")
    p.add_argument(
        "--cell-runs",
        default=None,
        help=f"rounds for given SIZE@LATENCY cells, 0 to skip one (default {DEFAULT_CELL_RUNS!r} "
        "when --sizes/--latency are not given, else none)",
    )
    p.add_argument(
        "--contestants",
        type=lambda s: [x.strip() for x in s.split(",") if x.strip()],
        help=f"subset of {','.join(c.name for c in CONTESTANTS)} (default: all that are installed)",
    )
    p.add_argument(
        "--kill-size",
        type=int,
        default=None,
        help="size of the kill-at-50%% test (default 10000; the smallest size with --smoke)",
    )
    p.add_argument(
        "--kill-latency",
        type=float,
        default=50.0,
        help="latency of the kill test (default 50 ms: slow enough to SIGKILL at exactly half the pages)",
    )
    p.add_argument(
        "--kill",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run the kill-at-50%% test (default: yes, except with --smoke)",
    )
    p.add_argument("--no-profile", action="store_true", help="skip the per-page profile of ours")
    p.add_argument(
        "--code",
        choices=("head", "worktree"),
        default=None,
        help="provider code to measure: a snapshot of git HEAD (default for full runs) or the "
        "working tree (default for --smoke)",
    )
    p.add_argument(
        "--work-dir",
        type=Path,
        default=REPO / "benchmarks" / ".work",
        help="scratch space: outputs, logs, Airflow home, bytecode cache (default benchmarks/.work)",
    )
    p.add_argument(
        "--run-dir",
        type=Path,
        default=None,
        help="where this run's outputs, logs and (with --smoke) report go (default a new folder "
        "under WORK_DIR/runs)",
    )
    p.add_argument(
        "--airflow-home",
        type=Path,
        default=None,
        help="an Airflow home to use (migrated if its airflow.db is missing); default one per "
        "Airflow version under the work dir",
    )
    p.add_argument(
        "--timeout", type=float, default=3600.0, help="seconds before a run is killed (default 3600)"
    )
    p.add_argument(
        "--output-md",
        type=Path,
        default=None,
        help="report path for a trial run (chart and results.json next to it, same stem); default "
        "BENCHMARKS.md with benchmarks/chart.png and benchmarks/results.json (smoke: the run dir)",
    )
    p.add_argument(
        "--smoke",
        action="store_true",
        help="a seconds-long check of the harness: tiny sizes, one round, every installed contestant; "
        "exits non-zero if one crashes or delivers wrong data",
    )
    p.add_argument(
        "--render",
        type=Path,
        default=None,
        metavar="RESULTS_JSON",
        help="measure nothing: rewrite BENCHMARKS.md and the chart from an earlier run's results.json",
    )
    p.add_argument("--quiet", action="store_true")
    return p


def code_snapshot(work: Path, mode: str) -> tuple[Path | None, str]:
    """Where the provider is imported from, and a description for the report.

    ``head`` exports ``airflow_provider_unifapi`` of git HEAD under the work dir and puts it first on
    the children's ``PYTHONPATH``, so uncommitted edits in progress are not what gets measured.
    """
    sha = git("rev-parse", "--short=12", "HEAD")
    dirty = bool(git("status", "--porcelain", "--", "airflow_provider_unifapi"))
    if mode == "worktree" or not sha:
        return None, f"working tree at {sha or 'unknown commit'}" + (
            " with uncommitted changes" if dirty else ""
        )
    target = work / "code" / sha
    if not (target / "airflow_provider_unifapi" / "__init__.py").exists():
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        archive = subprocess.run(
            ["git", "-C", str(REPO), "archive", "--format=tar", "HEAD", "airflow_provider_unifapi"],
            capture_output=True,
            check=True,
        )
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target, f"git HEAD {sha} (committed code only)"


def machine_info() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "cpu_model": cpu,
        "kernel": platform.release(),
        "loadavg_start": os.getloadavg(),
        "open_files_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
    }


def versions() -> dict[str, str]:
    import importlib.metadata

    out = {"python": platform.python_version()}
    for dist in (
        "apache-airflow",
        "httpx",
        "pydantic",
        "pydantic-core",
        "apache-airflow-providers-http",
        "dlt",
        "pyarrow",
        "universal-pathlib",
    ):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def plan_cells(
    sizes: list[int], latencies: list[float], runs: int, cell_runs: dict[tuple[int, float], int]
) -> list[tuple[float, int, int]]:
    """``(latency, size, rounds)`` in the order they run; cells with 0 rounds are left out."""
    cells = []
    for latency in latencies:
        for size in sizes:
            n = cell_runs.get((size, latency), runs)
            if n > 0:
                cells.append((latency, size, n))
    return cells


def execute(args: argparse.Namespace) -> int:
    smoke = bool(args.smoke)
    sizes = args.sizes or list(SMOKE_SIZES if smoke else DEFAULT_SIZES)
    latencies = args.latency or list(SMOKE_LATENCIES if smoke else DEFAULT_LATENCIES)
    runs = 1 if smoke else args.runs
    if args.cell_runs is not None:
        cell_runs = parse_cell_runs(args.cell_runs)
    elif smoke or args.sizes or args.latency:
        cell_runs = {}
    else:
        cell_runs = parse_cell_runs(DEFAULT_CELL_RUNS)
    cells = plan_cells(sizes, latencies, runs, cell_runs)
    kill_size = args.kill_size or (min(sizes) if smoke else 10_000)
    kill_latency = args.kill_latency
    do_kill = args.kill if args.kill is not None else not smoke
    do_profile = not args.no_profile and not smoke
    contestants, skipped = select(args.contestants)
    if not contestants:
        print(
            "no contestant can run here: " + "; ".join(f"{k}: {v}" for k, v in skipped.items()),
            file=sys.stderr,
        )
        return 2
    if not any(c.name == "ceiling" for c in contestants):
        print("the ceiling is needed for the ratios: add it to --contestants", file=sys.stderr)
        return 2
    say = (lambda text: None) if args.quiet else (lambda text: print(text, file=sys.stderr, flush=True))
    for name, why in skipped.items():
        say(f"skipping {name}: {why}")

    work: Path = args.work_dir
    work.mkdir(parents=True, exist_ok=True)
    run_dir: Path = args.run_dir or work / "runs" / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    run_dir.mkdir(parents=True, exist_ok=True)
    code_path, code_desc = code_snapshot(work, args.code or ("worktree" if smoke else "head"))
    info: dict[str, Any] = {"machine": machine_info(), "versions": versions(), "code": code_desc}
    airflow_home = args.airflow_home or work / f"airflow-home-{info['versions']['apache-airflow']}"
    env = child_env(
        dict(os.environ), work=work, run_dir=run_dir, code_path=code_path, airflow_home=airflow_home
    )
    if any(c.airflow for c in contestants):
        say(f"Airflow home {airflow_home} (migrating once) ...")
        airflow_env.ensure_migrated(airflow_home, env, trust_existing=args.airflow_home is not None)
    say(f"measuring {code_desc}; runs under {run_dir}")
    profile_size = kill_size
    samples: list[Sample] = []
    kills: list[KillOutcome] = []
    profile: Sample | None = None
    started = time.monotonic()
    with SandboxProcess(sorted({*sizes, kill_size, profile_size}), env, run_dir / "sandbox.log") as sb:
        h = Harness(sb, env, run_dir, timeout_s=args.timeout, verbose=not args.quiet)
        for latency, size, rounds in cells:
            say(f"cell {size:,} records @ {latency:g} ms: {rounds} round(s) x {len(contestants)} contestants")
            sb.truth(size)  # fetched (and cached) before any timing
            failed: set[str] = set()
            for round_no in range(1, rounds + 1):
                for c in contestants:  # interleaved: A B C A B C, never A A B B
                    if c.name in failed:
                        # It fails the same way again (HttpOperator at 1M: a socket per page runs
                        # its process out of file descriptors), so another round only costs time.
                        say(f"  [skip   ] {c.name} {size:,} @ {latency:g} ms r{round_no}: failed in the cell")
                        continue
                    samples.append(h.run(c, size, latency, round_no))
                    if not samples[-1].ok:
                        failed.add(c.name)
        if do_kill:
            say(
                f"kill test: {kill_size:,} records @ {kill_latency:g} ms, "
                "SIGKILL at half the pages, then restart"
            )
            for c in contestants:
                if c.output == "none":
                    continue  # the ceiling writes nothing: nothing to resume
                clean = next(
                    (
                        s
                        for s in samples
                        if s.contestant == c.name
                        and s.size == kill_size
                        and s.latency_ms == kill_latency
                        and s.ok
                    ),
                    None,
                ) or h.run(c, kill_size, kill_latency, 0, kind="reference")
                kills.append(kill_test(h, c, kill_size, kill_latency, clean))
        say(f"credits on a duplicate-free feed: {kill_size:,} records @ 0 ms, sandbox duplicate_rate=0")
        for c in contestants:
            # The API bills every record it sends, repeats included (~2% in the sandbox): with none,
            # credits per unique record show what a tool itself adds (1.00 = nothing).
            samples.append(
                h.run(c, kill_size, 0.0, 0, kind=NODUP_KIND, sandbox_settings={"duplicate_rate": 0.0})
            )
        if do_profile and any(c.name == "ours-jsonl.gz" for c in contestants):
            say(f"per-page profile of ours jsonl.gz: {profile_size:,} records @ 0 ms")
            profile = h.run(BY_NAME["ours-jsonl.gz"], profile_size, 0.0, 0, kind="profile", profile=True)
        info["sandbox"] = {
            k: v for k, v in sb.settings().items() if k not in ("hashtags", "api_keys_configured")
        }
    info["machine"]["loadavg_end"] = os.getloadavg()
    info["wall_minutes"] = round((time.monotonic() - started) / 60, 1)
    info["skipped"] = skipped
    info["cells"] = [{"latency_ms": lat, "size": size, "rounds": n} for lat, size, n in cells]
    info["kill"] = {"size": kill_size, "latency_ms": kill_latency} if do_kill else None
    info["command"] = "python -m benchmarks.run" + ("" if not args.argv else " " + " ".join(args.argv))
    info["contestants"] = [c.name for c in contestants]
    info["smoke"] = smoke
    if smoke:
        md, chart, raw = run_dir / "BENCHMARKS.md", run_dir / "chart.png", run_dir / "results.json"
    elif args.output_md is not None:  # a trial run: keep the committed figures untouched
        md = args.output_md
        chart, raw = md.with_suffix(".png"), md.with_suffix(".json")
    else:
        md = REPO / "BENCHMARKS.md"
        chart, raw = REPO / "benchmarks" / "chart.png", REPO / "benchmarks" / "results.json"
    md.parent.mkdir(parents=True, exist_ok=True)  # a trial's --output-md may name a new folder
    raw.write_text(
        json.dumps(
            {
                "info": info,
                "samples": [s.to_json() for s in samples],
                "kills": [{**k.__dict__, "respent": k.respent} for k in kills],
                "profile": profile.to_json() if profile else None,
            },
            indent=1,
            default=str,
        )
    )
    report.write(md, chart, info, contestants, samples, kills, profile)
    say(f"wrote {md}, {chart} and {raw}")
    return verdict(samples, kills, profile, smoke=smoke, say=say)


def verdict(
    samples: list[Sample], kills: list[KillOutcome], profile: Sample | None, *, smoke: bool, say: Any
) -> int:
    """The exit code. The smoke fails on any contestant's crash or wrong data; a full run fails when
    ours or the ceiling did (a peer that fails is a result, reported in BENCHMARKS.md)."""
    failures = [s for s in samples if not s.ok] + (
        [profile] if profile is not None and not profile.ok else []
    )
    broken_kills = [k for k in kills if k.problem or not k.correct_after_restart]
    for s in failures:
        say(
            f"FAILED: {s.contestant} {s.size} @ {s.latency_ms:g} ms ({s.kind}): "
            f"{failure_reason(s.problem, s.log)} "
            f"(log {s.log})"
        )
    for k in broken_kills:
        say(f"KILL TEST FAILED: {k.contestant}: {k.problem or 'wrong data after the restart'}")
    if not smoke:
        failures = [s for s in failures if s.contestant == "ceiling" or s.contestant.startswith("ours")]
        broken_kills = [k for k in broken_kills if k.contestant.startswith("ours")]
    return 1 if failures or broken_kills else 0


def render(results: Path, output_md: Path | None) -> int:
    """Rewrite BENCHMARKS.md and the chart from a ``results.json`` of an earlier run (no measuring):
    for report changes after a long run. The report names the measuring command and this one."""
    data = json.loads(results.read_text())
    info = data["info"]
    shown = results.relative_to(REPO) if results.is_relative_to(REPO) else results
    info["rendered_by"] = f"python -m benchmarks.run --render {shown}"
    computed = {"records_per_s", "job_rss_kb"}

    def sample(row: dict[str, Any]) -> Sample:
        return Sample(**{k: v for k, v in row.items() if k not in computed})

    samples = [sample(row) for row in data["samples"]]
    kills = [KillOutcome(**{k: v for k, v in row.items() if k != "respent"}) for row in data["kills"]]
    profile = sample(data["profile"]) if data.get("profile") else None
    contestants = [BY_NAME[name] for name in info["contestants"]]
    md = output_md or REPO / "BENCHMARKS.md"
    chart = md.with_suffix(".png") if output_md else REPO / "benchmarks" / "chart.png"
    report.write(md, chart, info, contestants, samples, kills, profile)
    print(f"rendered {md} and {chart} from {results}", file=sys.stderr)
    return verdict(samples, kills, profile, smoke=bool(info.get("smoke")), say=lambda text: None)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    if args.render is not None:
        return render(args.render, args.output_md)
    return execute(args)


def smoke(
    run_dir: Path | None = None,
    *,
    contestants: list[str] | None = None,
    airflow_home: Path | None = None,
) -> int:
    """The CI smoke, callable in-process: returns the exit code (0 = every contestant delivered the truth).

    Its report and ``results.json`` land in ``run_dir``.
    """
    argv = ["--smoke"]
    if run_dir is not None:
        argv += ["--run-dir", str(run_dir)]
    if contestants:
        argv += ["--contestants", ",".join(contestants)]
    if airflow_home is not None:
        argv += ["--airflow-home", str(airflow_home)]
    return main(argv)


if __name__ == "__main__":
    sys.exit(main())
