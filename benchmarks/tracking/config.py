"""What one tracking run measures: the scenario (hashtags, days, the feed's knobs) and its catalogue.

The catalogue and the per-hashtag daily rates are seeded, and the sandbox's timeline is a function of
its seed and settings, so every contestant of an entry model (and every rerun) meets the same world.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from typing import Any

PAGE_SIZE = 50  # the API's maximum: the fewest calls per record
API_KEY = "bench-key-not-a-secret"  # any Bearer key works against the sandbox; obviously fake
ENTRY_RANKS = ("low", "high")
#: Hashtag ids of the scenario: ``7`` + the index on 11 digits (digits only, as the API wants).
ID_PREFIX = "7"


def hashtag_id(index: int) -> str:
    """The id of the scenario's ``index``-th hashtag."""
    return f"{ID_PREFIX}{index:011d}"


@dataclass(frozen=True)
class Scenario:
    """The knobs of ``python -m benchmarks.tracking`` (one world per entry model)."""

    hashtags: int = 20
    days: int = 30
    entry_ranks: tuple[str, ...] = ENTRY_RANKS
    backlog: tuple[int, int] = (2_000, 6_000)  # ``video_count`` of each hashtag (created before day 0)
    daily_new: tuple[int, int] = (50, 400)  # each hashtag's mean new videos a day (seeded draw)
    visible_cap: int = 3_000  # the sandbox default: videos a feed shows at most
    latency_ms: float = 0.0
    seed: int = 0
    time_limit_s: float = 1_800.0  # per contestant-day

    def ids(self) -> list[str]:
        return [hashtag_id(i) for i in range(self.hashtags)]

    def _draws(self) -> list[tuple[int, int]]:
        rng = random.Random(f"tracking:{self.seed}:{self.hashtags}")
        return [(rng.randint(*self.backlog), rng.randint(*self.daily_new)) for _ in range(self.hashtags)]

    def catalogue(self) -> list[dict[str, Any]]:
        """``[{"id", "name", "video_count"}, ...]``: the backlog of every hashtag."""
        return [
            {"id": hid, "name": f"track{i}", "video_count": size}
            for i, (hid, (size, _rate)) in enumerate(zip(self.ids(), self._draws(), strict=True))
        ]

    def daily_rates(self) -> dict[str, int]:
        """Hashtag id -> mean new videos a day (``daily_new_videos_by_hashtag``)."""
        return {hid: rate for hid, (_size, rate) in zip(self.ids(), self._draws(), strict=True)}

    def sandbox_settings(self, entry_rank: str) -> dict[str, Any]:
        """The ``POST /_sandbox/reset`` body of one entry model: a clean ledger, the clock at day 0."""
        rates = self.daily_rates()
        return {
            "latency_ms": self.latency_ms,
            "rate_limit_per_minute": 0,  # off
            "seed": self.seed,
            "hashtags": self.catalogue(),
            "timeline": True,
            "entry_rank": entry_rank,
            "visible_cap": self.visible_cap,
            "daily_new_videos": round(sum(rates.values()) / max(1, len(rates))),
            "daily_new_videos_by_hashtag": rates,
        }

    def public(self) -> dict[str, Any]:
        """JSON form for results.json."""
        return asdict(self)


SMOKE = Scenario(
    hashtags=2,
    days=3,
    backlog=(150, 300),
    daily_new=(20, 60),
    visible_cap=250,
    time_limit_s=120.0,
)
