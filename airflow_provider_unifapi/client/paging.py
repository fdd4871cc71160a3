"""Sans-I/O paging shared by the sync and async clients: which page comes next, and when to stop."""

from __future__ import annotations

from dataclasses import dataclass

from airflow_provider_unifapi.client.validation import (
    validate_cursor,
    validate_hashtag_id,
    validate_hashtag_name,
    validate_limit,
    validate_max_pages,
)
from airflow_provider_unifapi.exceptions import (
    UnifAPIHashtagNotFoundError,
    UnifAPIPaginationError,
    UnifAPITruncatedByBalanceError,
)
from airflow_provider_unifapi.models import Hashtag, HashtagPage, StopReason, VideoPage


@dataclass(frozen=True)
class ResolvedHashtag:
    """A hashtag found by exact name, and what finding it cost.

    :param hashtag: the hashtag whose name matched.
    :param credits_charged: credits the search pages cost.
    :param calls: search calls made.
    :param request_ids: request ids of those calls.
    """

    hashtag: Hashtag
    credits_charged: int
    calls: int
    request_ids: tuple[str, ...]


class VideoPager:
    """Decides which page of a hashtag's cursor chain to fetch next, and when to stop; refuses a cursor
    that repeats, and never follows that of a page truncated by balance (it may skip records).

    :param cursor: cursor to start from (``None`` = first page).
    :param max_pages: most pages to fetch (``None`` = no limit).
    :param max_empty_pages: empty pages in a row (each costs a credit) after which paging stops.
    :param seen_cursors: cursors followed in an earlier try (resume), so a repeat is still caught.
    """

    def __init__(
        self,
        cursor: str | None = None,
        *,
        max_pages: int | None = None,
        max_empty_pages: int = 3,
        seen_cursors: set[str] | None = None,
    ) -> None:
        self.cursor = validate_cursor(cursor)
        self.max_pages = max_pages
        self.max_empty_pages = max_empty_pages
        self.pages = 0
        self.empty_run = 0
        self.seen_cursors: set[str] = set(seen_cursors or ())
        if self.cursor is not None:
            self.seen_cursors.add(self.cursor)
        #: why the pager stopped: exhausted, max_pages, empty_pages or balance_truncated.
        self.stop_reason: StopReason | None = None

    @property
    def done(self) -> bool:
        return self.stop_reason is not None

    def check_before_fetch(self) -> bool:
        """False (and ``stop_reason`` set) when no further page may be fetched."""
        if self.done:
            return False
        if self.max_pages is not None and self.pages >= self.max_pages:
            self.stop_reason = StopReason.MAX_PAGES
            return False
        return True

    def consume(self, page: VideoPage) -> None:
        """Move past ``page`` (or stop); raises :class:`UnifAPIPaginationError` on a repeated cursor."""
        self.pages += 1
        if page.billing.truncated_due_to_balance:
            self.stop_reason = StopReason.BALANCE_TRUNCATED  # cursor stays on the truncated page's input
            return
        self.empty_run = self.empty_run + 1 if not page.data else 0
        next_cursor = page.pagination.next_cursor
        if page.pagination.is_last or next_cursor is None:
            self.stop_reason = StopReason.EXHAUSTED
            return
        if next_cursor in self.seen_cursors:
            raise UnifAPIPaginationError(
                f"UnifAPI returned a cursor it had already returned (after {self.pages} pages); "
                "stopping instead of looping",
                request_id=page.request_id,
            )
        self.cursor = next_cursor
        if self.empty_run >= self.max_empty_pages:
            self.stop_reason = StopReason.EMPTY_PAGES
            return
        self.seen_cursors.add(next_cursor)

    def truncated_error(self, page: VideoPage) -> UnifAPITruncatedByBalanceError:
        """The error that ends paging after ``page``, truncated by balance, was yielded."""
        return UnifAPITruncatedByBalanceError(
            f"UnifAPI returned {len(page.data)} record(s) of a page truncated by the workspace balance "
            f"({page.billing.balance_remaining} credits left); top up, then resume from the same cursor",
            resume_cursor=self.cursor,
            request_id=page.request_id,
            balance_remaining=page.billing.balance_remaining,
            credits_charged=page.billing.credits_charged,
        )


def video_pager(
    hashtag_id: str | int, cursor: str | None, limit: int, max_pages: int | None, max_empty_pages: int
) -> VideoPager:
    """The pager of ``iter_video_pages``, its arguments checked before the first call."""
    pager = VideoPager(cursor, max_pages=max_pages, max_empty_pages=max_empty_pages)
    validate_hashtag_id(hashtag_id)
    validate_limit(limit)
    return pager


class NameResolver:
    """Pages hashtag search results until a hashtag's ``name`` equals ``name`` (case-insensitive)."""

    def __init__(self, name: object, *, limit: int, max_pages: int) -> None:
        self.name = validate_hashtag_name(name)
        self.wanted = self.name.casefold()
        self.limit = validate_limit(limit)
        self.max_pages = validate_max_pages(max_pages)
        self.cursor: str | None = None
        self.calls = 0
        self.credits = 0
        self.request_ids: list[str] = []
        self.found: Hashtag | None = None
        self.exhausted = False

    def consume(self, page: HashtagPage) -> None:
        self.calls += 1
        self.credits += page.billing.credits_charged
        self.request_ids.append(page.request_id)
        for item in page.data:
            if item.name.casefold() == self.wanted:
                self.found = item
                return
        if page.pagination.is_last or self.calls >= self.max_pages:
            self.exhausted = True
        else:
            self.cursor = page.pagination.next_cursor

    @property
    def more(self) -> bool:
        return self.found is None and not self.exhausted

    def result(self) -> ResolvedHashtag:
        if self.found is None:
            raise UnifAPIHashtagNotFoundError(
                f"No hashtag named {self.name!r} in {self.calls} page(s) of search results "
                f"(costing {self.credits} credits); pass hashtag_id instead, or check the spelling",
                credits_charged=self.credits,
            )
        return ResolvedHashtag(self.found, self.credits, self.calls, tuple(self.request_ids))
