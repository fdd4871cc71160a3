"""The workspace's timeline: its clock, the clocks it has been at, walk counters and model caches.

The clock moves only by admin calls (never by itself), so a run is deterministic. Every clock value
the workspace has been at since its reset is kept (the *observed clocks*): the truth endpoint says
at which of them each video was visible. Caches are bounded: 64 models per (hashtag, parameters),
64 walks per (generation, hashtag, clock, nonce); a model caches up to 100,000 videos' days and 64
feeds. Only the record of when each video was visible grows: with the videos ever visible.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from airflow_provider_unifapi.sandbox.settings import HashtagDef, Settings
from airflow_provider_unifapi.sandbox.timeline import HashtagTimeline, TimelineParams
from airflow_provider_unifapi.sandbox.timeline_view import WalkView

_CACHE_MODELS = 64
_CACHE_WALKS = 64


def params_for(settings: Settings, hashtag: HashtagDef) -> TimelineParams:
    """The model parameters of ``hashtag`` under ``settings``.

    :param settings: the sandbox settings.
    :param hashtag: the hashtag (its ``video_count`` is the backlog).
    """
    return TimelineParams(
        seed=settings.seed,
        start=settings.timeline_start,
        backlog=hashtag.video_count,
        rate=settings.daily_rate(hashtag.id),
        entry_rank=settings.entry_rank,
        ramp_s=settings.entry_ramp_hours * 3600.0,
        decay_s=settings.decay_days * 86_400.0,
        cap=settings.visible_cap,
    )


class Visibility:
    """When each video was visible, over the observed clocks folded in so far (first, last)."""

    def __init__(self) -> None:
        self.folded = 0
        self.first: dict[int, int] = {}
        self.last: dict[int, int] = {}


class TimelineState:
    """Clock, observed clocks, walk counters and caches (clock fields are guarded by the state lock).

    :param settings: the settings at the last reset.
    """

    def __init__(self, settings: Settings) -> None:
        self._lock = threading.Lock()
        self._models: OrderedDict[tuple[str, TimelineParams], HashtagTimeline] = OrderedDict()
        self._walks: OrderedDict[tuple[int, str, int, int], WalkView] = OrderedDict()
        self._seen: OrderedDict[tuple[str, TimelineParams, int], Visibility] = OrderedDict()
        self.epoch = 0
        self.restart(settings.timeline_start)

    def restart(self, start: int) -> None:
        """Back to ``start``: one observed clock, no walks (a reset, or a new ``timeline_start``).

        :param start: the start clock.
        """
        self.epoch += 1  # observed clocks start again: visibility is folded from scratch
        self.clock = start
        self.history: list[int] = [start]
        self.walk_counts: dict[str, int] = {}

    def move_to(self, clock: int) -> None:
        """Set the clock (never backwards: the caller checked) and remember it as observed.

        :param clock: the new clock.
        """
        if clock != self.clock:
            self.clock = clock
            self.history.append(clock)

    def next_nonce(self, hashtag_id: str) -> int:
        """The nonce of a new walk over ``hashtag_id``: its walks counted since the reset.

        :param hashtag_id: the hashtag id.
        """
        nonce = self.walk_counts.get(hashtag_id, 0)
        self.walk_counts[hashtag_id] = nonce + 1
        return nonce

    def model(self, settings: Settings, hashtag: HashtagDef) -> HashtagTimeline:
        """The (cached) model of ``hashtag`` under ``settings``.

        :param settings: the sandbox settings.
        :param hashtag: the hashtag.
        """
        key = (hashtag.id, params_for(settings, hashtag))
        with self._lock:
            found = self._models.get(key)
            if found is None:
                found = self._models[key] = HashtagTimeline(hashtag.id, key[1])
                if len(self._models) > _CACHE_MODELS:
                    self._models.popitem(last=False)
            else:
                self._models.move_to_end(key)
            return found

    def walk(
        self, generation: int, settings: Settings, hashtag: HashtagDef, clock: int, nonce: int
    ) -> WalkView:
        """The (cached) page source of walk ``nonce`` over ``hashtag`` at ``clock``.

        :param generation: the state generation (settings change: walks are built again).
        :param settings: the sandbox settings.
        :param hashtag: the hashtag.
        :param clock: the walk's clock.
        :param nonce: the walk's nonce.
        """
        key = (generation, hashtag.id, clock, nonce)
        with self._lock:
            found = self._walks.get(key)
            if found is not None:
                self._walks.move_to_end(key)
                return found
        ranked = self.model(settings, hashtag).ranked(clock)
        found = WalkView(settings, hashtag.id, hashtag.name, ranked, clock, nonce)
        with self._lock:
            self._walks[key] = found
            if len(self._walks) > _CACHE_WALKS:
                self._walks.popitem(last=False)
        return found

    def visibility(self, settings: Settings, hashtag: HashtagDef, history: list[int]) -> Visibility:
        """First and last observed clock at which each video was visible (folded in lazily).

        :param settings: the sandbox settings.
        :param hashtag: the hashtag.
        :param history: the observed clocks (a copy taken under the state lock).
        """
        model = self.model(settings, hashtag)
        key = (hashtag.id, model.params, self.epoch)
        with self._lock:
            seen = self._seen.get(key)
            if seen is None:
                seen = self._seen[key] = Visibility()
                if len(self._seen) > _CACHE_MODELS:
                    self._seen.popitem(last=False)
        with model.lock:  # one folder at a time per model; the fold only ever moves forward
            for clock in history[seen.folded :]:
                for vid, _, _ in model.ranked(clock):
                    seen.first.setdefault(vid, clock)
                    seen.last[vid] = clock
            seen.folded = max(seen.folded, len(history))
        return seen
