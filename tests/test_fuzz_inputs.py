"""Hostile inputs end in a typed error or correct handling, and never steer a request elsewhere.

Hashtag ids and names with ``/``, ``..``, ``%2F``, spaces, unicode and huge lengths; cursors with
odd characters; budgets of 0, negative, huge or malformed; keys and base URLs. Every request the
transport receives is checked: host, path (``/tiktok/hashtags/{digits}/videos`` and friends) and
query (the cursor passed back unchanged).
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import tempfile
from typing import Any

import httpx
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from airflow_provider_unifapi.client import UnifAPIClient
from airflow_provider_unifapi.exceptions import UnifAPIError, UnifAPIInputError
from tests.chaos.hostile import FUZZ, FUZZ_RUNS, valid_page
from tests.conftest import API_KEY

BASE = "https://api.unifapi.test"
VIDEOS = re.compile(r"/tiktok/hashtags/([0-9]{1,64})/videos")
HASHTAG = re.compile(r"/tiktok/hashtags/([0-9]{1,64})")
FAST = {"backoff_base": 0.0, "max_retry_wait": 0.0, "max_retries": 0}

PATH_TRICKS = [
    "12/3",
    "..",
    "../1",
    "1/../2",
    "%2F",
    "1%2F2",
    "%2e%2e",
    "1 2",
    " 12",
    "12 ",
    "12\n",
    "12\x00",
    "١٢٣",
    "１２３",
    "1" * 65,
    "1" * 10_000,
    "",
    "0x12",
    "+12",
    "-12",
    "1.0",
    "1e3",
    "12?limit=50",
    "12#x",
    "12;x",
    "\\12",
    "12/",
    "/12",
    "12/videos",
    "12\u202e",
    "𝟏𝟐",
    "12%00",
    "٣",
    "12\t",
]


def search_body(name: str, hashtag_id: Any = "123") -> bytes:
    return json.dumps(
        {
            "request_id": "unif_3",
            "data": [
                {
                    "id": hashtag_id,
                    "name": name,
                    "description": "",
                    "video_count": 1,
                    "view_count": 1,
                    "is_commerce": False,
                }
            ],
            "pagination": {"has_more": False, "next_cursor": None},
            "billing": {
                "credits_charged": 1,
                "records_charged": 1,
                "balance_remaining": 9,
                "truncated_due_to_balance": False,
            },
        }
    ).encode()


class Recorder:
    """A MockTransport that answers like the API and keeps every request it received."""

    def __init__(self, name: str = "cats", hashtag_id: Any = "123") -> None:
        self.seen: list[httpx.Request] = []
        self.name, self.hashtag_id = name, hashtag_id

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        if len(self.seen) > 250:  # fail at once rather than hang in an unbounded loop
            pytest.fail("the client sent more than 250 requests")
        if request.url.path == "/tiktok/search/hashtags":
            return httpx.Response(200, content=search_body(self.name, self.hashtag_id))
        if VIDEOS.fullmatch(request.url.path):
            return httpx.Response(200, content=json.dumps(valid_page(1, has_more=False)).encode())
        hashtag = {
            "request_id": "unif_4",
            "data": json.loads(search_body("x"))["data"][0],
            "billing": {
                "credits_charged": 1,
                "records_charged": 1,
                "balance_remaining": 9,
                "truncated_due_to_balance": False,
            },
        }
        return httpx.Response(200, json=hashtag)

    def client(self, **kwargs: Any) -> UnifAPIClient:
        return UnifAPIClient(
            kwargs.pop("api_key", API_KEY),
            kwargs.pop("base_url", BASE),
            transport=httpx.MockTransport(self),
            **{**FAST, **kwargs},
        )

    def assert_paths(self, *patterns: re.Pattern[str]) -> None:
        for request in self.seen:
            assert request.url.host == "api.unifapi.test", request.url
            assert any(p.fullmatch(request.url.path) for p in patterns), request.url
            assert "%" not in request.url.raw_path.split(b"?")[0].decode(), request.url


def json_ids() -> st.SearchStrategy[Any]:
    """Ids as a JSON body could carry them."""
    return st.one_of(
        st.sampled_from(PATH_TRICKS),
        st.text(max_size=80),
        st.integers(min_value=-(10**70), max_value=10**70),
        st.from_regex(r"[0-9]{1,70}", fullmatch=True),
        st.none(),
        st.booleans(),
        st.floats(),
        st.lists(st.integers(), max_size=2),
    )


def hashtag_ids() -> st.SearchStrategy[Any]:
    """Ids as Python callers could pass them."""
    return json_ids() | st.binary(max_size=10)


@FUZZ
@given(hashtag_id=hashtag_ids())
@example(hashtag_id="1" * 64)
@example(hashtag_id=10**63)
def test_hashtag_id_never_changes_the_request_path(hashtag_id: Any) -> None:
    recorder = Recorder()
    with recorder.client() as client:
        for call in (
            lambda: client.get_video_page(hashtag_id, limit=1),
            lambda: client.get_hashtag(hashtag_id),
            lambda: list(client.iter_video_pages(hashtag_id, limit=1)),
        ):
            try:
                call()
            except UnifAPIInputError as exc:
                assert "hashtag_id" in str(exc)
    recorder.assert_paths(VIDEOS, HASHTAG)
    for request in recorder.seen:
        digits = (VIDEOS.fullmatch(request.url.path) or HASHTAG.fullmatch(request.url.path)).group(1)  # type: ignore[union-attr]
        assert digits == str(hashtag_id)  # the id asked for, never another one


def cursors() -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(min_size=1, max_size=200),
        st.sampled_from(
            [
                "&limit=50",
                "a=b&c",
                "../../",
                "%2F%00",
                "#frag",
                "?x",
                "a b+c",
                "\x00",
                "\r\nX-Evil: 1",
                "é😀",
                "=" * 10,
                "x" * 4096,
                "x" * 4097,
                "%",
                "%%32%66",
                "cursor=1&cursor=2",
            ]
        ),
    )


@FUZZ
@given(cursor=cursors())
def test_cursor_goes_back_unchanged_in_the_query_only(cursor: str) -> None:
    recorder = Recorder()
    with recorder.client() as client:
        try:
            client.get_video_page("42", cursor=cursor, limit=3)
        except UnifAPIInputError as exc:
            assert "cursor" in str(exc)
            return
    recorder.assert_paths(VIDEOS)
    (request,) = recorder.seen
    params = request.url.params
    assert sorted(params.keys()) == ["cursor", "limit"]
    assert params.get_list("cursor") == [cursor]  # passed back unchanged
    assert params["limit"] == "3"


@pytest.mark.parametrize("call", ["cursor", "search query", "hashtag name"])
@pytest.mark.parametrize("text", ["\ud800", "ok\udfffok"], ids=["lone-high-surrogate", "lone-low-surrogate"])
def test_text_with_lone_surrogates_is_a_typed_error(call: str, text: str) -> None:
    # A lone surrogate cannot be encoded as UTF-8 (a cursor read from a hostile JSON body may hold one):
    # it must end in UnifAPIInputError, not a UnicodeEncodeError from deep inside httpx.
    recorder = Recorder()
    with recorder.client() as client:
        with pytest.raises(UnifAPIError):
            if call == "cursor":
                client.get_video_page("42", cursor=text)
            elif call == "search query":
                client.search_hashtags(text)
            else:
                client.resolve_hashtag_id(text)
    assert recorder.seen == []


def names() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.sampled_from(
            [
                "cats",
                "#cats",
                " #cats ",
                "ca/ts",
                "../cats",
                "%2Fcats",
                "cats dogs",
                "çats",
                "猫",
                "😺",
                "c" * 150,
                "c" * 151,
                "c" * 10_000,
                "",
                "#",
                "  ",
                "\x00cats",
                "cats\n",
                "\u202ecats",
            ]
        ),
        st.text(max_size=60),
        st.none(),
        st.integers(),
    )


@FUZZ
@given(name=names())
def test_hashtag_name_only_ever_reaches_the_search_endpoint(name: Any) -> None:
    cleaned = name.strip().lstrip("#").strip() if isinstance(name, str) else None
    recorder = Recorder(name=cleaned or "x")
    with recorder.client() as client:
        try:
            resolved = client.resolve_hashtag_id(name)
        except UnifAPIInputError as exc:
            assert "hashtag_name" in str(exc)
            assert recorder.seen == []
            return
    assert resolved.hashtag.id == "123"
    recorder.assert_paths(re.compile(r"/tiktok/search/hashtags"))
    for request in recorder.seen:
        assert request.url.params.get_list("q") == [cleaned]


@FUZZ
@given(hashtag_id=json_ids())
def test_an_id_found_by_name_is_checked_like_any_other(hashtag_id: Any) -> None:
    # The id comes from a (hostile) search result; following it may only reach /tiktok/hashtags/{digits}/videos.
    recorder = Recorder(name="cats", hashtag_id=hashtag_id)
    with recorder.client() as client:
        try:
            resolved = client.resolve_hashtag_id("cats")
            client.get_video_page(resolved.hashtag.id, limit=1)
        except UnifAPIError:
            pass
    recorder.assert_paths(re.compile(r"/tiktok/search/hashtags"), VIDEOS)


def budgets() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(10**30), max_value=10**30),
        st.sampled_from([0, -1, 1, 10**30]),
        st.floats(),
        st.from_regex(r" ?-?[0-9]{0,25} ?", fullmatch=True),
        st.sampled_from(["", "abc", "1.5", "1e3", "None"]),
    )


def _checked_budget(argument: str, value: Any) -> Any:
    """The operator's accepted value of ``argument`` once checked (as ``execute`` checks it)."""
    from airflow_provider_unifapi.operators._arguments import check_arguments
    from airflow_provider_unifapi.operators.hashtag_videos import TikTokHashtagVideosOperator

    # The constructor only stores: any value is accepted there (it may be a template or an XComArg).
    operator = TikTokHashtagVideosOperator(
        task_id="fuzz", hashtag_id="42", output_path="file:///nonexistent/x", **{argument: value}
    )
    assert getattr(operator, argument) is value
    checked = check_arguments(operator)
    return checked.paging.page_size if argument == "page_size" else getattr(checked.budget, argument)


@FUZZ_RUNS
@given(
    argument=st.sampled_from(["max_credits", "max_records", "max_pages", "min_balance", "page_size"]),
    value=budgets(),
)
def test_operator_budgets_are_refused_typed_or_honoured(
    argument: str, value: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    try:
        accepted = _checked_budget(argument, value)
    except UnifAPIInputError as exc:
        assert argument in str(exc)
        return
    assert accepted is None or (isinstance(accepted, int) and not isinstance(accepted, bool))
    minimum = 0 if argument == "min_balance" else 1
    assert accepted is None or accepted >= minimum
    if argument == "page_size":
        assert accepted is not None and accepted <= 50


@pytest.mark.parametrize(
    "value", ["²", "--5", "٣"], ids=["superscript-2", "double-minus-5", "arabic-indic-3"]
)
@pytest.mark.parametrize("argument", ["max_credits", "page_size"])
def test_malformed_budget_strings_fail_typed_naming_the_argument(argument: str, value: str) -> None:
    # Templated budgets arrive as strings; one that looks numeric to str.isdigit() but is not an int
    # must fail as UnifAPIInputError naming the argument (a plain ValueError would be retried by Airflow).
    with pytest.raises(UnifAPIInputError) as caught:
        _checked_budget(argument, value)
    assert argument in str(caught.value)


@FUZZ_RUNS
@given(
    max_credits=st.one_of(st.integers(-(10**30), 3), st.integers(10**6, 10**30)),
    max_records=st.none() | st.integers(-(10**30), 10**30),
)
def test_collector_budgets_of_zero_negative_or_huge_are_handled(max_credits: int, max_records: Any) -> None:
    # The collector trusts its Budget (the operator validated it): 0 or less spends nothing and
    # stops on that budget; a huge one changes nothing.
    from upath import UPath

    from airflow_provider_unifapi.collector import (
        Budget,
        HashtagVideoCollector,
        ObjectStorageOutput,
        PagingSettings,
    )
    from airflow_provider_unifapi.storage.run_folder import RunFolder

    recorder = Recorder()
    root = tempfile.mkdtemp(prefix="fuzz-budget-")
    try:
        with recorder.client() as client:
            collector = HashtagVideoCollector(
                client,
                "42",
                output=ObjectStorageOutput(RunFolder(UPath(f"file://{root}"), "jsonl")),
                budget=Budget(max_credits=max_credits, max_records=max_records),
                paging=PagingSettings(page_size=5),
            )
            summary = collector.run()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    recorder.assert_paths(VIDEOS)
    spent = summary["credits_charged"] + summary["possibly_billed_credits"]
    assert spent <= max(0, max_credits)
    if max_credits < 1 or (max_records is not None and max_records < 1):
        assert recorder.seen == [] and summary["records"] == 0
        assert summary["stop_reason"] in ("max_credits", "max_records")
    for request in recorder.seen:
        assert int(request.headers.get("x-unifapi-max-credits", max_credits)) <= max(1, max_credits)


@FUZZ
@given(
    key=st.text(st.characters(max_codepoint=127), max_size=60)
    | st.sampled_from(["", " ", "sk_ok", "sk ok", "sk\tok", "sk\nX-Evil: 1"])
)
def test_api_key_is_refused_typed_or_sent_exactly_as_a_bearer_token(key: str) -> None:
    recorder = Recorder()
    try:
        client = recorder.client(api_key=key)
    except UnifAPIInputError as exc:
        assert "api_key" in str(exc) and (not key.strip() or key.strip() not in str(exc))
        return
    with client:
        client.get_video_page("1", limit=1)
    (request,) = recorder.seen
    assert request.headers["authorization"] == f"Bearer {key.strip()}"


@pytest.mark.parametrize(
    "key", ["sk_clé", "ключ", "sk_\u00a0x", "sk_😀"], ids=["latin1", "cyrillic", "nbsp", "emoji"]
)
def test_non_ascii_api_key_is_a_typed_error(key: str) -> None:
    # A key pasted with a non-ASCII character cannot go in an HTTP header: the client must say so
    # with UnifAPIInputError (naming api_key), not crash with UnicodeEncodeError.
    with pytest.raises(UnifAPIInputError) as caught:
        UnifAPIClient(key, BASE).close()
    assert "api_key" in str(caught.value)


BASE_URLS = [
    "http://api.unifapi.com",
    "https://user:pw@api.unifapi.com",
    "javascript:alert(1)",
    "file:///etc/passwd",
    "ftp://api.unifapi.com",
    "https://api.unifapi.com?x=1",
    "https://api.unifapi.com#frag",
    "http://127.0.0.1.evil.com",
    "http://localhost.evil.com",
    "http://evil.com#@localhost",
    "http://evil.com\\@localhost",
    "https://",
    "//evil.com",
    "http://[::1]:8080",
    "http://127.0.0.1:1",
    "https://api.unifapi.com:99999",
    " https://api.unifapi.com ",
    "",
    "http://0.0.0.0",
    "http://10.0.0.1",
    "http://2130706433",
    "https://ａｐｉ.unifapi.com",
    "https://api.unifapi.com/v1",
]


def check_base_url(url: str) -> None:
    from urllib.parse import urlsplit

    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=json.dumps(valid_page(1, has_more=False)).encode())

    try:
        client = UnifAPIClient(API_KEY, url, transport=httpx.MockTransport(handler), **FAST)
    except UnifAPIInputError:
        return
    with client:
        with contextlib.suppress(UnifAPIError):
            client.get_video_page("1", limit=1)
    expected = urlsplit(client.base_url)
    for request in seen:
        assert request.url.host == expected.hostname
        # plain http only to loopback: the key never travels in clear text elsewhere
        if request.url.scheme == "http":
            import ipaddress

            host = request.url.host
            assert (
                host == "localhost" or host.endswith(".localhost") or ipaddress.ip_address(host).is_loopback
            )


@pytest.mark.parametrize("url", [*BASE_URLS, "a:b", "https://[::1", "https://h\x00st", "https://xn--"])
def test_hostile_base_url_is_refused_typed_or_used_as_given(url: str) -> None:
    # The base URL is the connection's host field: anything a user can type there must end in
    # UnifAPIInputError naming base_url, or a client that talks to exactly that host.
    check_base_url(url)


@FUZZ
@given(url=st.text(max_size=40) | st.builds(lambda host: f"https://{host}", st.text(max_size=20)))
def test_random_base_url_is_refused_typed_or_used_as_given(url: str) -> None:
    check_base_url(url)
