"""The admin API under ``/_sandbox`` (no auth, JSON in and out, never counted as API calls).

=======  =====================================  =================================================
Method   Path                                   Effect
=======  =====================================  =================================================
GET      /_sandbox/health                       ``{"ok": true}``
POST     /_sandbox/reset                        back to the start-up settings plus the body's;
                                                clears balance, ledger, faults, counters, revoked
GET      /_sandbox/settings                     current settings (keys only counted)
POST     /_sandbox/settings                     change some settings, keep ledger/faults/counters
GET      /_sandbox/balance                      ``{"balance": N}``
POST     /_sandbox/balance                      ``{"set": N}`` or ``{"add": N}``
GET      /_sandbox/faults                       plan, fire counts, calls since installed
POST     /_sandbox/faults                       ``{"plan": [...]}`` replaces the plan, counter 0
DELETE   /_sandbox/faults                       clears the plan, counter 0
GET      /_sandbox/hashtags                     the catalogue
POST     /_sandbox/hashtags                     ``{"id", "name", "video_count"}`` add/replace
GET      /_sandbox/hashtags/{id}/truth          ``{"hashtag_id", "count", "ids"}``
GET      /_sandbox/hashtags/{id}/timeline       timeline truth (``?day=K``, ``&ids=false``)
GET      /_sandbox/clock                        the timeline clock
POST     /_sandbox/clock                        ``{"advance_days"|"advance_hours"|..: N}`` or ``{"to"}``
POST     /_sandbox/keys/revoke                  ``{"key": "..."}``
GET      /_sandbox/ledger[?since=SEQ]           ``{"totals", "calls"}``
=======  =====================================  =================================================
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from airflow_provider_unifapi.sandbox.faults import FaultPlanError
from airflow_provider_unifapi.sandbox.settings import DIGITS, SettingsError, parse_hashtag
from airflow_provider_unifapi.sandbox.state import SandboxState
from airflow_provider_unifapi.sandbox.timeline_truth import clock_view, target_clock, timeline_truth


class AdminError(Exception):
    """An admin request that cannot be served; carries the HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _json(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def handle_admin(
    state: SandboxState, method: str, path: str, query: dict[str, str], body: bytes
) -> tuple[int, bytes]:
    """Serve one admin request; returns ``(status, JSON body)``.

    :param state: the workspace.
    :param method: the HTTP method (``HEAD`` already turned into ``GET``).
    :param path: the path, starting with ``/_sandbox``.
    :param query: the parsed query string.
    :param body: the request body (JSON, or empty).
    """
    try:
        return 200, _dispatch(state, method, path.rstrip("/"), query, body)
    except AdminError as exc:
        return exc.status, _json({"error": {"type": "admin_error", "message": str(exc)}})
    except (SettingsError, FaultPlanError) as exc:
        return 400, _json({"error": {"type": "validation_error", "message": str(exc)}})


def _body(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise AdminError(400, f"body is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise AdminError(400, "body must be a JSON object")
    return doc


def _int_field(doc: dict[str, Any], name: str) -> int | None:
    value = doc.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise AdminError(400, f"{name}: must be an integer")
    return value


@dataclass(frozen=True)
class _AdminCall:
    """One admin request: ``parts`` is the path after ``/_sandbox/``, split on ``/``."""

    state: SandboxState
    method: str
    parts: list[str]
    query: dict[str, str]
    body: bytes


def _dispatch(state: SandboxState, method: str, path: str, query: dict[str, str], body: bytes) -> bytes:
    parts = path.split("/")[2:]  # "/_sandbox/a/b" -> ["a", "b"]
    serve = _ROUTES.get(parts[0] if parts else "")
    answer = serve(_AdminCall(state, method, parts, query, body)) if serve is not None else None
    if answer is None:
        raise AdminError(404, f"no admin route {method} {path}")
    return answer


# Each route answers the JSON body, or None when it has no such method or sub-path (404).
def _health(call: _AdminCall) -> bytes | None:
    return _json({"ok": True}) if call.method == "GET" else None


def _reset(call: _AdminCall) -> bytes | None:
    return _json(call.state.reset(_body(call.body))) if call.method == "POST" else None


def _settings(call: _AdminCall) -> bytes | None:
    if call.method == "GET":
        return _json(call.state.settings.public())
    if call.method == "POST":
        return _json(call.state.update(_body(call.body)))
    return None


def _balance(call: _AdminCall) -> bytes | None:
    if call.method == "GET":
        return _json({"balance": call.state.balance})
    if call.method != "POST":
        return None
    doc = _body(call.body)
    set_to, add = _int_field(doc, "set"), _int_field(doc, "add")
    if (set_to is None) == (add is None):
        raise AdminError(400, 'give exactly one of {"set": N} or {"add": N}')
    if set_to is not None and set_to < 0:
        raise AdminError(400, "set: the balance cannot be negative")
    return _json({"balance": call.state.set_balance(set_to=set_to, add=add)})


def _faults(call: _AdminCall) -> bytes | None:
    state = call.state
    if len(call.parts) != 1 or call.method not in ("GET", "POST", "DELETE"):
        return None
    if call.method == "POST":
        doc = _body(call.body)
        if "plan" not in doc:
            raise AdminError(400, 'body must be {"plan": [rules]}')
        state.install_faults(doc["plan"])
    elif call.method == "DELETE":
        state.clear_faults()
    return _json(state.faults_view())


def _hashtags(call: _AdminCall) -> bytes | None:
    parts, method = call.parts, call.method
    if len(parts) == 1 and method == "GET":
        return _json({"hashtags": [h.as_dict() for h in call.state.catalogue.values()]})
    if len(parts) == 1 and method == "POST":
        hashtag = parse_hashtag(_body(call.body))
        call.state.upsert_hashtag(hashtag)
        return _json(hashtag.as_dict())
    if len(parts) == 3 and parts[2] == "truth" and method == "GET":
        return _truth(call.state, parts[1])
    if len(parts) == 3 and parts[2] == "timeline" and method == "GET":
        return _timeline(call)
    return None


def _clock(call: _AdminCall) -> bytes | None:
    state = call.state
    if len(call.parts) != 1 or call.method not in ("GET", "POST"):
        return None
    if call.method == "POST":
        if not state.settings.timeline:
            raise AdminError(400, 'timeline mode is off: POST /_sandbox/settings {"timeline": true} first')
        try:
            state.move_clock(target_clock(_body(call.body), state.timeline.clock))
        except ValueError as exc:  # another call moved it meanwhile
            raise AdminError(400, str(exc)) from None
    return _json(clock_view(state))


def _timeline(call: _AdminCall) -> bytes:
    state, hashtag_id = call.state, call.parts[1]
    if not state.settings.timeline:
        raise AdminError(400, 'timeline mode is off: POST /_sandbox/settings {"timeline": true} first')
    if not DIGITS.fullmatch(hashtag_id):
        raise AdminError(400, "hashtag id must be digits")
    status, hashtag = state.lookup(hashtag_id)
    if hashtag is None:
        raise AdminError(404 if status == "not_found" else 400, f"hashtag {hashtag_id}: {status}")
    raw_day = call.query.get("day")
    if raw_day is not None and not DIGITS.fullmatch(raw_day.removeprefix("-")):
        raise AdminError(400, "day: an integer (0 = the first day from the start, negative: the backlog)")
    with_ids = call.query.get("ids", "true") != "false"
    day = None if raw_day is None else int(raw_day)
    return _json(timeline_truth(state, hashtag, day, with_ids))


def _keys(call: _AdminCall) -> bytes | None:
    if call.parts[1:] != ["revoke"] or call.method != "POST":
        return None
    key = _body(call.body).get("key")
    if not isinstance(key, str) or not key:
        raise AdminError(400, 'body must be {"key": "<API key>"}')
    call.state.revoke(key)
    return _json({"revoked": True})


def _ledger(call: _AdminCall) -> bytes | None:
    if call.method != "GET":
        return None
    raw = call.query.get("since", "0") or "0"
    if not DIGITS.fullmatch(raw):
        raise AdminError(400, "since: must be a non-negative integer")
    state = call.state
    with state.lock:
        doc = {"totals": state.ledger.totals(), "calls": state.ledger.since(int(raw))}
    return _json(doc)


_ROUTES: dict[str, Callable[[_AdminCall], bytes | None]] = {
    "health": _health,
    "reset": _reset,
    "settings": _settings,
    "balance": _balance,
    "faults": _faults,
    "hashtags": _hashtags,
    "keys": _keys,
    "ledger": _ledger,
    "clock": _clock,
}


def _truth(state: SandboxState, hashtag_id: str) -> bytes:
    if not DIGITS.fullmatch(hashtag_id):
        raise AdminError(400, "hashtag id must be digits")
    try:
        ids = state.truth(hashtag_id)
    except LookupError as exc:
        raise AdminError(404 if str(exc) == "not_found" else 400, f"hashtag {hashtag_id}: {exc}") from None
    # Built by hand: 1M ids through json.dumps would take several times longer.
    return b'{"hashtag_id":"%s","count":%d,"ids":[%s]}' % (
        hashtag_id.encode(),
        len(ids),
        ",".join(f'"{i}"' for i in ids).encode(),
    )
