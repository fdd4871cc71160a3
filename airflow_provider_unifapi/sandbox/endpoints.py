"""The bodies of the three endpoints, for a call that passed auth, rate limit and validation.

Pages are filled into byte templates from pre-rendered record fragments: no ``json.dumps`` of a
whole page, which is what keeps the sandbox faster than the clients it measures.
"""

from __future__ import annotations

import json

from airflow_provider_unifapi.sandbox.billing import Charge, charge
from airflow_provider_unifapi.sandbox.cursor import encode_search_cursor
from airflow_provider_unifapi.sandbox.data import hashtag_object
from airflow_provider_unifapi.sandbox.prefetch import PagesAhead
from airflow_provider_unifapi.sandbox.replies import PrefetchHint, Reply
from airflow_provider_unifapi.sandbox.request import DEFAULT_LIMIT, Call
from airflow_provider_unifapi.sandbox.settings import HashtagDef
from airflow_provider_unifapi.sandbox.state import SandboxState

_PAGE = (
    b'{"request_id":"%s","data":[%s],"pagination":{"has_more":%s,"next_cursor":%s},'
    b'"billing":{"credits_charged":%d,"records_charged":%d,"balance_remaining":%d,'
    b'"truncated_due_to_balance":%s}}'
)
_SINGLE = (
    b'{"request_id":"%s","data":%s,"billing":{"credits_charged":%d,"records_charged":%d,'
    b'"balance_remaining":%d,"truncated_due_to_balance":false}}'
)


def _page_body(call: Call, items: list[bytes], next_cursor: str | None, paid: Charge) -> bytes:
    """A page envelope around ``items``; ``next_cursor`` is ``None`` on the last page."""
    return _PAGE % (
        call.request_id.encode(),
        b",".join(items),
        b"false" if next_cursor is None else b"true",
        b"null" if next_cursor is None else b'"%s"' % next_cursor.encode(),
        paid.credits,
        paid.records,
        paid.balance,
        b"true" if paid.truncated else b"false",
    )


def _capped(call: Call, want: int) -> int:
    """``want``, or fewer when ``X-Unifapi-Max-Credits`` caps the page."""
    return min(want, call.max_credits) if isinstance(call.max_credits, int) else want


def videos(state: SandboxState, pages: PagesAhead, call: Call, hashtag: HashtagDef) -> Reply:
    """``GET /tiktok/hashtags/{id}/videos``: one page of the hashtag's feed (in timeline mode, of
    the walk the cursor continues, or of a new walk at the current clock).

    :param state: the workspace.
    :param pages: pages rendered ahead (the reply names the next one to render).
    :param call: the validated call.
    :param hashtag: the hashtag the call asks for.
    """
    generation, feed = state.page_source(hashtag, call)
    start = min(call.offset or 0, feed.length)
    limit = int(call.limit or DEFAULT_LIMIT)
    want = _capped(call, feed.page_size(start, limit))
    paid = charge(state, call, want)
    if isinstance(paid, Reply):
        return paid
    items = pages.take(generation, feed, start, want)[: paid.records]
    # Truncated: the cursor jumps past the unpaid records (the worst case the spec allows).
    next_start = start + want
    has_more = paid.truncated or next_start < feed.length
    next_cursor = feed.cursor(next_start) if has_more else None
    prefetch: PrefetchHint | None = None
    if has_more and not paid.truncated:
        cap = call.max_credits if isinstance(call.max_credits, int) else None
        prefetch = (generation, feed, next_start, limit, cap)
    body = _page_body(call, items, next_cursor, paid)
    return Reply(200, body, call.request_id, headers=list(call.rate_headers), prefetch=prefetch)


def hashtag(state: SandboxState, call: Call, found: HashtagDef) -> Reply:
    """``GET /tiktok/hashtags/{id}``: the hashtag itself, 1 credit.

    :param state: the workspace.
    :param call: the validated call.
    :param found: the hashtag the call asks for.
    """
    paid = charge(state, call, 1)
    if isinstance(paid, Reply):
        return paid
    data = json.dumps(
        hashtag_object(state.settings.seed, found.id, found.name, state.video_count(found)),
        separators=(",", ":"),
    ).encode()
    body = _SINGLE % (call.request_id.encode(), data, paid.credits, paid.records, paid.balance)
    return Reply(200, body, call.request_id, headers=list(call.rate_headers))


def search(state: SandboxState, call: Call) -> Reply:
    """``GET /tiktok/search/hashtags?q=``: one page of the catalogue hashtags matching ``q``.

    :param state: the workspace.
    :param call: the validated call (``q`` already stripped of blanks and a leading ``#``).
    """
    query = call.query["q"]
    hits = state.search(query)
    start = min(call.offset or 0, len(hits))
    want = _capped(call, min(int(call.limit or DEFAULT_LIMIT), len(hits) - start))
    paid = charge(state, call, want)
    if isinstance(paid, Reply):
        return paid
    seed = state.settings.seed
    items = [
        json.dumps(
            hashtag_object(seed, h.id, h.name, state.video_count(h)),
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
        for h in hits[start : start + paid.records]
    ]
    next_start = start + want
    has_more = paid.truncated or next_start < len(hits)
    next_cursor = encode_search_cursor(query, next_start) if has_more else None
    body = _page_body(call, items, next_cursor, paid)
    return Reply(200, body, call.request_id, headers=list(call.rate_headers))
