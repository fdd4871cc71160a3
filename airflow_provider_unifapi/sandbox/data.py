"""Deterministic sandbox data: the result stream ("feed") of a hashtag and its video records.

Nothing here materialises a hashtag: every record is a pure function of (seed, hashtag id, index),
so a 1,000,000-video hashtag costs the same memory as a 10-video one.

The feed of a hashtag with ``N`` videos is a sequence of *positions*. Most positions carry the next
unique video (unique index 0, 1, 2, ... in order); a few are *duplicate slots* that repeat a video
served at least 50 positions earlier, i.e. on an earlier page whatever the page size (limit <= 50).
Cursors carry positions. Hence the ground truth (unique ids in order of first appearance) is just
``video_id(0) ... video_id(N-1)``, and a correct client that follows cursors from the start with any
page size collects exactly that.

Duplicate slots are laid out per block of ``BLOCK`` positions: block ``b >= 1`` holds
``floor(b * r * BLOCK) - floor((b - 1) * r * BLOCK)`` of them (``r`` = duplicate rate) at hashed
*even* offsets. This Bresenham-style spread gives the exact long-run rate *and* an O(1) prefix
count, so any position maps to its unique index without scanning. Block 0 has none, so a duplicate
always has at least 50 earlier uniques to point at.

A duplicate slot with ``U`` uniques before it repeats unique ``U - 50 - lag`` (``lag`` fixed per
hashtag, 0..49): at least 50 positions back. Even offsets mean no two duplicate slots are adjacent,
so ``U`` grows between any two of them and no video is repeated twice, nor twice on one page.
"""

from __future__ import annotations

import random
from bisect import bisect_left
from typing import Protocol

from airflow_provider_unifapi.sandbox import pools
from airflow_provider_unifapi.sandbox.cursor import encode_video_cursor
from airflow_provider_unifapi.sandbox.hashing import GOLDEN, M64, mix64, seed_for, unit

BLOCK = 100
#: A duplicate repeats a video at least this many positions back (the maximum page size).
DUP_MIN_DISTANCE = 50
#: Seconds between consecutive videos of a hashtag (newest first); keeps create_time realistic.
CREATE_TIME_GAP = 37
#: Hashtag ids not in the catalogue still exist with this many videos plus up to DEFAULT_SPREAD.
DEFAULT_VIDEO_COUNT = 1000
DEFAULT_SPREAD = 1000

_VIDEO_TEMPLATE = (
    b'{"id":"%s","title":%s,"video_description":%s,"create_time":%d,"duration":%s,'
    b'"cover_image_url":"https://p16-sign-va.tiktokcdn.com/obj/tos-maliva-p-0068/%s~tplv-dmt-logom.jpeg",'
    b'"share_url":"https://www.tiktok.com/@%s/video/%s","embed_link":"https://www.tiktok.com/embed/v2/%s",'
    b'"width":%d,"height":%d,"like_count":%d,"comment_count":%d,"share_count":%d,"view_count":%d,'
    b'"author":%s,"region":%s,"hashtags":%s,"music":%s,"is_image_post":%s,"play_url":%s%s}'
)
_PLAY_URL = b'"https://v16-webapp-prime.tiktok.com/video/tos/maliva/%s/play.mp4"'
_DIMENSIONS = ((1080, 1920),) * 5 + ((720, 1280), (576, 1024), (1080, 1350))
# (is_image_post, width, height) by the top 8 bits of a hash: top 5 bits all zero (~3%) is an image
# post, else the next 3 bits pick a video size. One lookup instead of a branch per record.
_POST_SHAPES = tuple(
    (b"true", 1080, 1440) if top >> 3 == 0 else (b"false", *_DIMENSIONS[top & 7]) for top in range(256)
)
# Heavy-tailed views: log10(views) = 2 + 8.5 u^2 over 4096 quantiles, so ~7% pass 2^31.
_VIEWS = tuple(int(10.0 ** (2.0 + 8.5 * ((i + 0.5) / 4096) ** 2)) for i in range(4096))
# Durations 3 s .. 180 s, short ones more common, rendered once as JSON numbers.
_DURATIONS = tuple(b"%.3f" % (3.0 + 177.0 * ((i + 0.5) / 1024) ** 2) for i in range(1024))


def default_video_count(seed: int, hashtag_id: str) -> int:
    """Video count of a hashtag id that is not in the catalogue: 1,000 to 2,000, fixed per (seed, id)."""
    return DEFAULT_VIDEO_COUNT + seed_for("count", seed, hashtag_id) % (DEFAULT_SPREAD + 1)


def default_hashtag_name(hashtag_id: str) -> str:
    """Name given to a hashtag id that is not in the catalogue."""
    return f"tag{hashtag_id}"


def hashtag_object(seed: int, hashtag_id: str, name: str, video_count: int) -> dict[str, object]:
    """Return the ``Hashtag`` schema object of a hashtag."""
    h = mix64(seed_for("hashtag", seed, hashtag_id))
    return {
        "id": hashtag_id,
        "name": name,
        "description": f"Videos tagged #{name}",
        "video_count": video_count,
        # Heavy-tailed views per video, so big hashtags easily pass 2^31 views.
        "view_count": video_count * (200 + h % 250_000),
        "is_commerce": (h >> 40) % 10 == 0,
    }


class PageSource(Protocol):
    """What the videos endpoint pages through: a static :class:`Feed`, or a timeline walk."""

    hashtag_id: str
    #: what pages rendered ahead are filed under (with the state generation)
    page_key: str
    #: number of feed positions
    length: int

    def page_size(self, start: int, limit: int) -> int:
        """Positions the page starting at ``start`` holds."""

    def render(self, start: int, count: int) -> list[bytes]:
        """UTF-8 JSON of the records at positions ``start .. start+count-1``."""

    def cursor(self, position: int) -> str:
        """The cursor that resumes at ``position``."""


class Feed:
    """The deterministic result stream of one hashtag under one set of data settings.

    :param seed: global sandbox seed.
    :param hashtag_id: the hashtag id (digits).
    :param name: hashtag name, used in descriptions and the ``hashtags`` list.
    :param video_count: number of unique videos.
    :param duplicate_rate: share of positions that repeat an earlier video (capped at 0.5).
    :param short_page_rate: share of pages served shorter than ``limit`` while ``has_more`` is true.
    :param extra_fields: add unknown fields to some records (clients must keep them).
    """

    def __init__(
        self,
        seed: int,
        hashtag_id: str,
        name: str,
        video_count: int,
        duplicate_rate: float,
        short_page_rate: float,
        extra_fields: bool,
    ) -> None:
        self.hashtag_id = hashtag_id
        self.page_key = hashtag_id
        self.video_count = max(0, int(video_count))
        self.short_page_rate = short_page_rate
        self._seed = seed_for("feed", seed, hashtag_id)
        # At most one duplicate slot per two positions: they must never be adjacent (see above).
        self._dups_per_block = min(max(duplicate_rate, 0.0), 0.5) * BLOCK
        self._lag = DUP_MIN_DISTANCE + self._seed % DUP_MIN_DISTANCE
        self._slot_cache: dict[int, frozenset[int]] = {}
        self._sorted_cache: dict[int, tuple[int, ...]] = {}
        self.renderer = VideoRenderer(seed, hashtag_id, name, extra_fields)
        self.length = self.position_of_unique(self.video_count - 1) + 1 if self.video_count else 0

    # --- position arithmetic -------------------------------------------------------------------
    def _dups_before_block(self, block: int) -> int:
        """Duplicate slots in blocks ``0 .. block-1`` (closed form, see the module docstring)."""
        return int(max(0, block - 1) * self._dups_per_block)

    def _dup_offsets(self, block: int) -> tuple[int, ...]:
        """Sorted offsets (0..BLOCK-1) of the duplicate slots of ``block``."""
        cached = self._sorted_cache.get(block)
        if cached is not None:
            return cached
        count = self._dups_before_block(block + 1) - self._dups_before_block(block)
        if count <= 0:
            offsets: tuple[int, ...] = ()
        else:
            rng = random.Random(mix64(self._seed ^ (block * 0x2545F4914F6CDD1D & M64)))
            offsets = tuple(sorted(rng.sample(range(0, BLOCK, 2), count)))
        if len(self._sorted_cache) > 4096:  # bounded: memory must stay flat for 1M-video hashtags
            self._sorted_cache.clear()
            self._slot_cache.clear()
        self._sorted_cache[block] = offsets
        self._slot_cache[block] = frozenset(offsets)
        return offsets

    def _dup_set(self, block: int) -> frozenset[int]:
        """The duplicate offsets of ``block`` as a set (membership test per position)."""
        found = self._slot_cache.get(block)
        if found is None:
            return frozenset(self._dup_offsets(block))
        return found

    def uniques_before(self, position: int) -> int:
        """Number of unique videos served at positions ``< position``."""
        block, offset = divmod(position, BLOCK)
        return position - self._dups_before_block(block) - bisect_left(self._dup_offsets(block), offset)

    def position_of_unique(self, index: int) -> int:
        """Feed position where unique video ``index`` first appears."""
        # Every block holds at least BLOCK/2 uniques, so the block lies below index // (BLOCK/2) + 1.
        lo, hi = 0, index // (BLOCK // 2) + 1
        while lo < hi:  # last block whose first position has <= index uniques before it
            mid = (lo + hi + 1) // 2
            if mid * BLOCK - self._dups_before_block(mid) <= index:
                lo = mid
            else:
                hi = mid - 1
        block = lo
        seen = block * BLOCK - self._dups_before_block(block)
        dups = set(self._dup_offsets(block))
        for offset in range(BLOCK):
            if offset in dups:
                continue
            if seen == index:
                return block * BLOCK + offset
            seen += 1
        raise AssertionError("unreachable: block search is exact")  # pragma: no cover

    def page_size(self, start: int, limit: int) -> int:
        """Positions the page starting at ``start`` holds (``limit``, fewer when short or at the end)."""
        remaining = self.length - start
        if remaining <= 0:
            return 0
        size = min(limit, remaining)
        if limit >= 2 and self.short_page_rate > 0:
            h = mix64(self._seed ^ ((start * 0x100000001B3 + limit * 0x9E3779B1) & M64))
            if unit(h) < self.short_page_rate:
                size = min(size, 1 + (h & 0xFFFF) % (limit - 1))
        return size

    def slots(self, start: int, count: int) -> list[tuple[int, int]]:
        """Describe positions ``start .. start+count-1`` (clipped to the feed).

        Each item is ``(unique_index, drift)``: ``drift`` is the position for a duplicate slot (its
        counts drift like a fresh snapshot) and -1 for a first appearance. Plain tuples, not objects:
        this runs for every record served.
        """
        end = min(start + count, self.length)
        out: list[tuple[int, int]] = []
        if start >= end:
            return out
        unique = self.uniques_before(start)
        block = -1
        dup_set: frozenset[int] = frozenset()
        append = out.append
        for position in range(start, end):
            b, offset = divmod(position, BLOCK)
            if b != block:
                block = b
                dup_set = self._dup_set(b)
            if offset in dup_set:
                append((unique - self._lag, position))
            else:
                append((unique, -1))
                unique += 1
        return out

    # --- records --------------------------------------------------------------------------------
    def render(self, start: int, count: int) -> list[bytes]:
        """UTF-8 JSON of the records at positions ``start .. start+count-1``."""
        render = self.renderer.render
        return [render(index, drift) for index, drift in self.slots(start, count)]

    def cursor(self, position: int) -> str:
        """The cursor that resumes the feed at ``position``.

        :param position: the next feed position.
        """
        return encode_video_cursor(self.hashtag_id, position)

    def truth_ids(self) -> list[str]:
        """Every unique video id, in order of first appearance (no paging involved)."""
        video_id = self.renderer.video_id
        return [str(video_id(i)) for i in range(self.video_count)]


class VideoRenderer:
    """Renders ``Video`` JSON text for unique index ``i`` of one hashtag from pre-built fragments."""

    def __init__(self, seed: int, hashtag_id: str, name: str, extra_fields: bool) -> None:
        self._seed = seed_for("video", seed, hashtag_id)
        self._low_salt = self._seed & 0xFFFFFFFF
        # Newest video first; each hashtag's newest video is a little older than 2025-06-15.
        self._anchor = 1_750_000_000 - self._seed % 5_000_000
        self._authors = pools.author_pool(seed, extra_fields)
        # Music (null ~15%) and region (null ~10%) by 10 bits of a hash: one lookup per record.
        music, regions = pools.music_pool(seed), pools.region_pool()
        self._music_by_pick = tuple(b"null" if p < 154 else music[p & 511] for p in range(1024))
        self._region_by_pick = tuple(b"null" if p < 102 else regions[p % len(regions)] for p in range(1024))
        self._descriptions = pools.description_pool(seed, name)
        self._tag_lists = pools.hashtag_list_pool(seed, name)
        self._extra_fields = extra_fields

    def video_id(self, index: int) -> int:
        """19-digit TikTok-style id: creation time in the high bits, a bijection of ``index`` below.

        The low 32 bits are ``index * odd + salt (mod 2^32)``, a bijection, so ids are unique within a
        hashtag for any index below 2^32 whatever the time part is.
        """
        h = mix64(self._seed + index)
        create_time = max(1_300_000_000, self._anchor - index * CREATE_TIME_GAP - (h & 31))
        return (create_time << 32) | ((index * 0x9E3779B1 + self._low_salt) & 0xFFFFFFFF)

    def render(self, index: int, drift: int = -1) -> bytes:
        """Return the UTF-8 JSON object of unique video ``index``: the hot path (~75k calls/s wanted),
        so the hash is inlined and floats and choices come from tables built once.

        :param index: the unique video's index in the hashtag (0 = newest).
        :param drift: the feed position of a duplicate (its counts drift a little, like a fresh
            snapshot would), or -1 for the first appearance.
        """
        h1 = (self._seed + index + GOLDEN) & M64  # splitmix64(seed + index), inlined
        h1 = ((h1 ^ (h1 >> 30)) * 0xBF58476D1CE4E5B9) & M64
        h1 = ((h1 ^ (h1 >> 27)) * 0x94D049BB133111EB) & M64
        h1 ^= h1 >> 31
        # One more xorshift-multiply round is enough to decorrelate a second set of bits.
        h2 = ((h1 ^ (h1 >> 29)) * 0xBF58476D1CE4E5B9) & M64
        h2 ^= h2 >> 32
        create_time = max(self._anchor - index * CREATE_TIME_GAP - (h1 & 31), 1_300_000_000)
        vid = b"%d" % ((create_time << 32) | ((index * 0x9E3779B1 + self._low_salt) & 0xFFFFFFFF))
        views = _VIEWS[h2 & 4095] + ((h2 >> 12) & 1023)
        if drift >= 0:
            views += mix64(h2 ^ drift) % (views // 50 + 1) - views // 100
        return self.record(vid, create_time, h1, h2, views)

    def record(self, vid: bytes, create_time: int, h1: int, h2: int, views: int) -> bytes:
        """The record's JSON from its id, creation second, two 64-bit hashes and view count (the other
        counts follow from the views by per-video rates)."""
        username, author = self._authors[(h1 >> 5) & 2047]
        description = self._descriptions[(h1 >> 16) & 255]
        likes = views * (5 + ((h2 >> 24) & 127)) // 1000
        image_post, width, height = _POST_SHAPES[h2 >> 56]
        return _VIDEO_TEMPLATE % (
            vid,
            description,
            description,
            create_time,
            _DURATIONS[(h2 >> 42) & 1023],
            vid,
            username,
            vid,
            vid,
            width,
            height,
            likes,
            likes * (1 + ((h2 >> 31) & 31)) // 1000,
            likes * (1 + ((h2 >> 36) & 63)) // 1000,
            views,
            author,
            self._region_by_pick[(h1 >> 38) & 1023],
            self._tag_lists[(h1 >> 24) & 15],
            self._music_by_pick[(h1 >> 28) & 1023],
            image_post,
            b"null" if (h1 >> 48) & 1023 < 102 else _PLAY_URL % vid,
            b',"x_source_rank":%d' % (1 + (h1 >> 40) % 500)
            if self._extra_fields and (h1 >> 58) & 7 == 0
            else b"",
        )
