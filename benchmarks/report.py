"""Figures, targets, ``BENCHMARKS.md`` (from the template below) and the chart, from the samples.

Nothing here is edited by hand afterwards: the command regenerates all of it.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.contestants import Contestant
from benchmarks.harness import NODUP_KIND, KillOutcome, Sample, failure_reason
from benchmarks.spec import PAGE_SIZE

OURS = "ours-jsonl.gz"
#: Issue 5's bar for ours jsonl.gz at 0 ms latency, as a fraction of the ceiling's records/s.
ZERO_MS_BAR = 0.85
PEERS = ("http-operator", "dlt")
MB = 1024.0  # kB per MB (RSS figures are kB from the kernel; "MB" here means MiB)


def _median(values: Iterable[float]) -> float | None:
    data = list(values)
    return statistics.median(data) if data else None


@dataclass
class Cell:
    """The figures of one contestant at one size and latency (clean runs only)."""

    contestant: str
    size: int
    latency_ms: float
    runs: int = 0
    failed: int = 0
    rps: float | None = None
    ratio: float | None = None  # median over rounds of (records/s / the ceiling's in that round)
    peak_rss_mb: float | None = None
    job_rss_mb: float | None = None
    cpu_per_1k: float | None = None
    credits_per_unique: float | None = None
    duplicates: int | None = None
    samples: list[Sample] = field(default_factory=list)


def cells(samples: list[Sample]) -> dict[tuple[float, int, str], Cell]:
    clean = [s for s in samples if s.kind == "clean"]
    out: dict[tuple[float, int, str], Cell] = {}
    for s in clean:
        cell = out.setdefault((s.latency_ms, s.size, s.contestant), Cell(s.contestant, s.size, s.latency_ms))
        cell.samples.append(s)
    ceiling = {(s.latency_ms, s.size, s.round): s for s in clean if s.contestant == "ceiling" and s.ok}
    for cell in out.values():
        good = [s for s in cell.samples if s.ok]
        cell.runs, cell.failed = len(good), len(cell.samples) - len(good)
        if not good:
            continue
        cell.rps = _median(s.records_per_s for s in good)
        cell.ratio = _median(
            s.records_per_s / ceiling[(s.latency_ms, s.size, s.round)].records_per_s
            for s in good
            if (s.latency_ms, s.size, s.round) in ceiling
        )
        cell.peak_rss_mb = _median(s.peak_rss_kb / MB for s in good)
        cell.job_rss_mb = _median(s.job_rss_kb / MB for s in good)
        cell.cpu_per_1k = _median(s.cpu_s / s.size * 1000 for s in good)
        cell.credits_per_unique = _median(s.credits / (s.unique or s.size) for s in good)
        cell.duplicates = int(_median(s.duplicates for s in good) or 0)
    return out


def pair_ratio(samples: list[Sample], a: str, b: str, latency: float, size: int) -> float | None:
    """Median over rounds of ``records/s of a / records/s of b``, each pair from the same round."""
    clean = [s for s in samples if s.kind == "clean" and s.ok and s.latency_ms == latency and s.size == size]
    by_round = {(s.contestant, s.round): s for s in clean}
    return _median(
        by_round[(a, r)].records_per_s / by_round[(b, r)].records_per_s
        for (name, r) in by_round
        if name == a and (b, r) in by_round
    )


# -- targets ----------------------------------------------------------------------------------------
@dataclass
class Verdict:
    target: str
    figure: str
    verdict: str  # met | missed | not measured
    # Issue 14 turned the 0 ms ratio, the 2x-the-peers bars and the credits figure of one hashtag into
    # information: at a real API's latency a page's time is the API's, and the rate-limit scenario
    # (make bench-fleet) now carries the throughput targets. Still shown, with its old bar, no verdict.
    information: bool = False


def _fmt_size(size: int) -> str:
    return (
        f"{size // 1_000_000}M"
        if size >= 1_000_000 and size % 1_000_000 == 0
        else (f"{size // 1000}k" if size >= 1000 and size % 1000 == 0 else str(size))
    )


def targets(
    samples: list[Sample], table: dict[tuple[float, int, str], Cell], kills: list[KillOutcome]
) -> list[Verdict]:
    out: list[Verdict] = []
    ours = {k: c for k, c in table.items() if k[2] == OURS and c.rps is not None}
    sizes = sorted({k[1] for k in ours})

    for latency, bar, name in (
        (
            0.0,
            ZERO_MS_BAR,
            f"0 ms latency: ours jsonl.gz / the ceiling's records/s (was a target: >= {ZERO_MS_BAR}x)",
        ),
        (50.0, 0.97, "50 ms latency: ours jsonl.gz >= 0.97x the ceiling's records/s"),
    ):
        information = latency == 0.0
        got: list[tuple[int, float]] = []
        for size in sizes:
            cell = ours.get((latency, size, OURS))
            if cell is not None and cell.ratio is not None:
                got.append((size, cell.ratio))
        if not got:
            out.append(Verdict(name, "-", "not measured", information))
            continue
        # Three decimals: a ratio of 0.968 against a bar of 0.97 must not print as "0.97x, missed".
        figure = ", ".join(f"{_fmt_size(s)}: {r:.3f}x" for s, r in got)
        out.append(Verdict(name, figure, "met" if all(r >= bar for _, r in got) else "missed", information))

    name = "peak RSS at 1M records within 30 MB of the 10k run (ours jsonl.gz)"
    pairs: list[tuple[float, Cell, Cell]] = []
    for lat in (0.0, 50.0):
        small_cell, big_cell = ours.get((lat, 10_000, OURS)), ours.get((lat, 1_000_000, OURS))
        if small_cell is not None and big_cell is not None:
            pairs.append((lat, small_cell, big_cell))
    if not pairs:
        out.append(Verdict(name, "1M or 10k not run", "not measured"))
    else:
        parts, ok = [], True
        for lat, small, big in pairs:
            assert small.peak_rss_mb is not None and big.peak_rss_mb is not None
            delta = big.peak_rss_mb - small.peak_rss_mb
            ok = ok and delta <= 30
            parts.append(
                f"@{lat:g} ms: {small.peak_rss_mb:.0f} MB -> {big.peak_rss_mb:.0f} MB ({delta:+.0f} MB)"
            )
        out.append(Verdict(name, "; ".join(parts), "met" if ok else "missed"))

    for latency in (0.0, 50.0):
        name = f"{latency:g} ms: records/s over HttpOperator's and dlt's, and peak RSS (was a target: >= 2x, lower RSS)"
        parts, ok, any_pair = [], True, False
        for size in sizes:
            mine = table.get((latency, size, OURS))
            for peer in PEERS:
                theirs = table.get((latency, size, peer))
                ratio = pair_ratio(samples, OURS, peer, latency, size)
                if mine is None or theirs is None or ratio is None or theirs.peak_rss_mb is None:
                    continue
                any_pair = True
                assert mine.peak_rss_mb is not None
                lower = mine.peak_rss_mb < theirs.peak_rss_mb
                ok = ok and ratio >= 2.0 and lower
                parts.append(
                    f"{_fmt_size(size)} vs {'HttpOperator' if peer == 'http-operator' else 'dlt'}: "
                    f"{ratio:.2f}x, "
                    f"{mine.peak_rss_mb:.0f} vs {theirs.peak_rss_mb:.0f} MB"
                )
        bounds: list[float] = []
        for size in sizes:
            for peer in PEERS:
                bound = pair_ratio(samples, "ceiling", peer, latency, size)
                if bound is not None:
                    bounds.append(bound)
        if bounds and max(bounds) < 2.0:
            parts.append(
                f"even the ceiling is only {min(bounds):.2f}-{max(bounds):.2f}x the peers here: at this "
                "latency "
                "every sequential cursor client waits on the API, so 2x is out of reach by construction"
            )
        for size in sizes:
            for peer in PEERS:
                theirs = table.get((latency, size, peer))
                if theirs is not None and theirs.rps is None and table.get((latency, size, OURS)) is not None:
                    peer_label = "HttpOperator" if peer == "http-operator" else "dlt"
                    parts.append(
                        f"{_fmt_size(size)} vs {peer_label}: it failed (see *Failed runs*), ours did not"
                    )
        out.append(
            Verdict(
                name,
                "; ".join(parts) or "-",
                ("met" if ok else "missed") if any_pair else "not measured",
                information=True,
            )
        )

    out.extend(_credits_verdict(samples, table, ours))
    out.append(_kill_verdict(kills))
    return out


def _credits_verdict(
    samples: list[Sample], table: dict[tuple[float, int, str], Cell], ours: dict[tuple[float, int, str], Cell]
) -> list[Verdict]:
    """Credits per unique record of one hashtag: information (the fleet scenario measures it at scale)."""
    out: list[Verdict] = []
    name = "credits per unique record on a clean run (ours jsonl.gz; was a target: 1.00)"
    nodup = {s.contestant: s for s in samples if s.kind == NODUP_KIND and s.ok}
    credits = [
        (k[1], c.credits_per_unique) for k, c in sorted(ours.items()) if c.credits_per_unique is not None
    ]
    if OURS in nodup:
        clean = nodup[OURS]
        per_unique = clean.credits / (clean.unique or clean.size)
        figure = (
            f"{per_unique:.4f} on a duplicate-free feed ({clean.size:,} records, {clean.credits:,} credits, "
            f"see *Credits*)"
        )
        floors = {k[:2]: c.credits_per_unique for k, c in table.items() if k[2] == "ceiling"}
        extra = [
            (c.credits_per_unique or 0) - (floors[k[:2]] or 0) for k, c in ours.items() if floors.get(k[:2])
        ]
        if credits and extra:
            figure += (
                f"; on the main runs' feed, where the API sends and bills ~2% repeated records, "
                f"{max(v for _, v in credits):.4f} at worst, {max(extra):+.4f} over one bare pass over "
                "it (the ceiling)"
            )
        out.append(Verdict(name, figure, "met" if per_unique <= 1.0 else "missed", information=True))
    elif not credits:
        out.append(Verdict(name, "-", "not measured", information=True))
    else:
        worst = max(v for _, v in credits)
        figure = f"{worst:.4f} at worst on a feed with ~2% repeated records"
        out.append(Verdict(name, figure, "missed", information=True))
    return out


def _kill_verdict(kills: list[KillOutcome]) -> Verdict:
    name = f"after a kill at 50%: at most one page's credits ({PAGE_SIZE}) re-spent (ours)"
    our_kills = [k for k in kills if k.contestant.startswith("ours")]
    if not our_kills:
        return Verdict(name, "-", "not measured")
    ok = all(
        k.killed_at_calls is not None and k.correct_after_restart and k.respent <= PAGE_SIZE
        for k in our_kills
    )
    figure = "; ".join(f"{k.contestant}: {k.respent} credits" for k in our_kills)
    return Verdict(name, figure, "met" if ok else "missed")


# -- the chart ----------------------------------------------------------------------------------------
def chart(path: Path, table: dict[tuple[float, int, str], Cell], contestants: list[Contestant]) -> bool:
    """records/s and peak RSS by size, one colour per contestant (solid 0 ms, dashed 50 ms); a cross
    on the size axis marks a run that failed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.lines import Line2D
    except ImportError:
        return False
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5.4))
    latencies = sorted({k[0] for k in table})
    styles = ["-", "--", ":", "-."]
    failed_any = False
    for index, c in enumerate(contestants):
        color = f"C{index}"
        for li, latency in enumerate(latencies):
            mine = sorted((k[1], cell) for k, cell in table.items() if k[2] == c.name and k[0] == latency)
            points = [(size, cell) for size, cell in mine if cell.rps]
            if points:
                xs = [p[0] for p in points]
                style = styles[li % 4]
                left.plot(xs, [p[1].rps for p in points], style, marker="o", color=color)
                right.plot(xs, [p[1].peak_rss_mb for p in points], style, marker="o", color=color)
            for size, cell in mine:
                if cell.rps is None:
                    failed_any = True
                    for ax in (left, right):
                        ax.plot(
                            [size],
                            [0],
                            "X",
                            color=color,
                            markersize=11,
                            clip_on=False,
                            transform=ax.get_xaxis_transform(),
                        )
    left.set_yscale("log")
    left.set_title("records/s (median)")
    left.set_ylabel("records/s")
    right.set_title("peak RSS of the process")
    right.set_ylabel("MiB")
    right.set_ylim(bottom=0)
    for ax in (left, right):
        ax.set_xscale("log")
        ax.set_xlabel("records in the hashtag")
        ax.grid(True, which="both", alpha=0.3)
    handles = [Line2D([], [], color=f"C{i}", marker="o", label=c.label) for i, c in enumerate(contestants)]
    handles += [
        Line2D([], [], color="grey", linestyle=styles[li % 4], label=f"{latency:g} ms per call")
        for li, latency in enumerate(latencies)
    ]
    if failed_any:
        handles.append(
            Line2D([], [], color="grey", marker="X", linestyle="", markersize=9, label="run failed")
        )
    fig.legend(handles=handles, loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.suptitle("UnifAPI hashtag -> local files: speed and memory by size")
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# -- BENCHMARKS.md ------------------------------------------------------------------------------------
TEMPLATE = """\
# Benchmarks

<!-- Generated by `python -m benchmarks.run` (benchmarks/report.py).
     Do not edit by hand: run the command again. -->

The same job for every contestant: **every record of one hashtag to local files**, against the local
UnifAPI sandbox running in its own process (pages of {page_size}, ~52 KB each), on one machine, one
contestant at a time, interleaved across rounds (A B C A B C). Each run is a fresh process; the window
measured is the job only (see *Method*).

## Command

```bash
make bench BENCH_ARGS="{bench_args}"
# = {command}
```

Wall time of the whole command: {wall_minutes} min. Measured code: {code}.{rendered}

## Machine

| | |
|---|---|
| CPU | {cpu_model} |
| Cores (`nproc`) | {nproc} |
| Memory | {memory_gib} GiB |
| Kernel | {kernel} |
| Load average at start / end (1, 5, 15 min) | {load_start} / {load_end} |
{open_files}
## Versions

| | |
|---|---|
{versions}

## What was run

{cells}

{skipped}
## Results

records/s = the hashtag's unique records / wall time of the window (every contestant does the
identical job, so this is job throughput). *x ceiling* = the median over rounds of the ratio to the
ceiling's run **in the same round**. Peak RSS = the whole process (Python, imports, Airflow for the
Airflow contestants, the job); *job RSS* = the window's peak minus the RSS when the window opened.
CPU = user + system seconds of the process (all threads) in the window. Credits = the sandbox
ledger's credits for the run / unique ids in the output (the ceiling: / the hashtag's size).

{tables}

![records/s and peak RSS by size](benchmarks/chart.png)

{failures}
## Kill at 50% and restart

Each contestant is SIGKILLed (its whole process group) as soon as the sandbox ledger shows half the
page calls of a clean run, then restarted the way that tool restarts. *Re-spent* = ledger credits over
both runs minus the credits of a clean run.

{kill_table}

## Credits

{credits_table}

## Targets (one hashtag)

Since issue 14 the single-hashtag targets are the 50 ms ratio, flat RSS to 1M records and at most
one page re-spent after a kill; throughput at many hashtags is judged by the rate-limit scenario
(`make bench-fleet`, its own section).

| Target | Figure | Verdict |
|---|---|---|
{target_rows}

## Information (former targets)

At a real API's latency (hundreds of ms a page) a page's time is the API's: the 0 ms ratio measures
CPU per page against the bare loop (with the sandbox on the same 2 cores), and at 50 ms every
sequential cursor client waits on the API. Shown with the bar they once had; no verdict.

| Figure | This run | Against the old bar |
|---|---|---|
{information_rows}

{cpu_budget}{profile}
## Method

- **Sandbox**: `python -m airflow_provider_unifapi.sandbox` in its own process, one hashtag per size,
  reset before every run (fresh ledger and balance), latency set per cell. Its settings: {sandbox}.
- **Contestants**, each in its own process (`python -m benchmarks.child`):
{contestant_list}
- **Window**: opened inside the task's `execute()` (ours, HttpOperator) or around `pipeline.run()` (dlt,
  inside an Airflow `@task`), so Python/Airflow start-up, `dag.test()` set-up and the XCom push are
  outside it; the ceiling's window covers its whole loop. The Airflow contestants run as real task
  instances through `dag.test()` on a SQLite metadata DB, in the contestant's process.
- **Memory**: the child reads its start-up peak (`VmHWM` of `/proc/self/status`), resets the kernel's
  high-water mark (`/proc/self/clear_refs`) as the window opens, reads the window's peak as it closes
  and the peak since then once the task is over. Peak RSS = the larger of the start-up peak and the
  peak after it. (Not `wait4()`'s `ru_maxrss`: Linux carries the parent's RSS across fork+exec into
  it, so the harness's own size would leak into every child's figure.)
- **Correctness**: every run's output is read back (gzip / pyarrow, listed by `_manifest.json` for
  ours) and compared with the sandbox's ground truth (`/_sandbox/hashtags/{{id}}/truth`): ours must
  hold exactly the truth in order; the peers must hold every unique id and nothing else (they write
  the duplicates the API sends, counted in *dups written*). A run of ours or of the ceiling that
  crashes or delivers wrong data fails the command (exit code 1); a peer's failure is a result,
  listed under *Failed runs* (the smoke, `--smoke`, fails on any contestant).
- Two cores: the sandbox uses one, the contestant the other; other work on the machine adds noise
  (see the load averages). The harness sleeps while a contestant runs.
"""


def _table(
    table: dict[tuple[float, int, str], Cell], samples: list[Sample], contestants: list[Contestant]
) -> str:
    latencies = sorted({k[0] for k in table})
    sizes = sorted({k[1] for k in table})
    labels = {c.name: c.label for c in contestants}
    blocks = []
    for latency in latencies:
        rows = [
            f"### {latency:g} ms latency per call\n",
            "| Size | Contestant | Runs | records/s | x ceiling | vs ours | Peak RSS MB | Job RSS MB | "
            "CPU s / 1k rec | Credits / unique rec | Dups written |",
            "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for size in sizes:
            for c in contestants:
                cell = table.get((latency, size, c.name))
                if cell is None:
                    continue
                if cell.rps is None:
                    worst = cell.samples[-1]
                    rows.append(
                        f"| {size:,} | {labels[c.name]} | 0 of {len(cell.samples)} | **failed** after "
                        f"{_ledger(worst, worst.calls)} calls (see *Failed runs*) | | | | | | | |"
                    )
                    continue
                vs = pair_ratio(samples, OURS, c.name, latency, size) if c.name != OURS else None
                runs = f"{cell.runs}" + (f" ({cell.failed} failed)" if cell.failed else "")
                rows.append(
                    f"| {size:,} | {labels[c.name]} | {runs} | {cell.rps:,.0f} | "
                    f"{f'{cell.ratio:.2f}x' if cell.ratio is not None else '-'} | "
                    f"{f'{vs:.2f}x' if vs is not None else '-'} | "
                    f"{cell.peak_rss_mb:.0f} | {cell.job_rss_mb:.0f} | "
                    f"{cell.cpu_per_1k:.3f} | {cell.credits_per_unique:.4f} | "
                    f"{cell.duplicates if c.output != 'none' else '-'} |"
                )
        blocks.append("\n".join(rows))
    note = "*vs ours* = ours jsonl.gz records/s / that contestant's, median of same-round pairs."
    return "\n\n".join(blocks) + "\n\n" + note


def _ledger(sample: Sample, value: int) -> str:
    """A ledger figure of ``sample``, or "unknown" when the sandbox restarted before it was read."""
    return "unknown" if sample.ledger_lost else f"{value:,}"


def _failures(samples: list[Sample], contestants: list[Contestant], limit: int | None = None) -> str:
    failed = [s for s in samples if not s.ok]
    if not failed:
        return ""
    labels = {c.name: c.label for c in contestants}
    rows = [
        "### Failed runs\n",
        "| Contestant | Size | Latency | Round | Calls made (ledger) | Credits spent | Reason |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for s in failed:
        reason = failure_reason(s.problem, s.log).replace("|", "\\|")
        rows.append(
            f"| {labels.get(s.contestant, s.contestant)} | {s.size:,} | {s.latency_ms:g} ms | {s.round} "
            f"| {_ledger(s, s.calls)} | {_ledger(s, s.credits)} | `{reason}` |"
        )
    notes = []
    if any("Too many open files" in failure_reason(s.problem, s.log) for s in failed):
        notes.append(
            "*Too many open files*: the process hit its open-file limit (`ulimit -n`"
            + (f", {limit:,} here" if limit else "")
            + "). HttpOperator's pagination keeps every page's `Response` until the last page, and "
            "`HttpHook.run` opens a new `requests` session per call, so each kept response also keeps its "
            "connection open: one socket per page (1M records = ~20,400 pages)."
        )
    return "\n".join(rows) + "\n" + "".join(f"\n{note}\n" for note in notes)


def _credits_table(samples: list[Sample], contestants: list[Contestant]) -> str:
    runs = [s for s in samples if s.kind == NODUP_KIND]
    if not runs:
        return "Not measured in this run."
    labels = {c.name: c.label for c in contestants}
    rows = [
        f"One clean run each of {runs[0].size:,} records at 0 ms with the sandbox's `duplicate_rate=0`: every "
        "record it sends is new, so a tool that never pays twice for a page pays exactly one credit per "
        "unique record. (In the main runs the sandbox repeats ~2% of records across pages, as the API "
        "may, and bills them: the floor there is one pass over the feed, ~1.02.)\n",
        "| Contestant | Calls | Credits charged (ledger) | Unique records delivered | Credits / unique record |",
        "|---|---:|---:|---:|---:|",
    ]
    for s in runs:
        unique = s.unique or s.size
        per = f"{s.credits / unique:.4f}" if s.ok else f"failed: {failure_reason(s.problem, s.log)}"
        rows.append(
            f"| {labels.get(s.contestant, s.contestant)} | {s.calls:,} | {s.credits:,} | {unique:,} | {per} |"
        )
    return "\n".join(rows)


def _kill_table(kills: list[KillOutcome], contestants: list[Contestant], kill: dict[str, Any] | None) -> str:
    if not kills:
        return "Not run."
    labels = {c.name: c for c in contestants}
    rows = [
        f"{kill['size']:,} records at {kill['latency_ms']:g} ms per call." if kill else "",
        "",
        "| Contestant | Restarts | Clean run credits | Killed at (calls) | Credits, both runs "
        "| Re-spent credits | "
        "Re-spent pages | Output after restart |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for k in kills:
        c = labels[k.contestant]
        output = (
            "exact truth"
            if k.correct_after_restart and c.dedupes
            else (
                f"every unique id, {k.duplicates_after_restart:,} dups"
                if k.correct_after_restart
                else f"WRONG: {k.problem}"
            )
        )
        killed = f"{k.killed_at_calls} of {k.clean_calls}" if k.killed_at_calls is not None else "not killed"
        rows.append(
            f"| {c.label} | {c.restart} | {k.clean_credits:,} | {killed} | {k.total_credits:,} "
            f"| {k.respent:,} | "
            f"{k.respent / PAGE_SIZE:.1f} | {output} |"
        )
    return "\n".join(rows)


def cpu_per_page(
    samples: list[Sample], latency_ms: float = 0.0
) -> dict[tuple[int, str], tuple[float, float, float]]:
    """``(size, contestant) -> (wall, own CPU, sandbox CPU)`` in µs per call: medians of the clean runs
    at ``latency_ms`` whose sandbox CPU is known."""
    groups: dict[tuple[int, str], list[Sample]] = {}
    for s in samples:
        if (
            s.kind == "clean"
            and s.ok
            and s.latency_ms == latency_ms
            and s.calls
            and s.sandbox_cpu_s is not None
        ):
            groups.setdefault((s.size, s.contestant), []).append(s)
    out: dict[tuple[int, str], tuple[float, float, float]] = {}
    for key, group in groups.items():
        wall = _median(s.wall_s / s.calls * 1e6 for s in group)
        cpu = _median(s.cpu_s / s.calls * 1e6 for s in group)
        sandbox = _median((s.sandbox_cpu_s or 0.0) / s.calls * 1e6 for s in group)
        assert wall is not None and cpu is not None and sandbox is not None
        out[key] = (wall, cpu, sandbox)
    return out


def _cpu_budget(samples: list[Sample], contestants: list[Contestant], cores: int) -> str:
    """Where the machine's time goes at 0 ms, and what the target ratio asks of it."""
    per_page = cpu_per_page(samples)
    if not per_page:
        return ""
    rows = [
        "| Size | Contestant | Wall µs / page | Its CPU µs / page | Sandbox CPU µs / page | Cores busy |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for size in sorted({k[0] for k in per_page}):
        for c in contestants:
            if (size, c.name) in per_page:
                wall, cpu, sandbox = per_page[(size, c.name)]
                rows.append(
                    f"| {size:,} | {c.label} | {wall:,.0f} | {cpu:,.0f} | {sandbox:,.0f} | {(cpu + sandbox) / wall:.2f} |"
                )
    notes: list[str] = []
    for size in sorted({k[0] for k in per_page}):
        if (size, "ceiling") not in per_page or (size, OURS) not in per_page:
            continue
        ceiling_wall, ceiling_cpu, ceiling_sandbox = per_page[(size, "ceiling")]
        _, ours_cpu, ours_sandbox = per_page[(size, OURS)]
        budget = ceiling_wall / ZERO_MS_BAR
        verdict = (
            f"more than that whole budget: a loop that does this work in one thread cannot reach {ZERO_MS_BAR}x, "
            "however well its calls overlap with the sandbox"
            if ours_cpu > budget
            else "within that budget: overlap with the sandbox decides"
        )
        notes.append(
            f"- {_fmt_size(size)}: {ZERO_MS_BAR}x the ceiling is a page every {budget:,.0f} µs. Ours spends "
            f"{ours_cpu:,.0f} µs of CPU per page, {verdict}. Spread over processes, the same work "
            f"and the sandbox's would keep {(ours_cpu + ours_sandbox) / budget:.2f} of the {cores} cores busy at "
            f"that pace (the ceiling keeps {(ceiling_cpu + ceiling_sandbox) / ceiling_wall:.2f} busy)."
        )
    return (
        "## Where the machine's time goes at 0 ms\n\n"
        "Per page (one call), medians of the clean runs: the wall time of the window, the CPU of the "
        "contestant's process in it, and the CPU of the sandbox process in the same window (request "
        "handling, pagination, rendering the next page; read from `/proc/<pid>/stat` as the window "
        "opens and closes, in 10 ms ticks: at 10k records (windows of ~0.2 s) read it as +-20%). "
        f"*Cores busy* = (both CPUs) / wall; the machine has {cores}.\n\n"
        + "\n".join(rows)
        + ("\n\n" + "\n".join(notes) if notes else "")
        + "\n\n"
    )


def _profile(profile: Sample | None, verdicts: list[Verdict]) -> str:
    if profile is None:
        return ""
    missed = [v.target for v in verdicts if v.verdict == "missed" and not v.information]
    head = (
        "## Per-page profile of ours (jsonl.gz, 0 ms)\n\n"
        + (f"{len(missed)} target(s) missed, so: where a page's time goes. " if missed else "")
        + f"{profile.size:,} records at 0 ms, one extra run of the operator in `dag.test()` with "
        "`perf_counter` "
        "wrappers around the package's functions (benchmark-only: `benchmarks/profile_ours.py`, the package "
        "is not edited). Each step is charged its exclusive time (minus the wrapped steps it calls); "
        "the wrappers add ~1 µs per call. *wait* includes the sandbox's time to answer (~0 ms latency) "
        "and, on a loaded 2-core machine, time the sandbox process waits for a core.\n\n"
    )
    if not profile.ok or not profile.profile:
        return head + f"The profiling run failed: {profile.problem}\n\n"
    data = profile.profile
    steps = data.get("steps", [])
    pages = max(profile.calls, 1)
    total = profile.wall_s
    setup = float(data.get("setup_s", 0.0))
    in_loop = [s for s in steps if s.get("phase") == "page"]
    setup_steps = [s for s in steps if s.get("phase") == "setup"]
    finish = sum(s["seconds"] for s in steps if s.get("phase") == "finish")
    loop = max(total - setup - finish, 1e-9)
    rows = [
        "| Step (per page, over the paging loop) | Calls | µs per page | Share of the loop |",
        "|---|---:|---:|---:|",
    ]
    covered = 0.0
    for step in sorted(in_loop, key=lambda s: -s["seconds"]):
        covered += step["seconds"]
        rows.append(
            f"| {step['label']} (`{step['key']}`) | {step['calls']:,} "
            f"| {step['seconds'] / pages * 1e6:,.0f} | "
            f"{step['seconds'] / loop:.0%} |"
        )
    rest = loop - covered
    rows.append(
        "| rest of the loop (budget checks, cursor bookkeeping, uncovered code) | "
        f"| {rest / pages * 1e6:,.0f} | {rest / loop:.0%} |"
    )
    rows.append(f"| **loop** ({pages:,} pages) | | **{loop / pages * 1e6:,.0f}** | 100% |")
    rows.append("")
    parts = ", ".join(f"{s['label']} {s['seconds'] * 1e3:,.0f} ms" for s in setup_steps)
    other = setup - sum(s["seconds"] for s in setup_steps)
    rows.append(
        f"Once per run: **set-up before the first page {setup * 1e3:,.0f} ms** "
        f"({parts}, other {other * 1e3:,.0f} ms); "
        f"finish (last part, manifest) {finish * 1e3:,.0f} ms; window {total:,.2f} s "
        f"({profile.records_per_s:,.0f} records/s with the wrappers). The loop alone runs at "
        f"{profile.size / loop:,.0f} records/s."
    )
    absent = data.get("absent") or []
    tail = f"\n\nNot in this version of the package (not wrapped): {', '.join(absent)}." if absent else ""
    return head + "\n".join(rows) + tail + "\n\n"


def write(
    md: Path,
    chart_path: Path,
    info: dict[str, Any],
    contestants: list[Contestant],
    samples: list[Sample],
    kills: list[KillOutcome],
    profile: Sample | None,
) -> None:
    table = cells(samples)
    verdicts = targets(samples, table, kills)
    has_chart = chart(chart_path, table, contestants)
    machine = info["machine"]
    cells_text = "\n".join(
        f"- {c['size']:,} records at {c['latency_ms']:g} ms per call: {c['rounds']} interleaved round(s) of "
        f"{len(contestants)} contestants"
        for c in info["cells"]
    )
    cells_text += (
        "\n- Not run: "
        + ", ".join(
            f"{_fmt_size(s)} at {lat:g} ms"
            for lat in (0.0, 50.0)
            for s in (10_000, 100_000, 1_000_000)
            if not any(c["size"] == s and c["latency_ms"] == lat for c in info["cells"])
        )
        if not info.get("smoke")
        else ""
    )
    cells_text += (
        "\n\nFewer than 5 rounds in a cell means its medians rest on fewer samples: read them as indicative. "
        "A cell of 1M records at 50 ms costs ~20,400 pages x 50 ms = 17 min per contestant per round."
    )
    skipped = "".join(
        f"- Not installed here, so not run: {k} ({v})\n" for k, v in info.get("skipped", {}).items()
    )
    command = info["command"]
    bench_args = command.replace("python -m benchmarks.run", "").strip()
    text = TEMPLATE.format(
        page_size=PAGE_SIZE,
        bench_args=bench_args,
        command=command,
        wall_minutes=info.get("wall_minutes"),
        rendered=(
            f" This report was re-rendered from that run's raw results (no new measurement) by "
            f"`{info['rendered_by']}`."
            if info.get("rendered_by")
            else ""
        ),
        code=info["code"],
        cpu_model=machine["cpu_model"],
        nproc=machine["nproc"],
        memory_gib=machine["memory_gib"],
        kernel=machine["kernel"],
        open_files=(
            f"| Open-file limit of each process (`ulimit -n`) | {machine['open_files_limit']:,} |\n"
            if machine.get("open_files_limit")
            else ""
        ),
        load_start=", ".join(f"{x:.2f}" for x in machine["loadavg_start"]),
        load_end=", ".join(f"{x:.2f}" for x in machine.get("loadavg_end", (0, 0, 0))),
        versions="\n".join(f"| {k} | {v} |" for k, v in info["versions"].items()),
        cells=cells_text,
        skipped=skipped + ("\n" if skipped else ""),
        tables=_table(table, samples, contestants),
        failures=_failures(samples, contestants, machine.get("open_files_limit")),
        kill_table=_kill_table(kills, contestants, info.get("kill")),
        credits_table=_credits_table(samples, contestants),
        target_rows="\n".join(
            f"| {v.target} | {v.figure} | **{v.verdict}** |" for v in verdicts if not v.information
        ),
        information_rows="\n".join(
            f"| {v.target} | {v.figure} | {v.verdict} |" for v in verdicts if v.information
        ),
        cpu_budget=_cpu_budget(samples, contestants, int(machine.get("nproc") or 0)),
        profile=_profile(profile, verdicts),
        sandbox=", ".join(f"`{k}={v}`" for k, v in sorted(info.get("sandbox", {}).items())),
        contestant_list="\n".join(f"  - **{c.label}** (`{c.name}`): {_describe(c)}" for c in contestants),
    )
    import os

    link = os.path.relpath(chart_path, md.parent)
    text = text.replace("(benchmarks/chart.png)", f"({link})")
    if not has_chart:
        text = text.replace(
            f"![records/s and peak RSS by size]({link})", "(matplotlib is not installed: no chart)"
        )
    md.write_text(_with_kept_sections(text, md))


#: A section another command (``python -m benchmarks.fleet``) or a person wrote between
#: ``<!-- NAME:start ... -->`` and ``<!-- NAME:end -->``: a re-run of this report carries it over.
KEPT_SECTION = re.compile(r"<!-- ([\w-]+):start\b.*?-->.*?<!-- \1:end -->\n", re.DOTALL)


def _with_kept_sections(text: str, md: Path) -> str:
    """``text`` with the kept sections of the current ``md`` put back before ``## Command``."""
    old = md.read_text() if md.exists() else ""
    kept = "".join(m.group(0) + "\n" for m in KEPT_SECTION.finditer(old))
    return text.replace("## Command\n", kept + "## Command\n", 1) if kept else text


def _describe(c: Contestant) -> str:
    import importlib

    doc = (importlib.import_module(c.module).__doc__ or "").strip().split("\n\n")[0]
    return " ".join(doc.split())
