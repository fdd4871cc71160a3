"""The pure client against the sandbox over real HTTP: paging, errors, retries, billing, safety."""

from __future__ import annotations

import gzip
import json
import logging
import socket
import ssl
import time

import httpx
import pytest

from airflow_provider_unifapi import exceptions as ex
from airflow_provider_unifapi.client import UnifAPIClient
from tests.conftest import API_KEY, assert_no_key, sandbox_client

HASHTAG = "4200"


@pytest.fixture
def tag(sandbox):
    sandbox.add_hashtag(HASHTAG, "cats", 230)
    return HASHTAG


def test_iterates_every_page_to_the_end(sandbox, tag):
    with sandbox_client(sandbox) as client:
        pages = list(client.iter_video_pages(tag, limit=50))
    ids = [video.id for page in pages for video in page.data]
    # The sandbox repeats some ids across pages: unique ids in order of first sight == ground truth.
    assert list(dict.fromkeys(ids)) == sandbox.truth(tag)
    assert pages[-1].pagination.has_more is False and pages[-1].pagination.next_cursor is None
    assert all(p.pagination.has_more and p.pagination.next_cursor for p in pages[:-1])
    # one call per page, nothing else
    assert len(sandbox.calls("videos")) == len(pages)
    assert sum(p.billing.credits_charged for p in pages) == sandbox.credits_charged()


def test_short_page_with_has_more_does_not_stop(sandbox, tag):
    sandbox.reset(short_page_rate=0.5, hashtags=[{"id": tag, "name": "cats", "video_count": 230}])
    with sandbox_client(sandbox) as client:
        pages = list(client.iter_video_pages(tag, limit=20))
    short_but_more = [p for p in pages if len(p.data) < 20 and p.pagination.has_more]
    assert short_but_more, "the scenario must contain short pages that are not the last"
    ids = [video.id for page in pages for video in page.data]
    assert list(dict.fromkeys(ids)) == sandbox.truth(tag)


def test_next_cursor_none_ends_even_if_has_more(monkeypatch):
    """Either end condition stops: has_more true with a null cursor (only MockTransport can send it)."""
    body = {
        "request_id": "unif_x",
        "data": [],
        "pagination": {"has_more": True, "next_cursor": None},
        "billing": {
            "credits_charged": 1,
            "records_charged": 0,
            "balance_remaining": 5,
            "truncated_due_to_balance": False,
        },
    }
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, json=body)

    client = UnifAPIClient(API_KEY, "http://127.0.0.1:9", transport=httpx.MockTransport(handler))
    assert len(list(client.iter_video_pages("1"))) == 1
    assert len(calls) == 1


def test_empty_hashtag_is_one_paid_empty_page(sandbox):
    sandbox.add_hashtag("777", "empty", 0)
    with sandbox_client(sandbox) as client:
        pages = list(client.iter_video_pages("777"))
    assert len(pages) == 1 and pages[0].data == []
    assert pages[0].billing.credits_charged == 1  # minimum charge per call


@pytest.mark.parametrize(
    ("status", "error_type", "cls"),
    [
        (400, "validation_error", ex.UnifAPIValidationError),
        (400, "invalid_id", ex.UnifAPIInvalidIdError),
        (401, "unauthorized", ex.UnifAPIUnauthorizedError),
        (402, "insufficient_credits", ex.UnifAPIInsufficientCreditsError),
        (404, "not_found", ex.UnifAPINotFoundError),
        (429, "rate_limited", ex.UnifAPIRateLimitedError),
        (500, "internal_error", ex.UnifAPIInternalError),
        (500, "response_shape_error", ex.UnifAPIResponseShapeError),
        (502, "upstream_error", ex.UnifAPIUpstreamError),
        (503, "upstream_unavailable", ex.UnifAPIUpstreamUnavailableError),
    ],
)
def test_every_error_type_maps_to_its_exception(sandbox, tag, status, error_type, cls):
    sandbox.faults({"kind": "error", "status": status, "type": error_type})  # every call fails
    with (
        sandbox_client(sandbox, max_retries=2, max_rate_limit_wait=0.1) as client,
        pytest.raises(cls) as caught,
    ):
        client.get_video_page(tag)
    err = caught.value
    assert err.status == status and err.error_type == error_type
    assert err.request_id and err.request_id.startswith("unif_")
    ledger_ids = {c["request_id"] for c in sandbox.calls()}
    assert err.request_id in ledger_ids
    retried = ex.is_retryable(err)
    cap = ex.max_attempts_for(err) or 3
    if status == 429:
        # 429s are bounded by time waited (max_rate_limit_wait), not by max_retries
        assert len(sandbox.calls()) >= 2 and err.attempts == len(sandbox.calls())
    else:
        assert len(sandbox.calls()) == (min(3, cap) if retried else 1)


def test_402_and_validation_carry_billing_and_issues(sandbox, tag):
    sandbox.set_balance(0)
    with sandbox_client(sandbox) as client:
        with pytest.raises(ex.UnifAPIInsufficientCreditsError) as caught:
            client.get_video_page(tag)
        assert caught.value.balance_remaining == 0
        assert caught.value.credits_required is not None and caught.value.credits_required >= 1
        assert client.last_balance is not None and client.last_balance.balance == 0
    assert sandbox.credits_charged() == 0
    sandbox.set_balance(100)
    with sandbox_client(sandbox) as client:
        # a cursor the API does not know: a real 400 with issues, never retried
        with pytest.raises(ex.UnifAPIValidationError) as caught:
            client.get_video_page(tag, cursor="not-a-real-cursor")
    assert caught.value.issues
    assert [c["status"] for c in sandbox.calls()] == [402, 400]  # each tried once


@pytest.mark.parametrize("retry_after", [None, 0, 1])
def test_429_with_and_without_retry_after_recovers(sandbox, tag, retry_after, caplog):
    rule = {"kind": "error", "status": 429, "type": "rate_limited", "at": [1, 2]}
    if retry_after is not None:
        rule["retry_after"] = retry_after
    sandbox.faults(rule)
    with caplog.at_level(logging.WARNING), sandbox_client(sandbox, max_retry_wait=0.05) as client:
        page = client.get_video_page(tag, limit=5)
    assert len(page.data) > 0
    assert page.call_stats.attempts == 3
    statuses = [c["status"] for c in sandbox.calls()]
    assert statuses == [429, 429, 200]
    assert sandbox.credits_charged() == page.billing.credits_charged  # 429s cost nothing
    # each retry logged with the request id of the failed call
    assert caplog.text.count("rate_limited") == 2
    assert "unif_" in caplog.text


def test_retry_after_is_honoured_up_to_the_cap(sandbox, tag):
    from airflow_provider_unifapi.client.retrying import RetryPolicy

    policy = RetryPolicy(max_retry_wait=3.0, backoff_base=0.01)
    err = ex.UnifAPIRateLimitedError("x", retry_after=2.0)
    assert policy.wait_seconds(err, 1) == 2.0
    assert policy.wait_seconds(ex.UnifAPIRateLimitedError("x", retry_after=600), 1) == 3.0
    # Retry-After: 0 and missing fall back to exponential backoff (never a zero-wait hammering)
    zero = policy.wait_seconds(ex.UnifAPIRateLimitedError("x", retry_after=0.0), 3)
    assert 0.02 <= zero <= 0.04


def test_5xx_burst_recovers(sandbox, tag):
    sandbox.faults(
        {"kind": "error", "status": 503, "type": "upstream_unavailable", "at": [1, 2]},
        {"kind": "error", "status": 500, "type": "internal_error", "at": [3]},
        {"kind": "error", "status": 502, "type": None, "html": True, "at": [4]},
    )
    with sandbox_client(sandbox) as client:
        page = client.get_video_page(tag, limit=10)
    assert page.call_stats.attempts == 5
    assert [c["status"] for c in sandbox.calls()] == [503, 503, 500, 502, 200]


def test_429s_are_bounded_by_time_not_by_max_retries(sandbox, tag):
    sandbox.faults({"kind": "error", "status": 429, "type": "rate_limited", "retry_after": 0, "times": 8})
    with sandbox_client(sandbox, max_retries=1, max_retry_wait=0.01, max_rate_limit_wait=30) as client:
        page = client.get_video_page(tag, limit=5)
    assert page.call_stats.attempts == 9  # eight 429s waited out although max_retries=1
    sandbox.faults({"kind": "error", "status": 429, "type": "rate_limited", "retry_after": 1})
    with sandbox_client(sandbox, max_retry_wait=0.05, max_rate_limit_wait=0.2) as client:
        with pytest.raises(ex.UnifAPIRateLimitedError) as caught:
            client.get_video_page(tag, limit=5)
    assert 2 <= caught.value.attempts <= 6  # stopped once 0.2 s had been spent waiting


def test_retry_attempts_are_bounded(sandbox, tag):
    sandbox.faults({"kind": "error", "status": 503, "type": "upstream_unavailable"})
    with (
        sandbox_client(sandbox, max_retries=4) as client,
        pytest.raises(ex.UnifAPIUpstreamUnavailableError) as caught,
    ):
        client.get_video_page(tag)
    assert caught.value.attempts == 5
    assert len(sandbox.calls()) == 5


def test_4xx_is_never_retried(sandbox, tag):
    sandbox.faults({"kind": "error", "status": 403, "type": None, "html": True})
    with sandbox_client(sandbox) as client, pytest.raises(ex.UnifAPIUnexpectedStatusError) as caught:
        client.get_video_page(tag)
    assert caught.value.status == 403
    assert len(sandbox.calls()) == 1


def test_reset_connection_is_retried_and_counted_as_possibly_billed(sandbox, tag):
    sandbox.faults({"kind": "reset", "at": [1]})
    with sandbox_client(sandbox) as client:
        page = client.get_video_page(tag, limit=10)
    assert page.call_stats.attempts == 2
    # the lost attempt may have been billed: its worst case (limit=10) is reported, not hidden
    assert page.call_stats.possibly_billed_credits == 10


def test_reset_every_time_gives_a_typed_transport_error(sandbox, tag):
    sandbox.faults({"kind": "reset"})
    with sandbox_client(sandbox, max_retries=2) as client, pytest.raises(ex.UnifAPITransportError) as caught:
        client.get_video_page(tag, limit=7)
    assert caught.value.attempts == 3
    assert caught.value.possibly_billed_credits == 21


@pytest.mark.parametrize("kind", ["malformed", "truncated", "shape"])
def test_broken_bodies_give_typed_errors_and_are_not_retried_by_default(sandbox, tag, kind):
    sandbox.faults({"kind": kind, "at": [1]})
    with sandbox_client(sandbox) as client, pytest.raises(ex.UnifAPIInvalidResponseError) as caught:
        client.get_video_page(tag, limit=10)
    err = caught.value
    assert err.may_have_been_billed and err.possibly_billed_credits == 10
    assert len(sandbox.calls()) == 1  # billed, so not retried unless asked
    assert sandbox.credits_charged() <= err.possibly_billed_credits


def test_broken_bodies_retried_when_asked_and_spend_is_counted(sandbox, tag):
    sandbox.faults({"kind": "truncated", "at": [1]}, {"kind": "malformed", "at": [2]})
    with sandbox_client(sandbox, retry_billed_errors=True) as client:
        page = client.get_video_page(tag, limit=10)
    assert page.call_stats.attempts == 3
    assert page.call_stats.possibly_billed_credits == 20
    assert sandbox.credits_charged() == 20 + page.billing.credits_charged


def test_per_call_credit_cap_stops_retries_that_could_pass_it(sandbox, tag):
    sandbox.faults({"kind": "reset", "at": [1]})
    with sandbox_client(sandbox) as client, pytest.raises(ex.UnifAPITransportError) as caught:
        client.get_video_page(tag, limit=50, max_credits=30)
    # the lost attempt may have cost 30: no room is left under the cap, so no retry is made
    assert caught.value.possibly_billed_credits == 30
    calls = sandbox.calls()
    assert len(calls) == 1 and calls[0]["headers"]["x-unifapi-max-credits"] == "30"


def test_per_call_credit_cap_shrinks_retry(sandbox, tag):
    sandbox.faults({"kind": "reset", "at": [1]})
    with sandbox_client(sandbox) as client:
        page = client.get_video_page(tag, limit=20, max_credits=35)
    first, second = sandbox.calls()
    # (the sandbox resets before parsing the query, so the first call's cap is read from its headers)
    assert first["headers"]["x-unifapi-max-credits"] == "35"
    assert second["limit"] == 15 and int(second["max_credits"]) == 15
    assert page.call_stats.possibly_billed_credits == 20
    assert len(page.data) <= 15


def test_truncated_by_balance_page_then_resume(sandbox, tag):
    sandbox.set_balance(30)
    with sandbox_client(sandbox) as client:
        got = []
        with pytest.raises(ex.UnifAPITruncatedByBalanceError) as caught:
            for page in client.iter_video_pages(tag, limit=50):
                got.append(page)
        assert got[-1].billing.truncated_due_to_balance is True
        assert len(got[-1].data) == 30
        assert caught.value.balance_remaining == 0
        assert caught.value.resume_cursor is None  # the truncated page was the first one
        sandbox.set_balance(10_000)
        kept = {v.id for v in got[-1].data}
        rest = list(client.iter_video_pages(tag, cursor=caught.value.resume_cursor, limit=50))
    ids = [v.id for v in got[-1].data] + [v.id for p in rest for v in p.data if v.id not in kept]
    assert list(dict.fromkeys(ids)) == sandbox.truth(tag)


def test_nullable_and_unknown_fields_survive_a_round_trip(sandbox, tag):
    with sandbox_client(sandbox) as client:
        videos = [v for p in client.iter_video_pages(tag) for v in p.data]
    dumped = [v.model_dump(mode="json") for v in videos]
    assert any(d["music"] is None for d in dumped)
    assert any(d["region"] is None for d in dumped)
    assert any(d["play_url"] is None for d in dumped)
    extras = [d for d in dumped if set(d) - set(type(videos[0]).model_fields)]
    assert extras, "the sandbox sends unknown fields on some records"
    # ids and big counts stay exact
    assert all(isinstance(d["id"], str) and d["id"].isdigit() for d in dumped)
    assert any(d["view_count"] > 2**31 for d in dumped)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"hashtag_id": "12/34"}, "hashtag_id"),
        ({"hashtag_id": "../1"}, "hashtag_id"),
        ({"hashtag_id": "%2F1"}, "hashtag_id"),
        ({"hashtag_id": "1 2"}, "hashtag_id"),
        ({"hashtag_id": "١٢٣"}, "hashtag_id"),
        ({"hashtag_id": ""}, "hashtag_id"),
        ({"hashtag_id": "1", "limit": 0}, "limit"),
        ({"hashtag_id": "1", "limit": 51}, "limit"),
        ({"hashtag_id": "1", "limit": "20"}, "limit"),
        ({"hashtag_id": "1", "cursor": ""}, "cursor"),
        ({"hashtag_id": "1", "max_credits": 0}, "max_credits"),
    ],
)
def test_bad_arguments_are_refused_before_any_request(sandbox, kwargs, argument):
    hashtag_id = kwargs.pop("hashtag_id")
    with sandbox_client(sandbox) as client, pytest.raises(ex.UnifAPIInputError) as caught:
        client.get_video_page(hashtag_id, **kwargs)
    assert caught.value.argument == argument
    assert argument in str(caught.value)
    assert sandbox.calls() == []


@pytest.mark.parametrize(
    "url",
    [
        "http://api.unifapi.com",
        "http://10.0.0.5:8080",
        "ftp://api.unifapi.com",
        "https://user:pw@api.unifapi.com",
    ],
)
def test_insecure_or_odd_base_urls_are_refused(url):
    with pytest.raises(ex.UnifAPIInputError) as caught:
        UnifAPIClient(API_KEY, url)
    assert caught.value.argument == "base_url"


def test_plain_http_allowed_for_loopback_only():
    for url in ("http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:5"):
        UnifAPIClient(API_KEY, url).close()
    with pytest.raises(ex.UnifAPIInputError):
        UnifAPIClient(API_KEY, "https://api.unifapi.com", verify=False)


def test_ca_bundle_loaded_only_for_https():
    # https: httpx's own verification (system CA bundle), untouched.
    with UnifAPIClient(API_KEY, "https://api.unifapi.com") as client:
        assert client._http_kwargs["verify"] is True
    # http (loopback only) never speaks TLS: no CA bundle to load, and a context that trusts no CA
    # and checks host names would refuse any peer if it were ever used.
    with UnifAPIClient(API_KEY, "http://127.0.0.1:8080") as client:
        context = client._http_kwargs["verify"]
    assert isinstance(context, ssl.SSLContext)
    assert context.cert_store_stats()["x509_ca"] == 0
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_key_never_in_logs_or_errors_even_when_requests_fail(sandbox, tag, caplog):
    sandbox.faults(
        {"kind": "error", "status": 429, "type": "rate_limited", "at": [1]},
        {"kind": "reset", "at": [2]},
        {"kind": "error", "status": 401, "type": "unauthorized", "at": [3]},
    )
    texts = []
    with caplog.at_level(logging.DEBUG):
        with sandbox_client(sandbox) as client:
            try:
                client.get_video_page(tag)
            except ex.UnifAPIError as err:
                texts += [str(err), repr(err), err.to_dict()]
            texts.append(repr(client))
    assert len(sandbox.calls()) == 3
    assert_no_key(caplog.text, *texts)


def test_response_body_cap(sandbox, tag):
    with (
        sandbox_client(sandbox, max_response_bytes=2048) as client,
        pytest.raises(ex.UnifAPIResponseTooLargeError),
    ):
        client.get_video_page(tag, limit=50)


def test_redirects_are_not_followed(monkeypatch):
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(302, headers={"Location": "https://evil.example/steal"})

    client = UnifAPIClient(API_KEY, "https://api.unifapi.com", transport=httpx.MockTransport(handler))
    with pytest.raises(ex.UnifAPIUnexpectedStatusError) as caught:
        client.get_video_page("1")
    assert caught.value.status == 302
    assert seen == ["https://api.unifapi.com/tiktok/hashtags/1/videos?limit=20"]


def test_remembers_balance_and_rate_limit_headers(sandbox, tag):
    sandbox.reset(
        rate_limit_per_minute=600, balance=5000, hashtags=[{"id": tag, "name": "cats", "video_count": 230}]
    )
    with sandbox_client(sandbox) as client:
        page = client.get_video_page(tag, limit=5)
        assert client.last_balance.balance == page.billing.balance_remaining == sandbox.balance()
        assert client.last_balance.request_id == page.request_id
        assert client.last_rate_limit.limit == 600
        assert client.last_rate_limit.remaining is not None


def test_rate_limited_workspace_waits_instead_of_failing(sandbox, tag):
    sandbox.reset(
        rate_limit_per_minute=600,
        rate_limit_burst=2,
        hashtags=[{"id": tag, "name": "cats", "video_count": 230}],
    )
    # unpaced: the 429 path itself (a paced client, the default, would not meet one here)
    with sandbox_client(sandbox, max_retry_wait=1.0, max_retries=10, pace_requests=False) as client:
        pages = list(client.iter_video_pages(tag, limit=50))
    statuses = [c["status"] for c in sandbox.calls()]
    assert 429 in statuses  # the bucket ran dry...
    assert statuses.count(200) == len(pages)  # ...and every page still arrived
    ids = [v.id for p in pages for v in p.data]
    assert list(dict.fromkeys(ids)) == sandbox.truth(tag)


def test_get_hashtag_search_and_resolve(sandbox):
    sandbox.add_hashtag("9001", "catsofinstagram", 10)
    sandbox.add_hashtag("9002", "catsandbox", 10)
    with sandbox_client(sandbox) as client:
        assert client.get_hashtag("9002").data.name == "catsandbox"
        resolved = client.resolve_hashtag_id("#CatSandbox")
        assert resolved.hashtag.id == "9002"
        assert resolved.credits_charged == sum(c["credits_charged"] for c in sandbox.calls("search"))
        with pytest.raises(ex.UnifAPIHashtagNotFoundError) as caught:
            client.resolve_hashtag_id("nosuchtagatall", limit=5, max_pages=2)
    assert caught.value.credits_charged is not None and caught.value.credits_charged >= 1
    with sandbox_client(sandbox) as client, pytest.raises(ex.UnifAPINotFoundError):
        sandbox.reset(not_found_ids=["31337"])
        client.get_hashtag("31337")


# -- the request on the wire, and bodies the sandbox does not send ----------------------------------
ODD_CURSOR = "a b+c/d=e&f?g#h%20\u00fc"


def _page_body(count: int = 2) -> dict:
    return {
        "request_id": "unif_mock",
        "data": [],
        "pagination": {"has_more": False, "next_cursor": None},
        "billing": {
            "credits_charged": count,
            "records_charged": 0,
            "balance_remaining": 5,
            "truncated_due_to_balance": False,
        },
    }


def test_query_and_headers_reach_the_server_unchanged(sandbox, tag):
    with sandbox_client(sandbox, user_agent="tests/1") as client:
        with pytest.raises(ex.UnifAPIValidationError):  # a cursor the sandbox never issued: a 400
            client.get_video_page(tag, cursor=ODD_CURSOR, limit=50, max_credits=7)
        client.get_video_page(tag, limit=3)
    first, second = sandbox.calls()
    assert first["cursor"] == ODD_CURSOR and first["limit"] == 7  # limit shrunk to the credit cap
    assert (
        first["headers"]["x-unifapi-max-credits"] == "7" and "x-unifapi-max-credits" not in second["headers"]
    )
    for call in (first, second):
        headers = call["headers"]
        assert headers["accept-encoding"] == "identity" and headers["user-agent"] == "tests/1"
        assert headers["accept"] == "application/json"


def test_url_bytes_under_a_base_path():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=_page_body())

    transport = httpx.MockTransport(handler)
    with UnifAPIClient(API_KEY, "https://api.unifapi.com/v1/", transport=transport, timeout=7.5) as client:
        client.get_video_page("42", cursor=ODD_CURSOR, limit=50, max_credits=7)
        client.search_hashtags("\u65e5\u672c #tag", limit=1)
    assert seen[0].url.raw_path == (
        b"/v1/tiktok/hashtags/42/videos?limit=7&cursor=a+b%2Bc%2Fd%3De%26f%3Fg%23h%2520%C3%BC"
    )
    assert seen[1].url.raw_path == b"/v1/tiktok/search/hashtags?q=%E6%97%A5%E6%9C%AC+%23tag&limit=1"
    assert seen[0].headers["authorization"] == f"Bearer {API_KEY}"
    assert seen[0].extensions["timeout"]["read"] == 7.5


def test_cookies_a_server_sets_are_sent_back():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        cookie = {"Set-Cookie": "lb=node-3; Path=/"} if len(seen) == 1 else {}
        return httpx.Response(200, json=_page_body(), headers=cookie)

    with UnifAPIClient(API_KEY, "https://api.unifapi.com", transport=httpx.MockTransport(handler)) as client:
        client.get_video_page("42", limit=2)
        client.get_video_page("42", limit=2)
    assert "cookie" not in seen[0].headers
    assert seen[1].headers["cookie"] == "lb=node-3"


def test_a_gzip_body_is_decoded_and_capped_decoded():
    # Accept-Encoding: identity is asked for, but a proxy may compress anyway: httpx decodes it, and
    # the size cap applies to the decoded bytes.
    body = gzip.compress(json.dumps(_page_body()).encode() + b" " * 8000)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"Content-Encoding": "gzip"})

    transport = httpx.MockTransport(handler)
    with UnifAPIClient(API_KEY, "https://api.unifapi.com", transport=transport) as client:
        assert client.get_video_page("42", limit=2).billing.credits_charged == 2
    with UnifAPIClient(
        API_KEY, "https://api.unifapi.com", transport=transport, max_response_bytes=4096, max_retries=0
    ) as client:
        with pytest.raises(ex.UnifAPIResponseTooLargeError) as caught:
            client.get_video_page("42", limit=2)
    assert len(body) < 4096 and caught.value.may_have_been_billed  # a 200: it was billed


class _BreaksMidBody(httpx.SyncByteStream):
    def __iter__(self):
        yield b'{"request_id": "unif_cut", "data": ['
        raise httpx.ReadError("connection lost mid-body")


@pytest.mark.parametrize(("status", "billed"), [(200, True), (503, False)])
def test_a_body_cut_short_is_typed_and_billed_only_on_success(status, billed):
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, stream=_BreaksMidBody(), headers={"X-Request-Id": "unif_cut"})

    transport = httpx.MockTransport(handler)
    with UnifAPIClient(API_KEY, "https://api.unifapi.com", transport=transport, max_retries=0) as client:
        with pytest.raises(ex.UnifAPIError) as caught:
            client.get_video_page("42", limit=4)
        assert client.possibly_billed_credits == (4 if billed else 0)
    err = caught.value
    assert err.status == status and err.may_have_been_billed is billed and err.attempts == 1
    assert err.possibly_billed_credits == (4 if billed else 0)
    expected = ex.UnifAPIInvalidResponseError if billed else ex.UnifAPITransportError
    assert type(err) is expected and "ReadError" in str(err)
    assert_no_key(str(err), repr(err), err.to_dict())


def test_nothing_listening_is_an_unbilled_transport_error():
    probe = socket.create_server(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    probe.close()
    with (
        UnifAPIClient(API_KEY, url, max_retries=0) as client,
        pytest.raises(ex.UnifAPITransportError) as caught,
    ):
        client.get_video_page("42", limit=2)
    assert not caught.value.may_have_been_billed and caught.value.possibly_billed_credits == 0
    assert "ConnectError" in str(caught.value)


def test_a_server_that_never_answers_in_time_is_a_billed_timeout(sandbox, tag):
    sandbox.faults({"kind": "slow", "delay_s": 1.0})
    with sandbox_client(sandbox, max_retries=0, timeout=0.2) as client:
        with pytest.raises(ex.UnifAPITimeoutError) as caught:
            client.get_video_page(tag, limit=3)
    # the request was sent: the API may have charged it
    assert caught.value.may_have_been_billed and caught.value.possibly_billed_credits == 3
    assert "ReadTimeout" in str(caught.value)
    # The sandbox records the call when its slow answer ends: wait for it, so that it does not land
    # in the next test's ledger (and shift that test's fault plan).
    deadline = time.monotonic() + 10
    while not sandbox.calls() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(sandbox.calls()) == 1
