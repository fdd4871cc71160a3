"""How much chaos to run, from the environment (read at collection time).

``make test`` / CI: nothing set, the short suite (``CHAOS_RUNS`` defaults to 4, fixed seeds).
``make chaos``: ``CHAOS_RUNS=40`` (or more), ``CHAOS_SOAK=1`` for the 1M-record soak and the full
concurrency run, ``CHAOS_REPORT=path.json`` to write the figures. ``CHAOS_SEEDS=3,17`` replays seeds.
"""

from __future__ import annotations

import os

DEFAULT_RUNS = 4
FIRST_SEED = 1000


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def runs() -> int:
    return max(1, _int("CHAOS_RUNS", DEFAULT_RUNS))


def seeds() -> list[int]:
    """Seeds of the collector chaos cases: ``CHAOS_SEEDS`` if given, else ``runs()`` fixed seeds."""
    explicit = os.environ.get("CHAOS_SEEDS", "").strip()
    if explicit:
        return [int(s) for s in explicit.replace(",", " ").split()]
    return list(range(FIRST_SEED, FIRST_SEED + runs()))


def long_mode() -> bool:
    """True under ``make chaos``: more operator runs, the full concurrency run, the soak."""
    return os.environ.get("CHAOS_SOAK", "").strip() == "1"


def operator_runs() -> int:
    """Seeds of full operator runs through ``dag.test()``: 1 by default, runs/12 (at least 2) under make chaos
    (each seed is a faults run and a SIGKILL run; a SIGKILLed task process starts Airflow afresh, ~25 s)."""
    return max(2, runs() // 12) if long_mode() else 1
