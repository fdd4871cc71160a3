"""One API call as the sandbox reads it: request id, route, query string and parameter validation.

:class:`Call` starts as the raw request and gathers what validation reads out of it (limit,
``X-Unifapi-Max-Credits``, cursor offset); the ledger entry is written from it.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from urllib.parse import unquote_plus

from airflow_provider_unifapi.sandbox.cursor import CursorError, decode_any_video_cursor, decode_search_cursor
from airflow_provider_unifapi.sandbox.faults import FaultRule
from airflow_provider_unifapi.sandbox.settings import DIGITS

DEFAULT_LIMIT = 20
MAX_LIMIT = 50

# Request ids: a per-process random prefix plus a counter, so they are unique without a syscall.
_RID_PREFIX = int.from_bytes(os.urandom(4), "big")
_RID_COUNTER = itertools.count(1)


def new_request_id() -> str:
    """Return ``unif_`` + 16 hex digits, unique within the process."""
    return f"unif_{_RID_PREFIX:08x}{next(_RID_COUNTER) & 0xFFFFFFFF:08x}"


@dataclass
class Call:
    """One API call being processed (what ends up in the ledger).

    ``limit`` and ``max_credits`` hold the parsed integer, or the raw text when it was refused (the
    ledger shows what the client sent); ``offset`` is the decoded cursor position, ``None`` when the
    endpoint has none or the cursor was refused.
    """

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
    #: the workspace (:attr:`SandboxState.resets`) the call arrived in
    workspace: int = 0
    #: ``(clock, nonce)`` of the timeline walk its cursor continues; ``None`` for a static cursor or none
    walk: tuple[int, int] | None = None


def parse_query(query: str) -> dict[str, str]:
    """Parse a query string (last value wins); fast path for the usual unescaped values.

    :param query: the part of the target after ``?``, without it.
    """
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
    """Map a path to ``(endpoint, hashtag_id)``; endpoint ``"unknown"`` when nothing matches.

    :param method: the HTTP method (only ``GET`` routes exist).
    :param path: the target without its query string.
    """
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


def validate(call: Call, clock: int | None = None) -> list[str]:
    """Read the call's parameters into ``call`` and return what is wrong with them (``[]``: nothing).

    The issues come in a fixed order (id, limit, q, max credits, cursor); the cursor is decoded only
    when everything else is valid, since its scope (hashtag id or query) must be known first.

    :param call: a routed call; its ``limit``, ``max_credits``, ``cursor`` and ``offset`` are set.
    :param clock: the timeline clock in timeline mode, ``None`` when it is off (cursors of the other
        mode are refused).
    """
    issues: list[str] = []
    if call.endpoint in ("videos", "hashtag") and not DIGITS.fullmatch(call.hashtag_id or ""):
        issues.append("id: must be a string of digits (^\\d+$)")
    if call.endpoint in ("videos", "search"):
        _read_limit(call, issues)
    if call.endpoint == "search":
        call.query["q"] = call.query.get("q", "").strip().lstrip("#")
        if not call.query["q"]:
            issues.append("q: required, at least 1 character")
    _read_max_credits(call, issues)
    call.cursor = call.query.get("cursor") or None  # an empty cursor means "from the start"
    if call.endpoint in ("videos", "search"):
        _read_offset(call, issues, clock)
    return issues


def _read_limit(call: Call, issues: list[str]) -> None:
    raw = call.query.get("limit")
    if raw is None:
        call.limit = DEFAULT_LIMIT
    elif DIGITS.fullmatch(raw) and 1 <= int(raw) <= MAX_LIMIT:
        call.limit = int(raw)
    else:
        call.limit = raw
        issues.append(f"limit: must be an integer from 1 to {MAX_LIMIT}")


def _read_max_credits(call: Call, issues: list[str]) -> None:
    cap = call.headers.get("x-unifapi-max-credits")
    if cap is None:
        return
    cap = cap.strip()
    if DIGITS.fullmatch(cap) and int(cap) >= 1:
        call.max_credits = int(cap)
    else:
        call.max_credits = cap
        issues.append("X-Unifapi-Max-Credits: must be an integer >= 1")


def _read_offset(call: Call, issues: list[str], clock: int | None) -> None:
    call.offset = 0
    if call.cursor is None or issues:
        return
    try:
        if call.endpoint == "videos":
            call.offset, call.walk = decode_any_video_cursor(call.hashtag_id or "", call.cursor)
            _check_mode(call.walk, clock)
        else:
            call.offset = decode_search_cursor(call.query["q"], call.cursor)
    except CursorError as exc:
        call.offset = None
        issues.append(f"cursor: {exc}")


def _check_mode(walk: tuple[int, int] | None, clock: int | None) -> None:
    """Refuse a cursor of the other mode, or of a clock the sandbox has not reached (a reset)."""
    if walk is not None and clock is None:
        raise CursorError("cursor was issued in timeline mode, which is off")
    if walk is None and clock is not None:
        raise CursorError("cursor was issued while timeline mode was off; start a walk without a cursor")
    if walk is not None and clock is not None and walk[0] > clock:
        raise CursorError("cursor is from a later clock than the sandbox's (was it reset?)")
