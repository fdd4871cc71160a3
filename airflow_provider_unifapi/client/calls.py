"""One logical API call: what it sends, and how its attempts went (accounting across retries)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

from pydantic import TypeAdapter

from airflow_provider_unifapi.client.responses import AttemptContext
from airflow_provider_unifapi.client.validation import (
    validate_cursor,
    validate_hashtag_id,
    validate_limit,
    validate_max_credits,
    validate_query,
)
from airflow_provider_unifapi.exceptions import UnifAPIError, UnifAPIRateLimitedError
from airflow_provider_unifapi.models import CallStats, HashtagEnvelope, HashtagPage, VideoPage

#: Keyword of the cheapest live balance reading (any costs 1 credit with ``limit=1``, found or not).
PROBE_QUERY = "tiktok"
#: Most credits a live balance reading may spend; sent as ``X-Unifapi-Max-Credits``, retries included.
PROBE_CREDITS = 1

MAX_CREDITS_HEADER = "X-Unifapi-Max-Credits"


#: The model of a call's successful response (each carries a request id, billing and the call's stats).
R = TypeVar("R", VideoPage, HashtagPage, HashtagEnvelope)

_VIDEO_PAGE: TypeAdapter[VideoPage] = TypeAdapter(VideoPage)
_HASHTAG_PAGE: TypeAdapter[HashtagPage] = TypeAdapter(HashtagPage)
_HASHTAG: TypeAdapter[HashtagEnvelope] = TypeAdapter(HashtagEnvelope)


@dataclass
class Call(Generic[R]):
    """What one logical call sends, and how its attempts went (mutated across retries)."""

    label: str
    path: str
    params: dict[str, str | int]
    adapter: TypeAdapter[R] = field(repr=False)
    limit: int
    max_credits: int | None = None
    before_retry: Callable[[int], None] | None = field(default=None, repr=False)
    attempts: int = 0
    rate_limited: int = 0
    possibly_billed_credits: int = 0

    @property
    def worst_case_credits(self) -> int:
        return max(self.limit, 1)

    def credit_room(self) -> int | None:
        return None if self.max_credits is None else self.max_credits - self.possibly_billed_credits

    def prepare_attempt(self) -> tuple[dict[str, str | int], dict[str, str]]:
        """Params and headers of the next attempt, ``limit`` shrunk to the credit room left."""
        self.attempts += 1
        params = dict(self.params)
        headers: dict[str, str] = {}
        room = self.credit_room()
        if room is not None:
            if "limit" in params:
                self.limit = min(self.limit, room)
                params["limit"] = self.limit
            headers[MAX_CREDITS_HEADER] = str(room)
        if self.attempts > 1 and self.before_retry is not None:
            self.before_retry(self.worst_case_credits)
        return params, headers

    def context(self, secret: str) -> AttemptContext:
        return AttemptContext(
            label=self.label,
            attempts=self.attempts,
            worst_case_credits=self.worst_case_credits,
            earlier_possibly_billed_credits=self.possibly_billed_credits,
            secret=secret,
        )

    def record_failure(self, err: UnifAPIError) -> int:
        """Count a failed attempt; return the credits it may have cost (0 when surely unbilled)."""
        if isinstance(err, UnifAPIRateLimitedError):
            self.rate_limited += 1
        if not err.may_have_been_billed:
            return 0
        self.possibly_billed_credits += self.worst_case_credits
        return self.worst_case_credits

    def stats(self) -> CallStats:
        return CallStats(attempts=self.attempts, possibly_billed_credits=self.possibly_billed_credits)


def videos_call(
    hashtag_id: Any,
    cursor: Any,
    limit: Any,
    max_credits: Any,
    before_retry: Callable[[int], None] | None = None,
) -> Call[VideoPage]:
    hashtag_id = validate_hashtag_id(hashtag_id)
    params: dict[str, str | int] = {"limit": validate_limit(limit)}
    cursor = validate_cursor(cursor)
    if cursor is not None:
        params["cursor"] = cursor
    return Call(
        label=f"GET /tiktok/hashtags/{hashtag_id}/videos",
        path=f"/tiktok/hashtags/{quote(hashtag_id, safe='')}/videos",
        params=params,
        adapter=_VIDEO_PAGE,
        limit=limit,
        max_credits=validate_max_credits(max_credits),
        before_retry=before_retry,
    )


def hashtag_call(hashtag_id: Any, max_credits: Any) -> Call[HashtagEnvelope]:
    hashtag_id = validate_hashtag_id(hashtag_id)
    return Call(
        label=f"GET /tiktok/hashtags/{hashtag_id}",
        path=f"/tiktok/hashtags/{quote(hashtag_id, safe='')}",
        params={},
        adapter=_HASHTAG,
        limit=1,
        max_credits=validate_max_credits(max_credits),
    )


def search_call(query: Any, cursor: Any, limit: Any, max_credits: Any) -> Call[HashtagPage]:
    params: dict[str, str | int] = {"q": validate_query(query), "limit": validate_limit(limit)}
    cursor = validate_cursor(cursor)
    if cursor is not None:
        params["cursor"] = cursor
    return Call(
        label="GET /tiktok/search/hashtags",
        path="/tiktok/search/hashtags",
        params=params,
        adapter=_HASHTAG_PAGE,
        limit=limit,
        max_credits=validate_max_credits(max_credits),
    )
