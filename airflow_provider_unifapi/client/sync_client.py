"""The synchronous UnifAPI client (mirrored line for line by ``async_client``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import httpx
from tenacity import Retrying

from airflow_provider_unifapi.client.calls import Call, R, hashtag_call, search_call, videos_call
from airflow_provider_unifapi.client.core import ClientCore
from airflow_provider_unifapi.client.paging import NameResolver, ResolvedHashtag, video_pager
from airflow_provider_unifapi.client.responses import AttemptContext, read_error, transport_error
from airflow_provider_unifapi.models import HashtagEnvelope, HashtagPage, StopReason, VideoPage


class UnifAPIClient(ClientCore[httpx.BaseTransport]):
    """Synchronous UnifAPI client over one pooled :class:`httpx.Client`. Usable without Airflow.

    The keywords and defaults are the connection extras (``client.config.EXTRA_FIELDS``).

    :param api_key: the workspace API key (sent only as ``Authorization: Bearer``; never logged).
    :param base_url: API base URL; ``https://`` required except for loopback hosts (the sandbox).
    :param timeout: seconds for each of connect, read, write and pool waits.
    :param max_retries: retries after a retryable error other than 429 (503, 500 ``internal_error``, network).
    :param max_retry_wait: longest single wait, also the cap on a server's ``Retry-After``.
    :param backoff_base: first exponential-backoff wait in seconds (doubles each retry, jittered).
    :param retry_billed_errors: also retry 2xx responses whose body was cut short or unreadable
        (billed, so this spends again; counted in ``possibly_billed_credits``).
    :param max_rate_limit_wait: total seconds one call may wait on 429 answers (``Retry-After``).
    :param max_response_bytes: refuse a response body larger than this (decoded).
    :param max_connections: size of the keep-alive connection pool.
    :param pace_requests: space the requests of every caller by the ``X-RateLimit-*`` headers instead
        of meeting the limit as 429s (``make bench-fleet``, 100 tasks: 20.8 % 429s paced, 23.7 % not).
    :param verify: TLS verification: ``True`` or a CA bundle path; ``False`` is refused.
    :param user_agent: ``User-Agent`` header.
    :param transport: an httpx transport (for tests that need a case the sandbox cannot produce).
    :raises UnifAPIInputError: an argument is refused, named, with the fix.
    """

    def _open(self, transport: httpx.BaseTransport | None) -> None:
        self._http = httpx.Client(**self._http_kwargs, transport=transport)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> UnifAPIClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one request ------------------------------------------------------------------------------
    def _read_body(self, response: httpx.Response, ctx: AttemptContext) -> bytes:
        """The body, streamed so one past ``max_response_bytes`` is refused before it is held."""
        self._check_length(response, ctx)
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_bytes():
                size += len(chunk)
                self._check_size(response, size, ctx)
                chunks.append(chunk)
        except httpx.HTTPError as exc:
            raise read_error(exc, response, ctx) from None
        return b"".join(chunks)

    def _attempt(self, call: Call[R]) -> R:
        for wait in self._pacing_waits():
            time.sleep(wait)
        params, headers = call.prepare_attempt()
        with self._accounting(call) as ctx:
            try:
                with self._http.stream("GET", call.path, params=params, headers=headers) as response:
                    body = self._read_body(response, ctx)
            except httpx.HTTPError as exc:  # sending, or waiting for the status line and headers
                raise transport_error(exc, ctx) from None
            return self._finish(call, ctx, response, body)

    def _run(self, call: Call[R]) -> R:
        for attempt in Retrying(**self._retry_kwargs(call)):
            with attempt:
                return self._attempt(call)
        raise AssertionError("unreachable")  # pragma: no cover - Retrying reraises

    # -- the API ----------------------------------------------------------------------------------
    def get_video_page(
        self,
        hashtag_id: str | int,
        *,
        cursor: str | None = None,
        limit: int = 20,
        max_credits: int | None = None,
        before_retry: Callable[[int], None] | None = None,
    ) -> VideoPage:
        """Fetch one validated page of a hashtag's videos (``GET /tiktok/hashtags/{id}/videos``).

        :param hashtag_id: numeric hashtag id (a string of digits; an int is accepted).
        :param cursor: ``next_cursor`` of the previous page, unchanged; ``None`` for the first page.
        :param limit: records to ask for, 1 to 50 (each costs a credit; a call costs at least 1).
        :param max_credits: most credits this call may spend, retries included (shrinks ``limit``).
        :param before_retry: called with each retry's worst-case credits before it is sent, so a caller
            can record the spend ahead (a process killed during the retry cannot).
        :raises UnifAPIError: a typed subclass for every failure.
        """
        return self._run(videos_call(hashtag_id, cursor, limit, max_credits, before_retry))

    def iter_video_pages(
        self,
        hashtag_id: str | int,
        *,
        cursor: str | None = None,
        limit: int = 50,
        max_pages: int | None = None,
        max_empty_pages: int = 3,
    ) -> Iterator[VideoPage]:
        """Yield a hashtag's pages in order, one call per page (stopping as :class:`VideoPager` says).

        A page truncated by balance is yielded, then ``UnifAPITruncatedByBalanceError`` is raised
        with the cursor to resume from after a top-up.

        :param hashtag_id: numeric hashtag id.
        :param cursor: cursor to start from (``None``: the first page).
        :param limit: records per page, 1 to 50.
        :param max_pages: most pages to fetch.
        :param max_empty_pages: empty pages in a row after which paging stops.
        """
        pager = video_pager(hashtag_id, cursor, limit, max_pages, max_empty_pages)
        while pager.check_before_fetch():
            page = self.get_video_page(hashtag_id, cursor=pager.cursor, limit=limit)
            pager.consume(page)
            yield page
            if pager.stop_reason is StopReason.BALANCE_TRUNCATED:
                raise pager.truncated_error(page)

    def get_hashtag(self, hashtag_id: str | int, *, max_credits: int | None = None) -> HashtagEnvelope:
        """Fetch one hashtag by id (``GET /tiktok/hashtags/{id}``, 1 credit).

        :param hashtag_id: numeric hashtag id.
        :param max_credits: most credits this call may spend, retries included.
        """
        return self._run(hashtag_call(hashtag_id, max_credits))

    def search_hashtags(
        self, query: str, *, cursor: str | None = None, limit: int = 20, max_credits: int | None = None
    ) -> HashtagPage:
        """Search hashtags by keyword (``GET /tiktok/search/hashtags``; 1 credit per result, 1 minimum).

        :param query: the keyword.
        :param cursor: ``next_cursor`` of the previous page of results.
        :param limit: results per page, 1 to 50.
        :param max_credits: most credits this call may spend, retries included.
        """
        return self._run(search_call(query, cursor, limit, max_credits))

    def resolve_hashtag_id(self, name: str, *, limit: int = 20, max_pages: int = 3) -> ResolvedHashtag:
        """Find the hashtag named ``name`` (case-insensitive, ``#`` ignored) by search (up to
        ``limit * max_pages`` credits).

        :param name: the hashtag name.
        :param limit: search results per page.
        :param max_pages: most search pages to read.
        :raises UnifAPIHashtagNotFoundError: no exact match; its ``credits_charged`` says what the search cost.
        """
        resolver = NameResolver(name, limit=limit, max_pages=max_pages)
        while resolver.more:
            page = self.search_hashtags(resolver.name, cursor=resolver.cursor, limit=resolver.limit)
            resolver.consume(page)
        return resolver.result()
