"""One walk over a timeline feed: the page source the videos endpoint serves in timeline mode.

A walk is the feed as of one clock, in the order of one walk nonce: the ranked feed with each video
moved by fewer than ``shuffle_width`` places (sort position ``i`` by ``i + width * u_i``, ``u_i``
seeded by the nonce: a video can only pass one less than ``width`` places away). Every page of
the walk reads that one order, so a walk never misses or repeats a video because of the shuffle.
Positions (duplicate slots, short pages) come from the static :class:`~.data.Feed` arithmetic over
the walk's length, so duplicates and short pages behave exactly as in a static feed.
"""

from __future__ import annotations

from airflow_provider_unifapi.sandbox.cursor import encode_walk_cursor
from airflow_provider_unifapi.sandbox.data import (
    _VIEWS,
    Feed,
    VideoRenderer,
)
from airflow_provider_unifapi.sandbox.hashing import M64, mix64, seed_for, unit
from airflow_provider_unifapi.sandbox.settings import Settings
from airflow_provider_unifapi.sandbox.timeline import Ranked, growth


def shuffled(ranked: tuple[Ranked, ...], width: int, salt: int) -> tuple[Ranked, ...]:
    """``ranked`` locally shuffled: each item ends up fewer than ``width`` places from where it was.

    :param ranked: the feed in rank order.
    :param width: the shuffle width (0 or 1: no shuffle).
    :param salt: seeds the draws (one per walk).
    """
    if width <= 1:
        return ranked
    keys = [i + width * unit(mix64(salt ^ i)) for i in range(len(ranked))]
    return tuple(ranked[i] for i in sorted(range(len(ranked)), key=keys.__getitem__))


class TimelineRenderer(VideoRenderer):
    """Renders a timeline video at a clock: the static record's fields, but the id and creation
    second of the timeline, and counts that grow with age (never fewer at a later clock)."""

    def __init__(self, seed: int, hashtag_id: str, name: str, extra_fields: bool, decay_s: float) -> None:
        super().__init__(seed, hashtag_id, name, extra_fields)
        self._decay_s = decay_s

    def render_video(self, video: Ranked, clock: int) -> bytes:
        """UTF-8 JSON of ``video`` as seen at ``clock``.

        :param video: ``(id, created, views quantile)``.
        :param clock: the walk's clock (unix seconds).
        """
        vid_int, created, quantile = video
        h1 = mix64(self._seed ^ vid_int)
        h2 = ((h1 ^ (h1 >> 29)) * 0xBF58476D1CE4E5B9) & M64
        h2 ^= h2 >> 32
        # floor(final * share) with a non-decreasing share: views, and the counts derived from them
        # by fixed per-video rates, never go down as the clock moves.
        views = int(_VIEWS[quantile] * growth(clock - created, self._decay_s))
        return self.record(b"%d" % vid_int, created, h1, h2, views)


class WalkView:
    """The feed of ``ranked`` (a hashtag at ``clock``) in the order of walk ``nonce``.

    It is a page source like :class:`~.data.Feed`: ``length``, ``page_size``, ``render``,
    ``cursor``, ``page_key`` (what pages rendered ahead are filed under).

    :param settings: the sandbox settings.
    :param hashtag_id: the hashtag id.
    :param name: the hashtag name.
    :param ranked: the feed at ``clock`` in rank order.
    :param clock: the walk's clock.
    :param nonce: the walk's nonce.
    """

    def __init__(
        self,
        settings: Settings,
        hashtag_id: str,
        name: str,
        ranked: tuple[Ranked, ...],
        clock: int,
        nonce: int,
    ) -> None:
        self.hashtag_id = hashtag_id
        self.clock, self.nonce = clock, nonce
        self.page_key = f"{hashtag_id}@{clock}#{nonce}"
        salt = seed_for("timeline-walk", settings.seed, hashtag_id, clock, nonce)
        self.order = shuffled(ranked, settings.shuffle_width, salt)
        self._positions = Feed(
            settings.seed,
            hashtag_id,
            name,
            len(ranked),
            settings.duplicate_rate,
            settings.short_page_rate,
            settings.extra_fields,
        )
        self.length = self._positions.length
        self._renderer = TimelineRenderer(
            settings.seed, hashtag_id, name, settings.extra_fields, settings.decay_days * 86_400
        )

    def page_size(self, start: int, limit: int) -> int:
        """Positions the page starting at ``start`` holds (as for a static feed of this length).

        :param start: first position.
        :param limit: the page size asked for.
        """
        return self._positions.page_size(start, limit)

    def render(self, start: int, count: int) -> list[bytes]:
        """UTF-8 JSON of the records at positions ``start .. start+count-1``.

        A duplicate slot repeats a video of an earlier page with the same counts: the walk is one
        snapshot, taken at its clock.

        :param start: first position.
        :param count: positions on the page.
        """
        render, order, clock = self._renderer.render_video, self.order, self.clock
        return [render(order[index], clock) for index, _ in self._positions.slots(start, count)]

    def cursor(self, position: int) -> str:
        """The cursor that resumes this walk at ``position``.

        :param position: the next position.
        """
        return encode_walk_cursor(self.hashtag_id, self.clock, self.nonce, position)
