"""Figures of one cell: peak RSS of process trees (psutil), the sandbox ledger's rate and 429s,
and the output checked against the sandbox's truth, per hashtag, as a set.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil

from benchmarks.verify import ours_ids

#: A tree: its root's pid and whether the root itself counts (the scheduler does not, its tasks do).
Tree = tuple[int, bool]


def tree_rss(roots: list[Tree]) -> int:
    """Summed RSS (bytes) of the roots and all their descendants (a process that left counts 0)."""
    total = 0
    for pid, with_root in roots:
        try:
            root = psutil.Process(pid)
            procs = root.children(recursive=True) + ([root] if with_root else [])
        except psutil.Error:
            continue
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                total += proc.memory_info().rss
    return total


class RssSampler:
    """Samples named groups of process trees every ``interval`` s in a thread; keeps each peak.

    :param groups: name -> a callable giving the trees to sum (called at each sample, so processes
        that start later, such as task processes, are found).
    """

    def __init__(self, groups: dict[str, Callable[[], list[Tree]]], interval: float = 0.5) -> None:
        self.groups = groups
        self.interval = interval
        self.peaks = dict.fromkeys(groups, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="rss-sampler")

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> None:
        for name, trees in self.groups.items():
            self.peaks[name] = max(self.peaks[name], tree_rss(trees()))

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def peaks_mb(self) -> dict[str, float]:
        return {name: round(peak / 2**20, 1) for name, peak in self.peaks.items()}


def ledger_figures(calls: list[dict[str, Any]], rate: int, wall_s: float) -> dict[str, Any]:
    """Rate and 429 figures from the ledger's calls (``ts`` is when the sandbox decided the reply).

    The active window runs from the first call to the last: a contestant's start-up (Airflow, the
    scheduler) is outside it; the overall figure divides by ``wall_s`` (start-up included).
    """
    ok = [c for c in calls if c["status"] == 200]
    limited = sum(1 for c in calls if c["status"] == 429)
    window = (calls[-1]["ts"] - calls[0]["ts"]) if len(calls) > 1 else 0.0
    # n calls span n - 1 intervals: counting n would overstate a short run
    per_min = (len(ok) - 1) * 60.0 / window if window > 0 and ok else 0.0
    overall = len(ok) * 60.0 / wall_s if wall_s > 0 else 0.0
    return {
        "calls": len(calls),
        "ok_calls": len(ok),
        "calls_429": limited,
        "pct_429": round(100.0 * limited / len(calls), 2) if calls else 0.0,
        "other_errors": len(calls) - len(ok) - limited,
        "active_s": round(window, 2),
        "sustained_per_min": round(per_min, 1),
        "sustained_frac": round(per_min / rate, 3),
        "overall_frac": round(overall / rate, 3),
        "credits": sum(int(c["credits_charged"] or 0) for c in calls),
        "records_served": sum(int(c["records"] or 0) for c in ok),
    }


def _jsonl_ids(path: Path) -> Iterator[str]:
    with open(path, "rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    with gzip.open(path, "rb") if gzipped else open(path, "rb") as handle:
        for line in handle:
            if line.strip():
                yield str(json.loads(line)["id"])


def _files_ids(folder: Path) -> list[str]:
    files = sorted(p for p in folder.iterdir() if p.is_file())
    if not files:
        raise FileNotFoundError(f"no file under {folder}")
    return [i for path in files for i in _jsonl_ids(path)]


def delivered_ids(contestant: str, out: Path, hashtag_ids: list[str]) -> dict[str, list[str]]:
    """Hashtag id -> ids written, read the way each contestant lays its output out."""
    from benchmarks.fleet.child import DLT_DATASET, dlt_table

    readers: dict[str, Callable[[int, str], list[str]]] = {
        "ours-batched": lambda _i, hid: ours_ids(out / f"hashtag={hid}"),
        "ours-mapped": lambda i, _hid: ours_ids(out / f"m={i}"),
        "ours-mapped-paced": lambda i, _hid: ours_ids(out / f"m={i}"),
        "http-mapped": lambda _i, hid: list(_jsonl_ids(out / f"{hid}.jsonl")),
        "ceiling": lambda _i, hid: list(_jsonl_ids(out / f"{hid}.jsonl")),
        "dlt": lambda _i, hid: _files_ids(out / DLT_DATASET / dlt_table(hid)),
    }
    read = readers[contestant]
    return {hid: read(i, hid) for i, hid in enumerate(hashtag_ids)}


def check_output(
    contestant: str, out: Path, truth: dict[str, list[str]]
) -> tuple[bool, str | None, dict[str, int]]:
    """Whether every hashtag's records equal the truth as a set; the problem; rows/unique counts."""
    hashtag_ids = list(truth)
    try:
        got = delivered_ids(contestant, out, hashtag_ids)
    except (OSError, KeyError, ValueError) as exc:
        return False, f"unreadable output: {type(exc).__name__}: {exc}", {}
    wrong = [hid for hid in hashtag_ids if set(got[hid]) != set(truth[hid])]
    rows = sum(len(v) for v in got.values())
    unique = sum(len(set(v)) for v in got.values())
    counts = {"rows": rows, "unique": unique, "duplicates": rows - unique}
    if not wrong:
        return True, None, counts
    first = wrong[0]
    missing = len(set(truth[first]) - set(got[first]))
    extra = len(set(got[first]) - set(truth[first]))
    problem = (
        f"{len(wrong)} of {len(hashtag_ids)} hashtags differ from the truth "
        f"(first: {first}, {missing} missing, {extra} unknown)"
    )
    return False, problem, counts
