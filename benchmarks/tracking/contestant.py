"""The plug-in point: what a contestant is, and the registry the harness runs.

A contestant is a module with two functions (and the harness does everything else: the sandbox, its
clock, the ledger, the truth, the child process, wall time and RSS):

``run_day(ctx: DayContext) -> DayResult``
    Called once per simulated day, in a child process of its own (``python -m
    benchmarks.tracking.child``), with the sandbox's clock at that day's start. It collects the
    hashtags ``ctx.hashtags`` from ``ctx.sandbox_url`` however it likes, writing its output and any
    state it keeps between days (a tracking index, dlt's pipeline folder) under ``ctx.workdir``,
    which is the same folder every day of one entry model and empty on day 0. Credits are never
    taken from what it says: the sandbox's ledger counts them.

``delivered(ctx: DayContext) -> Delivery``
    Called in the harness's process after ``run_day`` returned (outside the measurement): reads the
    contestant's *output* back and says which video ids it delivered that day, per hashtag, and how
    many rows it wrote (so duplicates across days are measured from the output, never assumed).

A tracking contestant of the coming feature (each policy K = 1, 2, 3, 5 with a weekly full sweep;
every N = 2, 3 runs) is one :class:`Entry` per policy, all pointing at one module, the policy in
``params``. Two optional figures belong to contestants that keep an index of ids seen:

- ``DayResult.index_bytes`` / ``index_ids``: its size after each day (the report's "index B / id",
  from the last day);
- ``index_probe(ids: int, workdir: Path) -> dict`` in the module: build (and query) an index of
  ``ids`` ids as the contestant would, in a child process of its own; the harness measures that
  process's peak RSS for "peak RSS with 1M ids in the index" (``--probe-ids``, default 1,000,000),
  and keeps the dict it returns (``index_bytes`` if it knows it).

Modules without them show ``-`` in those columns (the baselines keep no index).
"""

from __future__ import annotations

import importlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

from benchmarks.tracking.config import API_KEY, PAGE_SIZE


@dataclass
class DayContext:
    """One contestant-day: what ``run_day`` and ``delivered`` get (travels to the child as JSON)."""

    contestant: str
    module: str
    day: int
    hashtags: list[str]
    sandbox_url: str
    workdir: str
    params: dict[str, Any] = field(default_factory=dict)
    api_key: str = API_KEY
    page_size: int = PAGE_SIZE

    @property
    def path(self) -> Path:
        return Path(self.workdir)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DayResult:
    """What ``run_day`` says of itself (informative only: the harness measures the figures).

    :param records: records the contestant wrote that day (its own count).
    :param index_bytes: bytes of its tracking index after the day (``None``: it keeps none).
    :param index_ids: ids in that index.
    :param notes: anything worth keeping in results.json.
    """

    records: int = 0
    index_bytes: int | None = None
    index_ids: int | None = None
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass
class Delivery:
    """What the contestant's output shows after a day (read back by ``delivered``).

    :param ids: hashtag id -> the ids delivered *that day* (as a set).
    :param rows_added: rows that day's run added to the output (within-day repeats included).
    :param rows_total: rows the output holds now, every day so far included, for an output that
        replaces or merges rows (a table); ``None`` for an append-only one (folders per day), whose
        total the harness sums from ``rows_added``.
    :param distinct_total: distinct (hashtag, id) pairs the output holds now (``None`` with
        ``rows_total``: the harness takes the union of the days' ``ids``).
    """

    ids: dict[str, set[str]]
    rows_added: int
    rows_total: int | None = None
    distinct_total: int | None = None


class ContestantModule(Protocol):
    def run_day(self, ctx: DayContext) -> DayResult: ...

    def delivered(self, ctx: DayContext) -> Delivery: ...


@dataclass(frozen=True)
class Entry:
    """One contestant of the matrix: a name, its module, its parameters, a line for the report."""

    name: str
    module: str
    description: str
    params: dict[str, Any] = field(default_factory=dict)
    needs: str | None = None  # an importable module it needs (skipped with the reason if missing)


#: The matrix, in report order. (b) tracking with daily full sweeps and (c) its policies are added
#: here once the feature exists, e.g.
#: ``Entry("tracking-k2", "benchmarks.tracking.contestants.tracking", "...", {"k": 2, "sweep_every": 7})``.
REGISTRY: tuple[Entry, ...] = (
    Entry(
        "full-repull",
        "benchmarks.tracking.contestants.full_repull",
        "(a) today: HashtagVideoCollector pages every hashtag's whole feed daily into day=<d>/hashtag=<id>/",
    ),
    Entry(
        "dlt-merge",
        "benchmarks.tracking.contestants.dlt_merge",
        '(d) dlt rest_api, primary_key="id", write_disposition="merge" into SQLite, re-pulling daily',
        needs="dlt",
    ),
)
BY_NAME = {e.name: e for e in REGISTRY}


def load(module: str) -> ContestantModule:
    """The contestant's module (typed as the protocol)."""
    return cast(ContestantModule, importlib.import_module(module))
