"""Timeline mode: a hashtag's feed that lives in time (the model; docs/sandbox.md explains why).

Videos arrive day by day. Day ``k`` is ``[start + k*86400, start + (k+1)*86400)``; days ``k < 0``
hold the backlog (the catalogue's ``video_count``), days ``k >= 0`` the videos that arrive while
the clock moves. Each day's videos are drawn from their own seeded generator, so a day is a pure
function of (seed, hashtag id, day, rate) and never depends on the clock or on other days:

* how many: Poisson-like around the hashtag's daily rate (the backlog is the same stream run
  backwards, the oldest day cut so the backlog holds exactly ``video_count``);
* when: uniform seconds of the day; the id is ``(created << 32) | low`` with ``low`` a seeded
  bijection of the video's index in its day, so ids are unique and their top bits the creation second;
* heat: ``ln heat = 1.5 z``, ``z`` standard normal clipped at +-4 (log-normal: most ordinary, ~2 %
  over 20x the median: the viral ones); it fixes the video's final view count (a quantile of the
  static feed's view distribution).

The feed at clock ``t`` ranks the videos created up to ``t`` by
``ln score = ln heat - age / decay`` (``+ ln(1 - exp(-age / ramp))`` in the ``low`` entry model:
a new video has to gather engagement before it ranks), keeps the best ``visible_cap`` and breaks
ties by id. Since ``ln heat <= 6``, a day whose youngest video is so old that
``6 - age / decay`` is below the cap-th score cannot place anything: the scan stops there. Within a
day, videos are sorted by ``ln heat + (created - start) / decay``, a clock-free upper bound of the
score once ``(clock - start) / decay`` is taken off, so only the videos that can still reach the
cap-th score are scored: a feed scores a little more than ``cap`` videos (about 3,600 for a cap of
3,000) whatever the backlog or the clock.
"""

from __future__ import annotations

import math
import random
import threading
from bisect import bisect_right
from collections import OrderedDict
from dataclasses import dataclass
from typing import NamedTuple

from airflow_provider_unifapi.sandbox.hashing import seed_for

DAY = 86_400
#: ``ln heat = HEAT_SIGMA * z``, ``z`` clipped at ``+-HEAT_CLIP``: the bound that stops the scan.
HEAT_SIGMA = 1.5
HEAT_CLIP = 4.0
LN_HEAT_MAX = HEAT_SIGMA * HEAT_CLIP
#: The backlog never reaches back more than this many days: a huge ``video_count`` arrives faster.
BACKLOG_MAX_DAYS = 3650
_QUANTILES = 4096
#: Videos a model keeps in its cache of days (least recently used days go first): about 20 MB.
_CACHE_VIDEOS = 100_000
_CACHE_FEEDS = 64


@dataclass(frozen=True)
class TimelineParams:
    """What one hashtag's timeline depends on (all from the settings).

    :param seed: the sandbox seed.
    :param start: the start clock (unix seconds); day 0 begins there.
    :param backlog: videos created before ``start`` (the catalogue's ``video_count``).
    :param rate: mean new videos per day.
    :param entry_rank: ``"low"`` (new videos ramp up) or ``"high"`` (they rank at full heat at once).
    :param ramp_s: ramp time scale in seconds (``low`` only).
    :param decay_s: decay time scale in seconds.
    :param cap: visible cap.
    """

    seed: int
    start: int
    backlog: int
    rate: float
    entry_rank: str
    ramp_s: float
    decay_s: float
    cap: int


class Day(NamedTuple):
    """The videos created in one day, oldest first."""

    created: tuple[int, ...]
    ids: tuple[int, ...]
    #: ``(key, id, created, views quantile)``, best key first; ``key = ln heat + (created - start) /
    #: decay`` does not depend on the clock, and ``key - (clock - start) / decay`` bounds the ln score;
    #: the views quantile (0 .. 4095) is that of the heat, and fixes the final view count
    by_key: tuple[tuple[float, int, int, int], ...]
    #: the keys of ``by_key`` negated (ascending: for bisect)
    neg_keys: tuple[float, ...]


#: One visible video: ``(id, created, views quantile)``.
Ranked = tuple[int, int, int]


def poisson(rng: random.Random, lam: float) -> int:
    """A Poisson draw (exact below 50, its normal approximation above: same mean and spread).

    :param rng: the generator.
    :param lam: the mean.
    """
    if lam <= 0:
        return 0
    if lam >= 50:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, count, product = math.exp(-lam), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def growth(age_s: float, decay_s: float) -> float:
    """Share of its final views a video has at ``age_s``: ``1 - exp(-age / decay)``, non-decreasing.

    Views come from exposure, and exposure fades with rank on the decay's time scale.

    :param age_s: age in seconds (0 or less: no views yet).
    :param decay_s: the decay time scale in seconds.
    """
    return 0.0 if age_s <= 0 else 1.0 - math.exp(-age_s / decay_s)


class HashtagTimeline:
    """Days, counts and ranked feeds of one hashtag under one set of settings (thread-safe).

    :param hashtag_id: the hashtag id.
    :param params: the model's parameters.
    """

    def __init__(self, hashtag_id: str, params: TimelineParams) -> None:
        self.hashtag_id = hashtag_id
        self.params = params
        self.lock = threading.RLock()
        self._days: OrderedDict[int, Day] = OrderedDict()
        self._cached_videos = 0
        self._feeds: OrderedDict[int, tuple[Ranked, ...]] = OrderedDict()
        self._counts: dict[int, int] = {}
        # Backlog counts of days -1, -2, ... (index j is day -(j+1)), extended on demand.
        self._backlog_counts: list[int] = []
        self._backlog_left = max(0, params.backlog)
        self._backlog_rate = max(params.rate, params.backlog / BACKLOG_MAX_DAYS)

    # --- days -------------------------------------------------------------------------------------
    def day_index(self, clock: int) -> int:
        """The day ``clock`` falls in (negative before the start).

        :param clock: unix seconds.
        """
        return (clock - self.params.start) // DAY

    def day_start(self, day: int) -> int:
        """First second of ``day``.

        :param day: a day index.
        """
        return self.params.start + day * DAY

    def count(self, day: int) -> int:
        """How many videos are created in ``day`` (0 before the oldest backlog day).

        :param day: a day index.
        """
        with self.lock:
            if day < 0:
                return self._backlog_count(day)
            found = self._counts.get(day)
            if found is None:
                rng = random.Random(seed_for("timeline-count", self.params.seed, self.hashtag_id, day))
                found = self._counts[day] = poisson(rng, self.params.rate)
            return found

    def _backlog_count(self, day: int) -> int:
        """Count of backlog ``day`` (< 0): the stream run backwards until ``backlog`` is used up."""
        counts = self._backlog_counts
        while len(counts) < -day and self._backlog_left > 0:
            d = -(len(counts) + 1)
            rng = random.Random(seed_for("timeline-count", self.params.seed, self.hashtag_id, d))
            n = min(self._backlog_left, poisson(rng, self._backlog_rate))
            counts.append(n)
            self._backlog_left -= n
        return counts[-day - 1] if -day <= len(counts) else 0

    def exhausted(self, day: int) -> bool:
        """Whether ``day`` is older than the oldest backlog video (nothing there or before).

        :param day: a day index.
        """
        if day >= 0:
            return False
        with self.lock:
            self._backlog_count(day)
            return -day > len(self._backlog_counts)

    def day(self, day: int) -> Day:
        """The videos created in ``day``, oldest first (cached).

        :param day: a day index.
        """
        with self.lock:
            found = self._days.get(day)
            if found is not None:
                self._days.move_to_end(day)
                return found
            found = self._draw_day(day, self.count(day))
            self._days[day] = found
            self._cached_videos += len(found.ids)
            while self._cached_videos > _CACHE_VIDEOS and len(self._days) > 1:
                self._cached_videos -= len(self._days.popitem(last=False)[1].ids)
            return found

    def _draw_day(self, day: int, n: int) -> Day:
        rng = random.Random(seed_for("timeline-day", self.params.seed, self.hashtag_id, day))
        first = self.day_start(day)
        created = tuple(sorted(first + rng.randrange(DAY) for _ in range(n)))
        salt = rng.getrandbits(32)
        # Index j of the day -> low 32 bits is a bijection: ids are unique within a day, and days
        # never share a creation second, so they are unique within the hashtag.
        ids = tuple((c << 32) | ((salt + j * 0x9E3779B1) & 0xFFFFFFFF) for j, c in enumerate(created))
        zs = [max(-HEAT_CLIP, min(HEAT_CLIP, rng.gauss(0.0, 1.0))) for _ in range(n)]
        quantiles = tuple(
            min(_QUANTILES - 1, int(0.5 * (1.0 + math.erf(z / math.sqrt(2.0))) * _QUANTILES)) for z in zs
        )
        ln_heat = tuple(HEAT_SIGMA * z for z in zs)
        start, decay = self.params.start, self.params.decay_s
        rows = zip(created, ids, ln_heat, quantiles, strict=True)
        by_key = sorted(((h + (c - start) / decay, vid, c, q) for c, vid, h, q in rows), reverse=True)
        return Day(created, ids, tuple(by_key), tuple(-row[0] for row in by_key))

    def created_up_to(self, clock: int) -> int:
        """Videos created up to ``clock`` (the backlog plus the arrivals since the start).

        :param clock: unix seconds, at or after the start.
        """
        today = self.day_index(clock)
        total = self.params.backlog + sum(self.count(d) for d in range(0, today))
        return total + sum(1 for c in self.day(today).created if c <= clock)

    # --- the feed ---------------------------------------------------------------------------------
    def ranked(self, clock: int) -> tuple[Ranked, ...]:
        """The visible feed at ``clock``: best score first, at most ``cap`` videos (cached per clock).

        :param clock: unix seconds.
        """
        with self.lock:
            found = self._feeds.get(clock)
            if found is None:
                found = self._rank(clock)
                self._feeds[clock] = found
                if len(self._feeds) > _CACHE_FEEDS:
                    self._feeds.popitem(last=False)
            else:
                self._feeds.move_to_end(clock)
            return found

    def _rank(self, clock: int) -> tuple[Ranked, ...]:
        cap, decay = self.params.cap, self.params.decay_s
        found: list[tuple[float, int, int, int]] = []
        # The cap-th score among the videos found so far: a lower bound of the feed's cap-th score.
        # Recomputed (on plain floats: fast) each time the list has grown by a quarter.
        floor, next_check = -math.inf, cap
        day = self.day_index(clock)
        while not self.exhausted(day):
            youngest_age = clock - (self.day_start(day + 1) - 1)
            if LN_HEAT_MAX - youngest_age / decay < floor:
                break  # nothing this old can beat the cap-th video any more
            found.extend(self._scored(self.day(day), clock, floor))
            if len(found) >= next_check:
                floor = sorted([item[0] for item in found], reverse=True)[cap - 1]
                next_check = len(found) * 5 // 4
            day -= 1
        if len(found) > cap:
            floor = sorted([item[0] for item in found], reverse=True)[cap - 1]
            found = [item for item in found if item[0] >= floor]
        # Best score first; equal scores (never seen in practice): the larger id first.
        found.sort(reverse=True)
        return tuple((vid, created, q) for _, vid, created, q in found[:cap])

    def _scored(self, day: Day, clock: int, floor: float) -> list[tuple[float, int, int, int]]:
        """``(ln score, id, created, views quantile)`` of the day's videos created by ``clock`` that
        may reach ``floor`` (the others are never scored: their key already says they cannot)."""
        shift = (clock - self.params.start) / self.params.decay_s
        rows = day.by_key
        if floor > -math.inf:
            rows = rows[: bisect_right(day.neg_keys, -(floor + shift))]
        if self.params.entry_rank == "high":
            return [(key - shift, vid, c, q) for key, vid, c, q in rows if c <= clock]
        # "low": the ramp term is <= 0, so the key stays a bound; a video with no age has no
        # engagement yet and is not ranked at all.
        ramp = self.params.ramp_s
        return [
            (key - shift + math.log(-math.expm1(-(clock - c) / ramp)), vid, c, q)
            for key, vid, c, q in rows
            if c < clock
        ]
