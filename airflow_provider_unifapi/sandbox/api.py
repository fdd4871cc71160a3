"""The UnifAPI endpoints: routing, auth, rate limit, validation, billing, bodies and faults.

:meth:`ApiService.handle` turns one parsed request into a :class:`Reply`; the HTTP layer only
writes it. Order of checks for one call (and why):

1. count the call and pick a fault rule (faults model the gateway or network, so they come first);
2. sleep ``latency_ms``; ``error`` and unbilled ``reset`` faults answer now, ``slow`` waits;
3. unknown route -> 404 (no key needed to learn that a path does not exist);
4. ``Authorization: Bearer <key>`` -> 401 (does not consume a rate token: no workspace yet);
5. rate-limit token -> 429 with ``Retry-After``;
6. query/header validation -> 400 ``validation_error`` with ``issues``;
7. configured ``invalid_ids`` -> 400 ``invalid_id``, ``not_found_ids`` -> 404;
8. billing (402 / truncation / max-credits cap) and the ledger entry, atomically;
9. the body, from a page rendered ahead of time when the client pages sequentially.
Billed faults (``malformed``, ``truncated``, ``shape``, billed ``reset``) then break the reply.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

from airflow_provider_unifapi.sandbox.cursor import (
    CursorError,
    decode_search_cursor,
    decode_video_cursor,
    encode_search_cursor,
    encode_video_cursor,
)
from airflow_provider_unifapi.sandbox.data import Feed, hashtag_object
from airflow_provider_unifapi.sandbox.faults import FaultRule
from airflow_provider_unifapi.sandbox.ratelimit import Verdict
from airflow_provider_unifapi.sandbox.settings import DIGITS
from airflow_provider_unifapi.sandbox.state import SandboxState

DEFAULT_LIMIT = 20
MAX_LIMIT = 50
JSON = "application/json"

_PAGE = (
    b'{"request_id":"%s","data":[%s],"pagination":{"has_more":%s,"next_cursor":%s},'
    b'"billing":{"credits_charged":%d,"records_charged":%d,"balance_remaining":%d,'
    b'"truncated_due_to_balance":%s}}'
)
_SINGLE = (
    b'{"request_id":"%s","data":%s,"billing":{"credits_charged":%d,"records_charged":%d,'
    b'"balance_remaining":%d,"truncated_due_to_balance":false}}'
)
_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    409: "Conflict",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}

# Request ids: a per-process random prefix plus a counter, so they are unique without a syscall.
_RID_PREFIX = int.from_bytes(os.urandom(4), "big")
_RID_COUNTER = itertools.count(1)


def new_request_id() -> str:
    """Return ``unif_`` + 16 hex digits, unique within the process."""
    return f"unif_{_RID_PREFIX:08x}{next(_RID_COUNTER) & 0xFFFFFFFF:08x}"


def reason(status: int) -> str:
    """HTTP reason phrase of ``status``."""
    return _REASONS.get(status, "OK" if status == 200 else "Error")


@dataclass
class Reply:
    """What to send back.

    ``action`` tells the HTTP layer to misbehave: ``"reset"`` (close with RST, send nothing),
    ``"truncate"`` (announce the full length, send half, close) or ``"drop"`` (the client already
    left; just close). ``prefetch`` names the page the client will most likely ask for next.
    """

    status: int
    body: bytes
    request_id: str
    content_type: str = JSON
    headers: list[tuple[str, str]] = field(default_factory=list)
    action: str | None = None
    prefetch: tuple[int, Feed, int, int, int | None] | None = None


@dataclass
class Call:
    """One API call being processed (what ends up in the ledger)."""

    request_id: str
    method: str
    path: str
    endpoint: str
    hashtag_id: str | None
    query: dict[str, str]
    headers: dict[str, str]
    header_pairs: list[tuple[str, str]]
    fault: FaultRule | None = None
    cursor: str | None = None
    offset: int | None = None
    limit: int | str | None = None
    max_credits: int | str | None = None
    rate_headers: list[tuple[str, str]] = field(default_factory=list)


def parse_query(query: str) -> dict[str, str]:
    """Parse a query string (last value wins); fast path for the usual unescaped values."""
    out: dict[str, str] = {}
    if not query:
        return out
    for part in query.split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        if "%" in part or "+" in part:
            key, value = unquote_plus(key), unquote_plus(value)
        out[key] = value
    return out


def route(method: str, path: str) -> tuple[str, str | None]:
    """Map a path to ``(endpoint, hashtag_id)``; endpoint ``"unknown"`` when nothing matches."""
    parts = path.split("/")
    # "/tiktok/hashtags/{id}/videos" -> ["", "tiktok", "hashtags", id, "videos"]
    if method == "GET" and len(parts) >= 4 and parts[0] == "" and parts[1] == "tiktok":
        if parts[2] == "hashtags" and parts[3]:
            if len(parts) == 5 and parts[4] == "videos":
                return "videos", unquote_plus(parts[3])
            if len(parts) == 4:
                return "hashtag", unquote_plus(parts[3])
        if len(parts) == 4 and parts[2] == "search" and parts[3] == "hashtags":
            return "search", None
    return "unknown", None


def error_body(request_id: str, etype: str, message: str, **extra: Any) -> bytes:
    """JSON ``ErrorResponse`` envelope."""
    err: dict[str, Any] = {"type": etype, "message": message, "request_id": request_id}
    err.update({k: v for k, v in extra.items() if v is not None})
    return json.dumps({"error": err}, separators=(",", ":")).encode("utf-8")


def html_body(status: int) -> bytes:
    """The kind of page a proxy in front of the API sends."""
    title = f"{status} {reason(status)}"
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1>"
        f"</center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    ).encode("ascii")


class ApiService:
    """Answers API calls against one :class:`SandboxState`.

    :param state: the workspace.
    """

    _PAGE_CACHE_SIZE = 64

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        # Pages rendered ahead of time, keyed by (generation, hashtag id, start, positions).
        self._pages: OrderedDict[tuple[int, str, int, int], list[bytes]] = OrderedDict()
        self._pages_lock = threading.Lock()

    # --- entry point ------------------------------------------------------------------------------
    def handle(
        self,
        method: str,
        target: str,
        header_pairs: list[tuple[str, str]],
        headers: dict[str, str],
        client_alive: Callable[[], bool],
    ) -> Reply:
        """Answer one API call (anything outside ``/_sandbox``).

        :param header_pairs: request headers, names lower-cased, in order (for the ledger).
        :param headers: the same as a dict (last value wins).
        :param client_alive: tells whether the client is still connected (for ``slow`` faults).
        """
        path, _, query = target.partition("?")
        endpoint, hashtag_id = route(method, path)
        call = Call(
            new_request_id(), method, path, endpoint, hashtag_id, parse_query(query), headers, header_pairs
        )
        state = self.state
        with state.lock:
            _, call.fault = state.begin_call(endpoint)
        latency = state.settings.latency_ms
        if latency:
            time.sleep(latency / 1000.0)
        rule = call.fault
        if rule is not None:
            if rule.kind == "error":
                return self._fault_error(call, rule)
            if rule.kind == "reset" and not rule.billed:
                self._log(call, None, None, 0, 0)
                return Reply(0, b"", call.request_id, action="reset")
            if rule.kind == "slow":
                time.sleep(rule.delay_s)
                if not client_alive():
                    self._log(call, None, "client_disconnected", 0, 0)
                    return Reply(0, b"", call.request_id, action="drop")
        reply = self._process(call)
        if rule is not None and rule.kind in ("malformed", "truncated", "shape", "reset"):
            reply = _break(reply, rule)
        return reply

    # --- the normal path ------------------------------------------------------------------------------
    def _process(self, call: Call) -> Reply:
        state = self.state
        if call.endpoint == "unknown":
            call.rate_headers = _peek_rate_headers(state)
            return self._error(call, 404, "not_found", f"no route for {call.method} {call.path}")
        auth = call.headers.get("authorization", "")
        scheme, _, key = auth.partition(" ")
        if scheme.lower() != "bearer" or not key or key != key.strip() or " " in key:
            call.rate_headers = _peek_rate_headers(state)
            return self._error(
                call,
                401,
                "unauthorized",
                "missing or malformed Authorization header; expected 'Bearer <API key>'",
            )
        with state.lock:
            refused = state.check_key(key)
            verdict = None if refused else state.take_token()
        if refused:
            call.rate_headers = _peek_rate_headers(state)
            return self._error(call, 401, "unauthorized", refused)
        if verdict is not None:
            call.rate_headers = verdict.headers()
            if not verdict.allowed:
                return self._error(
                    call,
                    429,
                    "rate_limited",
                    f"workspace rate limit of {verdict.limit} requests/minute exceeded; "
                    f"retry after {verdict.retry_after}s",
                )
        issues = self._validate(call)
        if issues:
            return self._error(call, 400, "validation_error", "request validation failed", issues=issues)
        if call.endpoint == "search":
            return self._search(call)
        status, hashtag = state.lookup(call.hashtag_id or "")
        if hashtag is None:
            if status == "invalid_id":
                return self._error(
                    call, 400, "invalid_id", f"hashtag id {call.hashtag_id} was refused by the source"
                )
            return self._error(call, 404, "not_found", f"hashtag {call.hashtag_id} not found")
        if call.endpoint == "hashtag":
            return self._hashtag(call, hashtag)
        return self._videos(call, hashtag)

    def _validate(self, call: Call) -> list[str]:
        issues: list[str] = []
        q = call.query
        if call.endpoint in ("videos", "hashtag") and not DIGITS.fullmatch(call.hashtag_id or ""):
            issues.append("id: must be a string of digits (^\\d+$)")
        if call.endpoint in ("videos", "search"):
            raw = q.get("limit")
            if raw is None:
                call.limit = DEFAULT_LIMIT
            elif DIGITS.fullmatch(raw) and 1 <= int(raw) <= MAX_LIMIT:
                call.limit = int(raw)
            else:
                call.limit = raw
                issues.append(f"limit: must be an integer from 1 to {MAX_LIMIT}")
        if call.endpoint == "search":
            call.query["q"] = q.get("q", "").strip().lstrip("#")
            if not call.query["q"]:
                issues.append("q: required, at least 1 character")
        cap = call.headers.get("x-unifapi-max-credits")
        if cap is not None:
            cap = cap.strip()
            if DIGITS.fullmatch(cap) and int(cap) >= 1:
                call.max_credits = int(cap)
            else:
                call.max_credits = cap
                issues.append("X-Unifapi-Max-Credits: must be an integer >= 1")
        call.cursor = q.get("cursor") or None  # an empty cursor means "from the start"
        if call.endpoint in ("videos", "search"):
            call.offset = 0
            if call.cursor is not None and not issues:
                try:
                    if call.endpoint == "videos":
                        call.offset = decode_video_cursor(call.hashtag_id or "", call.cursor)
                    else:
                        call.offset = decode_search_cursor(call.query["q"], call.cursor)
                except CursorError as exc:
                    call.offset = None
                    issues.append(f"cursor: {exc}")
        return issues

    def _charge(self, call: Call, want: int) -> tuple[int, int, int, bool] | Reply:
        """Charge a page of ``want`` records: returns (records, credits, balance, truncated), or the
        402 reply. Holds the lock across the check, the charge and the ledger entry."""
        state = self.state
        billed = call.fault is None or call.fault.kind == "slow" or call.fault.billed
        with state.lock:
            balance = state.balance
            if balance < 1:
                billing = {
                    "balance_remaining": balance,
                    "credits_required": max(1, want),
                    "credits_charged": 0,
                    "records_charged": 0,
                    "truncated_due_to_balance": False,
                }
                body = error_body(
                    call.request_id,
                    "insufficient_credits",
                    f"insufficient credits: balance {balance}, this call needs at least {max(1, want)}",
                    billing=billing,
                )
                self._log_locked(call, 402, "insufficient_credits", 0, 0)
                return Reply(402, body, call.request_id, headers=list(call.rate_headers))
            truncated = balance < want
            records = balance if truncated else want
            credits = max(1, records) if billed else 0
            state.balance = balance - credits
            self._log_locked(call, 200, None, records, credits)
            return records, credits, state.balance, truncated

    def _videos(self, call: Call, hashtag: Any) -> Reply:
        generation, feed = self.state.feed(hashtag)
        start = min(call.offset or 0, feed.length)
        limit = int(call.limit or DEFAULT_LIMIT)
        want = feed.page_size(start, limit)
        if isinstance(call.max_credits, int):
            want = min(want, call.max_credits)
        charged = self._charge(call, want)
        if isinstance(charged, Reply):
            return charged
        records, credits, balance, truncated = charged
        page = self._page(generation, feed, start, want)[:records]
        # Truncated: the cursor jumps past the unpaid records (the worst case the spec allows).
        next_start = start + want
        has_more = truncated or next_start < feed.length
        next_cursor = (
            b'"%s"' % encode_video_cursor(feed.hashtag_id, next_start).encode() if has_more else b"null"
        )
        body = _PAGE % (
            call.request_id.encode(),
            b",".join(page),
            b"true" if has_more else b"false",
            next_cursor,
            credits,
            records,
            balance,
            b"true" if truncated else b"false",
        )
        prefetch = None
        if has_more and not truncated:
            prefetch = (
                generation,
                feed,
                next_start,
                limit,
                call.max_credits if isinstance(call.max_credits, int) else None,
            )
        return Reply(200, body, call.request_id, headers=list(call.rate_headers), prefetch=prefetch)

    def _hashtag(self, call: Call, hashtag: Any) -> Reply:
        charged = self._charge(call, 1)
        if isinstance(charged, Reply):
            return charged
        records, credits, balance, _ = charged
        data = json.dumps(
            hashtag_object(self.state.settings.seed, hashtag.id, hashtag.name, hashtag.video_count),
            separators=(",", ":"),
        ).encode()
        body = _SINGLE % (call.request_id.encode(), data, credits, records, balance)
        return Reply(200, body, call.request_id, headers=list(call.rate_headers))

    def _search(self, call: Call) -> Reply:
        query = call.query["q"]
        hits = self.state.search(query)
        start = min(call.offset or 0, len(hits))
        want = min(int(call.limit or DEFAULT_LIMIT), len(hits) - start)
        if isinstance(call.max_credits, int):
            want = min(want, call.max_credits)
        charged = self._charge(call, want)
        if isinstance(charged, Reply):
            return charged
        records, credits, balance, truncated = charged
        seed = self.state.settings.seed
        items = [
            json.dumps(
                hashtag_object(seed, h.id, h.name, h.video_count), ensure_ascii=False, separators=(",", ":")
            ).encode()
            for h in hits[start : start + records]
        ]
        next_start = start + want
        has_more = truncated or next_start < len(hits)
        next_cursor = b'"%s"' % encode_search_cursor(query, next_start).encode() if has_more else b"null"
        body = _PAGE % (
            call.request_id.encode(),
            b",".join(items),
            b"true" if has_more else b"false",
            next_cursor,
            credits,
            records,
            balance,
            b"true" if truncated else b"false",
        )
        return Reply(200, body, call.request_id, headers=list(call.rate_headers))

    # --- pages rendered ahead ---------------------------------------------------------------------
    def _page(self, generation: int, feed: Feed, start: int, count: int) -> list[bytes]:
        key = (generation, feed.hashtag_id, start, count)
        with self._pages_lock:
            page = self._pages.pop(key, None)
        return page if page is not None else feed.render(start, count)

    def prefetch(self, hint: tuple[int, Feed, int, int, int | None]) -> None:
        """Render the page a sequential client asks for next, while it parses this one.

        Called by the HTTP layer after the reply is sent: the rendering then overlaps with the
        client's own work instead of adding to its latency.
        """
        generation, feed, start, limit, cap = hint
        count = feed.page_size(start, limit)
        if cap is not None:
            count = min(count, cap)
        key = (generation, feed.hashtag_id, start, count)
        with self._pages_lock:
            if key in self._pages:
                return
        page = feed.render(start, count)
        with self._pages_lock:
            self._pages[key] = page
            while len(self._pages) > self._PAGE_CACHE_SIZE:
                self._pages.popitem(last=False)

    # --- errors and the ledger ---------------------------------------------------------------------
    def _error(self, call: Call, status: int, etype: str, message: str, **extra: Any) -> Reply:
        self._log(call, status, etype, 0, 0)
        return Reply(
            status,
            error_body(call.request_id, etype, message, **extra),
            call.request_id,
            headers=list(call.rate_headers),
        )

    def _fault_error(self, call: Call, rule: FaultRule) -> Reply:
        state = self.state
        headers = _peek_rate_headers(state)
        if rule.retry_after is not None:
            value = rule.retry_after
            text = str(int(value)) if float(value).is_integer() else str(value)
            headers.append(("Retry-After", text))
        if rule.html:
            self._log(call, rule.status, None, 0, 0)
            return Reply(
                rule.status,
                html_body(rule.status),
                call.request_id,
                content_type="text/html; charset=utf-8",
                headers=headers,
            )
        extra: dict[str, Any] = {}
        if rule.error_type == "insufficient_credits":
            extra["billing"] = {
                "balance_remaining": state.balance,
                "credits_required": 1,
                "credits_charged": 0,
                "records_charged": 0,
                "truncated_due_to_balance": False,
            }
        if rule.error_type == "validation_error":
            extra["issues"] = ["sandbox fault: injected validation error"]
        etype = rule.error_type or "internal_error"
        message = rule.message or f"sandbox fault: injected {rule.status} {etype}"
        self._log(call, rule.status, etype, 0, 0)
        return Reply(
            rule.status,
            error_body(call.request_id, etype, message, **extra),
            call.request_id,
            headers=headers,
        )

    def _log(self, call: Call, status: int | None, etype: str | None, records: int, credits: int) -> None:
        with self.state.lock:
            self._log_locked(call, status, etype, records, credits)

    def _log_locked(
        self, call: Call, status: int | None, etype: str | None, records: int, credits: int
    ) -> None:
        state = self.state
        if call.fault is not None and call.fault.kind == "reset":
            status = None  # the connection is reset: nothing reaches the client
        state.ledger.append(
            ts=time.time(),
            method=call.method,
            endpoint=call.endpoint,
            path=call.path,
            hashtag_id=call.hashtag_id,
            cursor=call.cursor,
            offset=call.offset,
            limit=call.limit,
            max_credits=call.max_credits,
            status=status,
            error_type=etype,
            fault=call.fault.kind if call.fault is not None else None,
            records=records,
            credits_charged=credits,
            balance_after=state.balance,
            request_id=call.request_id,
            headers=call.header_pairs,
        )


def _peek_rate_headers(state: SandboxState) -> list[tuple[str, str]]:
    """Rate-limit headers for a reply that does not consume a token (faults, 401, 404)."""
    with state.lock:
        verdict: Verdict | None = state.peek_tokens()
    return verdict.headers() if verdict is not None else []


def _break(reply: Reply, rule: FaultRule) -> Reply:
    """Apply a billed fault to a reply that was computed (and charged) normally."""
    if rule.kind == "reset":
        return Reply(0, b"", reply.request_id, action="reset")
    if rule.kind == "truncated":
        reply.action = "truncate"
        reply.prefetch = None
        return reply
    if rule.kind == "malformed":
        # A strict prefix of a JSON object never parses; the tail makes sure it is not even close.
        cut = max(16, len(reply.body) // 3)
        reply.body = reply.body[:cut] + b' \x1f<!-- upstream reset: garbage follows --> {"id": '
        reply.content_type = JSON
        reply.prefetch = None
        return reply
    # shape: valid JSON that breaks the schema.
    doc = json.loads(reply.body)
    if "error" in doc:
        doc["error"].pop("type", None)
    elif rule.variant == "missing_id" and isinstance(doc.get("data"), dict):
        doc["data"].pop("id", None)
    elif rule.variant == "missing_id" and doc.get("data"):
        for item in doc["data"]:
            item.pop("id", None)
    else:  # missing_pagination, or an empty page where there is no id to drop
        doc.pop("pagination" if "pagination" in doc else "billing", None)
    reply.body = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    reply.prefetch = None
    return reply
