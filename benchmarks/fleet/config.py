"""What one fleet run measures: the scenario (N, L +- J, R, pool size) and its hashtag catalogue.

The catalogue is seeded, so every contestant of a cell (and every rerun) gets the same hashtags of
the same sizes; the sandbox's data are a function of its seed, so the records are the same too.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

PAGE_SIZE = 50  # the API's maximum: the fewest calls per record
API_KEY = "bench-key-not-a-secret"  # any Bearer key works against the sandbox; obviously fake
#: Hashtag ids of the fleet: ``8`` + the index on 11 digits (digits only, as the API wants).
ID_PREFIX = "8"

CONTESTANTS = ("ours-batched", "ours-mapped", "http-mapped", "dlt", "ceiling")
#: Run only when named (``--contestants``): the single operator mapped with its pacer on in every
#: task (``pace_requests`` on its connection), to compare with ``ours-mapped`` (pacer off).
EXTRA_CONTESTANTS = ("ours-mapped-paced",)
#: Contestants that run as mapped tasks under a real scheduler (the others are one process).
MAPPED = frozenset({"ours-mapped", "ours-mapped-paced", "http-mapped"})


def hashtag_id(index: int) -> str:
    """The id of the fleet's ``index``-th hashtag."""
    return f"{ID_PREFIX}{index:011d}"


@dataclass(frozen=True)
class Scenario:
    """The knobs of the rate-limit scenario (one per run of ``python -m benchmarks.fleet``)."""

    latency_ms: float = 300.0
    jitter_ms: float = 100.0
    rate: int = 600  # the workspace limit R, requests a minute
    burst: int = 10  # the sandbox bucket's capacity (default R // 60: one second of the limit)
    concurrency: int = 8  # chains / pool slots / LocalExecutor parallelism / dlt workers
    videos: tuple[int, int] = (100, 3_000)  # hashtag sizes for N <= large_from
    videos_large: tuple[int, int] = (20, 200)  # smaller hashtags for N > large_from
    large_from: int = 100
    seed: int = 0
    time_limit_s: float = 1_200.0

    def sizes(self, n: int) -> list[int]:
        """The video counts of the ``n`` hashtags of a cell (seeded by ``seed`` and ``n``)."""
        low, high = self.videos_large if n > self.large_from else self.videos
        rng = random.Random(f"{self.seed}:{n}")
        return [rng.randint(low, high) for _ in range(n)]

    def catalogue(self, n: int) -> list[dict[str, Any]]:
        """The sandbox catalogue of a cell: ``[{"id", "name", "video_count"}, ...]``."""
        return [
            {"id": hashtag_id(i), "name": f"fleet{i}", "video_count": size}
            for i, size in enumerate(self.sizes(n))
        ]

    def sandbox_settings(self, n: int) -> dict[str, Any]:
        """The ``POST /_sandbox/reset`` body of a cell (fresh ledger, full bucket)."""
        return {
            "latency_jitter_ms": self.jitter_ms,
            "rate_limit_per_minute": self.rate,
            "rate_limit_burst": self.burst,
            "seed": self.seed,
            "hashtags": self.catalogue(n),
        }

    def public(self) -> dict[str, Any]:
        """JSON form for results.json."""
        return asdict(self)


@dataclass
class ChildSpec:
    """What a one-process contestant's child needs (travels as JSON)."""

    contestant: str
    base_url: str
    hashtag_ids: list[str]
    out_dir: str
    concurrency: int
    rate: int
    page_size: int = PAGE_SIZE
    api_key: str = API_KEY
    work_dir: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def dump(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)))

    @classmethod
    def load(cls, path: str | Path) -> ChildSpec:
        return cls(**json.loads(Path(path).read_text()))
