"""Typed payloads of the UnifAPI endpoints we use, exactly as ``shared/spec`` describes them.

Unknown fields are kept: the schema drifts, and a record written out must not lose anything the API
sent. Ids stay strings: they exceed 2**53.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

__all__ = [
    "Author",
    "BalanceReading",
    "Billing",
    "CallStats",
    "ErrorBilling",
    "ErrorBody",
    "ErrorEnvelope",
    "Hashtag",
    "HashtagEnvelope",
    "HashtagPage",
    "HashtagStatus",
    "Music",
    "Page",
    "Pagination",
    "RateLimitInfo",
    "StopReason",
    "Video",
    "VideoPage",
]


class StopReason(str, Enum):
    """Why a hashtag's run stopped paging (a ``str`` enum: equal to the string summaries show)."""

    #: the API said there is nothing more (``has_more`` false or no ``next_cursor``)
    EXHAUSTED = "exhausted"
    MAX_RECORDS = "max_records"
    MAX_PAGES = "max_pages"
    MAX_CREDITS = "max_credits"
    MIN_BALANCE = "min_balance"
    #: a page was cut short by the workspace balance, or the API answered 402
    BALANCE_TRUNCATED = "balance_truncated"
    #: ``max_empty_pages`` empty pages in a row (each costs a credit)
    EMPTY_PAGES = "empty_pages"

    def __str__(self) -> str:
        return self.value

    @property
    def ends_feed(self) -> bool:
        """Whether the feed is finished; any other stop is a pause a raised limit or top-up continues."""
        return self in (StopReason.EXHAUSTED, StopReason.EMPTY_PAGES)


class HashtagStatus(str, Enum):
    """How one hashtag's run ended (the ``status`` of summaries, manifests and batch results)."""

    #: the feed's end was reached (stop reason ``exhausted`` or ``empty_pages``)
    DONE = "done"
    #: a limit (or the balance) paused it after some pages: a raised limit continues from the cursor
    STOPPED = "stopped"
    #: a limit stopped it before its first page: no manifest was written
    SKIPPED = "skipped"
    #: an error ended it; what it paid for is checkpointed and a retry resumes it
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def of(cls, stop_reason: StopReason, pages: int) -> HashtagStatus:
        """The status of a run that stopped for ``stop_reason`` after ``pages`` pages (all tries)."""
        if stop_reason.ends_feed:
            return cls.DONE
        return cls.STOPPED if pages else cls.SKIPPED


class _ApiModel(BaseModel):
    # Ids are str, not coerced: an int id is a schema drift we want to see.
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Author(_ApiModel):
    """Lightweight author descriptor embedded in a :class:`Video`."""

    id: str = Field(min_length=1)
    username: str
    display_name: str
    avatar_url: str


class Music(_ApiModel):
    """Sound track of a video; the whole object is ``null`` when the video has no sound."""

    id: str
    title: str
    author: str
    is_original: bool


class Video(_ApiModel):
    """A canonical TikTok video; counts are snapshots and may go down between calls."""

    id: str = Field(min_length=1)
    title: str
    video_description: str
    create_time: int
    duration: float
    cover_image_url: str
    share_url: str
    embed_link: str
    width: int
    height: int
    like_count: int
    comment_count: int
    share_count: int
    view_count: int
    author: Author
    region: str | None
    hashtags: list[str]
    music: Music | None
    is_image_post: bool
    play_url: str | None


class Hashtag(_ApiModel):
    """A TikTok hashtag (``name`` carries no leading ``#``)."""

    id: str = Field(min_length=1)
    name: str
    description: str
    video_count: int
    view_count: int
    is_commerce: bool


class Pagination(_ApiModel):
    """Cursor pagination; ``next_cursor`` is ``None`` when ``has_more`` is false."""

    has_more: bool
    next_cursor: str | None

    @property
    def is_last(self) -> bool:
        """True when either field says the end is reached (the spec says stop on either)."""
        return not self.has_more or self.next_cursor is None


class Billing(_ApiModel):
    """What one successful call cost; ``balance_remaining`` is the workspace balance after it."""

    credits_charged: int = Field(ge=0)
    records_charged: int = Field(ge=0)
    balance_remaining: int = Field(ge=0)
    truncated_due_to_balance: bool


class ErrorBilling(_ApiModel):
    """Billing details an error may carry (a 402 always carries ``balance_remaining``)."""

    balance_remaining: int
    credits_required: int | None = None
    credits_charged: int | None = Field(default=None, ge=0)
    records_charged: int | None = Field(default=None, ge=0)
    truncated_due_to_balance: bool | None = None


class ErrorBody(_ApiModel):
    """The ``error`` object of the gateway's error envelope."""

    type: str
    message: str
    request_id: str | None = None
    issues: list[Any] | None = None
    billing: ErrorBilling | None = None


class ErrorEnvelope(_ApiModel):
    """``{"error": {...}}``: switch on ``error.type``, not on the HTTP status."""

    error: ErrorBody


T = TypeVar("T")


class CallStats(BaseModel):
    """A client call's attempts, and the worst-case credits of those whose billing is unknown."""

    attempts: int = 1
    possibly_billed_credits: int = 0


class _Envelope(_ApiModel):
    # Not part of the payload: filled in by the client, never dumped.
    _call_stats: CallStats = PrivateAttr(default_factory=CallStats)

    @property
    def call_stats(self) -> CallStats:
        """Attempts and possibly billed credits of the call that produced this response."""
        return self._call_stats


class Page(_Envelope, Generic[T]):
    """One page of a cursor-paginated list endpoint."""

    request_id: str
    data: list[T]
    pagination: Pagination
    billing: Billing


class VideoPage(Page[Video]):
    """One page of ``GET /tiktok/hashtags/{id}/videos``."""


class HashtagPage(Page[Hashtag]):
    """One page of ``GET /tiktok/search/hashtags``."""


class HashtagEnvelope(_Envelope):
    """Body of ``GET /tiktok/hashtags/{id}``."""

    request_id: str
    data: Hashtag
    billing: Billing


class RateLimitInfo(BaseModel):
    """The ``X-RateLimit-*`` headers of the last response that carried them (any may be missing)."""

    limit: int | None = None
    remaining: int | None = None
    reset: int | None = None  # Unix seconds
    seen_at: datetime


class BalanceReading(BaseModel):
    """A workspace balance read from a response's billing (200 or 402), with when it was seen."""

    balance: int
    seen_at: datetime
    request_id: str | None = None

    def age_seconds(self, now: datetime) -> float:
        """Seconds between ``seen_at`` and ``now`` (both timezone-aware)."""
        return (now - self.seen_at).total_seconds()
