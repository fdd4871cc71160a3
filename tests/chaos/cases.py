"""Seeded chaos cases: a hashtag, collector settings, a fault plan, balance squeezes and kills.

Everything about a case derives from its seed, so a failing case is replayed by its seed alone
(``CHAOS_SEEDS=123 pytest tests/chaos -k collector``). Timing (when a SIGKILL lands, which call a
timeout hits) still varies a little between replays; the checks hold for every interleaving.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

#: Client settings of chaos tries: fast retries (the waits are not what is tested here), and a
#: timeout well under the ``slow`` fault's delay so every slow answer is a client timeout.
CLIENT = {"timeout": 0.5, "backoff_base": 0.005, "max_retry_wait": 0.05, "max_retries": 5}
SLOW_DELAY_S = 1.2


@dataclass(frozen=True)
class Kill:
    """``mode`` is ``sigkill`` (a child process, killed from outside) or a :data:`KILL_POINTS` name."""

    mode: str
    nth: int


@dataclass
class ChaosCase:
    seed: int
    hashtag_id: str
    video_count: int
    page_size: int
    records_per_part: int
    output_format: str
    max_credits: int | None
    fail_on_low_balance: bool
    start_balance: int
    top_ups: list[int]
    faults: list[dict[str, Any]]
    kills: list[Kill]
    labels: list[str] = field(default_factory=list)
    #: extra ``POST /_sandbox/reset`` settings (e.g. ``short_page_rate`` for exact scenarios).
    sandbox_settings: dict[str, Any] = field(default_factory=dict)
    #: never let the workspace balance drop below this (``Budget.min_balance``)
    min_balance: int | None = None
    #: stop after exactly this many unique records (``Budget.max_records``)
    max_records: int | None = None

    @classmethod
    def from_seed(cls, seed: int, *, sigkills: bool = True) -> ChaosCase:
        rng = random.Random(seed)
        video_count = rng.randint(150, 1200)
        page_size = rng.choice([7, 10, 20, 33, 50, 50])
        pages = -(-video_count // page_size)
        fmt = rng.choices(["jsonl.gz", "jsonl", "parquet"], weights=[6, 3, 1])[0]
        max_credits = (
            rng.randint(video_count // 4, video_count + video_count // 4) if rng.random() < 0.35 else None
        )
        squeezed = rng.random() < 0.45
        start_balance = rng.randint(video_count // 5, (video_count * 4) // 5) if squeezed else 10_000_000
        # Each stop for lack of credits is followed by one top-up; the last one always suffices.
        top_ups = [rng.randint(1, video_count // 3) for _ in range(rng.randint(0, 2))] + [10_000_000]
        faults, labels = fault_plan(rng, intensity=rng.uniform(0.6, 1.4))
        # a floor a few pages below the starting balance (only when the balance is not squeezed: a
        # squeeze is about running dry, a floor about never getting there)
        min_balance = (
            start_balance - rng.randint(video_count // 4, video_count)
            if not squeezed and rng.random() < 0.2
            else None
        )
        max_records = rng.randint(1, video_count) if rng.random() < 0.15 else None
        kills: list[Kill] = []
        for _ in range(rng.choice([0, 1, 1, 2, 3])):
            modes = ["before_call", "after_call", "on_page"] + (["sigkill", "sigkill"] if sigkills else [])
            kills.append(Kill(rng.choice(modes), rng.randint(1, max(1, min(pages, 25)))))
        return cls(
            seed=seed,
            hashtag_id=str(900_000 + seed),
            video_count=video_count,
            page_size=page_size,
            records_per_part=rng.choice([20, 75, 200, 10_000]),
            output_format=fmt,
            max_credits=max_credits,
            fail_on_low_balance=rng.random() < 0.9,
            start_balance=start_balance,
            top_ups=top_ups,
            faults=faults,
            kills=kills,
            labels=labels,
            min_balance=min_balance,
            max_records=max_records,
        )


def fault_plan(rng: random.Random, *, intensity: float) -> tuple[list[dict[str, Any]], list[str]]:
    """Rules at a seeded rate each (about 35 % of calls fail at intensity 1), with a label per rule.

    Labels name what the report counts: the ledger cannot tell a 429 with ``Retry-After`` from one
    without, so the plan's own ``fired`` counters (one per rule) are what the figures use.
    """
    table: list[tuple[str, float, dict[str, Any]]] = [
        ("429 Retry-After: 1", 0.03, {"kind": "error", "status": 429, "retry_after": 1}),
        ("429 Retry-After: 0", 0.02, {"kind": "error", "status": 429, "retry_after": 0}),
        ("429 without Retry-After", 0.03, {"kind": "error", "status": 429}),
        ("500 internal_error", 0.03, {"kind": "error", "status": 500}),
        ("500 response_shape_error", 0.01, {"kind": "error", "status": 500, "type": "response_shape_error"}),
        ("502 upstream_error", 0.02, {"kind": "error", "status": 502}),
        ("502 proxy HTML", 0.02, {"kind": "error", "status": 502, "html": True}),
        ("503 upstream_unavailable", 0.04, {"kind": "error", "status": 503}),
        ("504 proxy HTML", 0.01, {"kind": "error", "status": 504}),
        ("connection reset (not billed)", 0.03, {"kind": "reset"}),
        ("connection reset (billed)", 0.015, {"kind": "reset", "billed": True}),
        ("timeout (slow answer)", 0.012, {"kind": "slow", "delay_s": SLOW_DELAY_S}),
        ("malformed body (billed)", 0.025, {"kind": "malformed"}),
        ("truncated body (billed)", 0.025, {"kind": "truncated"}),
        (
            "schema-breaking body (billed)",
            0.01,
            {"kind": "shape", "variant": rng.choice(["missing_id", "missing_pagination"])},
        ),
        ("402 injected", 0.008, {"kind": "error", "status": 402}),
    ]
    rules, labels = [], []
    for label, rate, rule in table:
        rules.append(
            {
                **rule,
                "path": "videos",
                "rate": min(1.0, rate * intensity),
                "seed": rng.randrange(2**31),
                "note": label,
            }
        )
        labels.append(label)
    return rules, labels
