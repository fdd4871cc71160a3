"""Hostile responses never crash the client or the paging loop with an untyped exception.

Whatever a server (or a proxy in front of it) answers — wrong types, nulls everywhere, huge numbers,
giant strings, deep nesting, odd unicode, missing or extra keys, bodies that are not JSON, hostile
statuses and headers — a call ends in a validated model or a subclass of ``UnifAPIError``, and the
key never shows in what the error says. ``httpx.MockTransport`` serves what the sandbox cannot.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from airflow_provider_unifapi.client import AsyncUnifAPIClient, UnifAPIClient
from airflow_provider_unifapi.exceptions import UnifAPIError
from airflow_provider_unifapi.models import VideoPage
from tests.chaos.hostile import (
    FUZZ,
    FUZZ_RUNS,
    HostileResponse,
    hostile_error_body,
    hostile_headers,
    hostile_response,
    mutated_page,
    valid_page,
)
from tests.conftest import API_KEY

BASE = "https://api.unifapi.test"
VIDEOS_PATH = re.compile(r"/tiktok/hashtags/[0-9]{1,64}/videos")
FAST = {"backoff_base": 0.0, "max_retry_wait": 0.0, "max_retries": 2, "max_response_bytes": 4 * 1024 * 1024}


#: Far more requests than any call here needs (max_retries=2, at most 10 pages, waits of 0 s): past
#: it the client is in an unbounded retry loop, and the test fails at once instead of hanging.
MAX_REQUESTS = 250


def recording(
    respond: Callable[[httpx.Request], httpx.Response], seen: list[httpx.Request]
) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) > MAX_REQUESTS:
            pytest.fail(f"the client sent more than {MAX_REQUESTS} requests: an unbounded retry loop")
        return respond(request)

    return httpx.MockTransport(handler)


def check_error(exc: UnifAPIError) -> None:
    """A typed error must be printable, serialisable, and free of the key."""
    text = str(exc) + repr(exc) + json.dumps(exc.to_dict(), default=str)
    assert API_KEY not in text and API_KEY[8:] not in text
    assert isinstance(exc.error_type, str) and exc.error_type


def check_page(page: Any) -> None:
    """An accepted page is a valid model through and through."""
    assert isinstance(page, VideoPage)
    assert isinstance(page.pagination.has_more, bool)
    assert page.pagination.next_cursor is None or isinstance(page.pagination.next_cursor, str)
    assert page.billing.credits_charged >= 0 and page.billing.balance_remaining >= 0
    for video in page.data:
        assert isinstance(video.id, str) and video.id
        json.dumps(video.model_dump(mode="json"))


def only_videos_paths(seen: list[httpx.Request]) -> None:
    for request in seen:
        assert request.url.host == "api.unifapi.test"
        assert VIDEOS_PATH.fullmatch(request.url.path), request.url


@FUZZ
@given(response=hostile_response())
@example(response=HostileResponse(429, [(b"retry-after", b"Fri, 31 Dec 9999 23:59:59 GMT")], b"{}"))
@example(response=HostileResponse(200, [], b"[" * 100_000 + b"]" * 100_000))
def test_hostile_response_ends_in_a_page_or_a_typed_error(response: HostileResponse) -> None:
    seen: list[httpx.Request] = []
    with UnifAPIClient(
        API_KEY, BASE, transport=recording(lambda r: response.build(), seen), **FAST
    ) as client:
        try:
            page = client.get_video_page("7106594312292", limit=5)
        except UnifAPIError as exc:
            check_error(exc)
        else:
            check_page(page)
    assert 1 <= len(seen) <= MAX_REQUESTS
    only_videos_paths(seen)


@pytest.mark.parametrize("retry_after", [b"0", None], ids=["retry-after-0", "no-retry-after"])
def test_a_server_that_always_answers_429_is_given_up_on(retry_after: bytes | None) -> None:
    # With zero waits configured (backoff_base=0, max_retry_wait=0: both accepted), a rate limit that
    # never lifts must still end the call with UnifAPIRateLimitedError after a bounded number of
    # attempts: a bound in seconds alone never runs out when nothing is waited.
    from airflow_provider_unifapi.exceptions import UnifAPIRateLimitedError

    headers = [(b"retry-after", retry_after)] if retry_after is not None else []
    body = json.dumps({"error": {"type": "rate_limited", "message": "slow down"}}).encode()
    seen: list[httpx.Request] = []
    with UnifAPIClient(
        API_KEY,
        BASE,
        transport=recording(lambda r: httpx.Response(429, headers=headers, content=body), seen),
        **FAST,
    ) as client:
        with pytest.raises(UnifAPIRateLimitedError):
            client.get_video_page("1", limit=1)
    assert len(seen) <= MAX_REQUESTS


@pytest.mark.parametrize(
    "value",
    ["²".encode(), b"\xb9", "١٢".encode(), "１２".encode(), b"12 ", b"-12", b"1" * 40],
    ids=[
        "superscript-2-utf8",
        "superscript-1-latin1",
        "arabic-indic-12",
        "fullwidth-12",
        "trailing-space",
        "negative",
        "40-digits",
    ],
)
def test_content_length_that_is_not_plain_digits_is_a_typed_error_or_ignored(value: bytes) -> None:
    # Content-Length is read to refuse big bodies before reading them. str.isdigit() is true for
    # "²" and "١٢", which int() may refuse: that must not escape as a ValueError.
    response = HostileResponse(200, [(b"content-length", value)], json.dumps(valid_page()).encode())
    with UnifAPIClient(API_KEY, BASE, transport=recording(lambda r: response.build(), []), **FAST) as client:
        try:
            check_page(client.get_video_page("1", limit=2))
        except UnifAPIError as exc:
            check_error(exc)


@FUZZ
@given(
    body=hostile_error_body(),
    status=st.sampled_from([400, 401, 402, 404, 429, 500, 502, 503]),
    headers=hostile_headers(),
)
# found by CI once the pacer was on by default: the pacer held every chain for Retry-After: inf
@example(body=b"null", status=429, headers=[(b"retry-after", b"inf")])
@example(body=b"null", status=429, headers=[(b"retry-after", b"1e300")])
def test_hostile_error_envelopes_end_in_a_typed_error(
    body: bytes, status: int, headers: list[tuple[bytes, bytes]]
) -> None:
    response = HostileResponse(status, headers, body)
    with UnifAPIClient(API_KEY, BASE, transport=recording(lambda r: response.build(), []), **FAST) as client:
        with pytest.raises(UnifAPIError) as caught:
            client.get_video_page("1", limit=1)
    check_error(caught.value)


@FUZZ_RUNS
@given(pages=st.lists(mutated_page(), min_size=1, max_size=6))
def test_paging_over_hostile_pages_ends_typed_and_bounded(pages: list[Any]) -> None:
    # iter_video_pages follows whatever cursors come back: it must stop (end, max_pages, a repeated
    # cursor) or raise a typed error, never loop or crash.
    seen: list[httpx.Request] = []
    bodies = [json.dumps(p, allow_nan=True).encode() for p in pages]

    def respond(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=bodies[min(len(seen) - 1, len(bodies) - 1)])

    with UnifAPIClient(API_KEY, BASE, transport=recording(respond, seen), **FAST) as client:
        try:
            for page in client.iter_video_pages("42", limit=3, max_pages=10):
                check_page(page)
        except UnifAPIError as exc:
            check_error(exc)
    assert len(seen) <= 10 * 3
    only_videos_paths(seen)


@FUZZ_RUNS
@given(pages=st.lists(mutated_page(), min_size=1, max_size=5), max_credits=st.none() | st.integers(1, 40))
def test_collector_over_hostile_pages_ends_typed(pages: list[Any], max_credits: Any) -> None:
    # The operator's loop writes what it keeps to a run folder: hostile ids, counts and cursors must
    # end in a summary, a RunStopped (balance) or a typed error, and never write outside the folder.
    from upath import UPath

    from airflow_provider_unifapi.collector import (
        Budget,
        HashtagVideoCollector,
        ObjectStorageOutput,
        PagingSettings,
        RunStopped,
    )
    from airflow_provider_unifapi.storage.run_folder import RunFolder

    seen: list[httpx.Request] = []
    bodies = [json.dumps(p, allow_nan=True).encode() for p in pages]

    def respond(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=bodies[min(len(seen) - 1, len(bodies) - 1)])

    root = tempfile.mkdtemp(prefix="fuzz-collector-")
    try:
        client = UnifAPIClient(API_KEY, BASE, transport=recording(respond, seen), **FAST)
        collector = HashtagVideoCollector(
            client,
            "42",
            output=ObjectStorageOutput(RunFolder(UPath(f"file://{root}/out"), "jsonl"), records_per_part=2),
            budget=Budget(max_pages=8, max_credits=max_credits),
            paging=PagingSettings(page_size=3),
        )
        try:
            summary = collector.run()
        except RunStopped as stop:
            summary = stop.summary
        except UnifAPIError as exc:
            check_error(exc)
            summary = None
        if summary is not None:
            assert summary["pages"] <= 8
            json.dumps(summary)
        written = {str(p.relative_to(root)) for p in Path(root).rglob("*")}
        assert all(name == "out" or name.startswith("out/") for name in written), written
    finally:
        shutil.rmtree(root, ignore_errors=True)
    only_videos_paths(seen)


@FUZZ
@given(response=hostile_response())
def test_async_client_types_hostile_responses_too(response: HostileResponse) -> None:
    seen: list[httpx.Request] = []

    async def call() -> None:
        async with AsyncUnifAPIClient(
            API_KEY, BASE, transport=recording(lambda r: response.build(), seen), **FAST
        ) as client:
            try:
                check_page(await client.get_video_page("7", limit=2))
            except UnifAPIError as exc:
                check_error(exc)

    asyncio.run(call())
    only_videos_paths(seen)


def _first_item(page: Any) -> Any:
    """A hostile search result: the first (mutated) record of a mutated page, or whatever is there."""
    data = page.get("data") if isinstance(page, dict) else page
    return data[0] if isinstance(data, list) and data else data


@FUZZ
@given(item=mutated_page().map(_first_item))
def test_hostile_search_results_never_steer_the_next_request(item: Any) -> None:
    # Name resolution takes the id from a search result: whatever id comes back, the next request
    # goes to /tiktok/hashtags/{digits}/videos or is refused with a typed error.
    item = dict(item, name="cats") if isinstance(item, dict) else {"name": "cats", "id": item}
    seen: list[httpx.Request] = []

    def respond(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/tiktok/search/hashtags":
            body = {
                "request_id": "unif_2",
                "data": [item],
                "pagination": {"has_more": False, "next_cursor": None},
                "billing": {
                    "credits_charged": 1,
                    "records_charged": 1,
                    "balance_remaining": 9,
                    "truncated_due_to_balance": False,
                },
            }
            return httpx.Response(200, content=json.dumps(body, allow_nan=True).encode())
        return httpx.Response(200, content=json.dumps(valid_page(1, has_more=False)).encode())

    with UnifAPIClient(API_KEY, BASE, transport=recording(respond, seen), **FAST) as client:
        try:
            resolved = client.resolve_hashtag_id("cats")
            check_page(client.get_video_page(resolved.hashtag.id, limit=1))
        except UnifAPIError as exc:
            check_error(exc)
    for request in seen:
        assert request.url.path == "/tiktok/search/hashtags" or VIDEOS_PATH.fullmatch(request.url.path), (
            request.url
        )
