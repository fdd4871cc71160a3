"""The asynchronous UnifAPI client (mirrors ``sync_client`` line for line; documented there, once)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import httpx
from tenacity import AsyncRetrying

from airflow_provider_unifapi.client.calls import Call, R, hashtag_call, search_call, videos_call
from airflow_provider_unifapi.client.core import ClientCore, documented_by
from airflow_provider_unifapi.client.paging import NameResolver, ResolvedHashtag, video_pager
from airflow_provider_unifapi.client.responses import AttemptContext, read_error, transport_error
from airflow_provider_unifapi.client.sync_client import UnifAPIClient
from airflow_provider_unifapi.models import HashtagEnvelope, HashtagPage, StopReason, VideoPage


class AsyncUnifAPIClient(ClientCore[httpx.AsyncBaseTransport]):
    """Asynchronous twin of :class:`~airflow_provider_unifapi.client.UnifAPIClient`: same arguments
    (``transport`` an ``httpx.AsyncBaseTransport``), awaited methods. Create it in the loop that uses it.
    """

    def _open(self, transport: httpx.AsyncBaseTransport | None) -> None:
        self._http = httpx.AsyncClient(**self._http_kwargs, transport=transport)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncUnifAPIClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- one request ------------------------------------------------------------------------------
    async def _read_body(self, response: httpx.Response, ctx: AttemptContext) -> bytes:
        self._check_length(response, ctx)
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                self._check_size(response, size, ctx)
                chunks.append(chunk)
        except httpx.HTTPError as exc:
            raise read_error(exc, response, ctx) from None
        return b"".join(chunks)

    async def _attempt(self, call: Call[R]) -> R:
        for wait in self._pacing_waits():
            await asyncio.sleep(wait)
        params, headers = call.prepare_attempt()
        with self._accounting(call) as ctx:
            try:
                async with self._http.stream("GET", call.path, params=params, headers=headers) as response:
                    body = await self._read_body(response, ctx)
            except httpx.HTTPError as exc:  # sending, or waiting for the status line and headers
                raise transport_error(exc, ctx) from None
            return self._finish(call, ctx, response, body)

    async def _run(self, call: Call[R]) -> R:
        async for attempt in AsyncRetrying(**self._retry_kwargs(call)):
            with attempt:
                return await self._attempt(call)
        raise AssertionError("unreachable")  # pragma: no cover - AsyncRetrying reraises

    # -- the API ----------------------------------------------------------------------------------
    @documented_by(UnifAPIClient.get_video_page)
    async def get_video_page(
        self,
        hashtag_id: str | int,
        *,
        cursor: str | None = None,
        limit: int = 20,
        max_credits: int | None = None,
        before_retry: Callable[[int], None] | None = None,
    ) -> VideoPage:
        return await self._run(videos_call(hashtag_id, cursor, limit, max_credits, before_retry))

    @documented_by(UnifAPIClient.iter_video_pages)
    async def iter_video_pages(
        self,
        hashtag_id: str | int,
        *,
        cursor: str | None = None,
        limit: int = 50,
        max_pages: int | None = None,
        max_empty_pages: int = 3,
    ) -> AsyncIterator[VideoPage]:
        pager = video_pager(hashtag_id, cursor, limit, max_pages, max_empty_pages)
        while pager.check_before_fetch():
            page = await self.get_video_page(hashtag_id, cursor=pager.cursor, limit=limit)
            pager.consume(page)
            yield page
            if pager.stop_reason is StopReason.BALANCE_TRUNCATED:
                raise pager.truncated_error(page)

    @documented_by(UnifAPIClient.get_hashtag)
    async def get_hashtag(self, hashtag_id: str | int, *, max_credits: int | None = None) -> HashtagEnvelope:
        return await self._run(hashtag_call(hashtag_id, max_credits))

    @documented_by(UnifAPIClient.search_hashtags)
    async def search_hashtags(
        self, query: str, *, cursor: str | None = None, limit: int = 20, max_credits: int | None = None
    ) -> HashtagPage:
        return await self._run(search_call(query, cursor, limit, max_credits))

    @documented_by(UnifAPIClient.resolve_hashtag_id)
    async def resolve_hashtag_id(self, name: str, *, limit: int = 20, max_pages: int = 3) -> ResolvedHashtag:
        resolver = NameResolver(name, limit=limit, max_pages=max_pages)
        while resolver.more:
            page = await self.search_hashtags(resolver.name, cursor=resolver.cursor, limit=resolver.limit)
            resolver.consume(page)
        return resolver.result()
