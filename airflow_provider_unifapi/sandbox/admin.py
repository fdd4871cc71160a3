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
POST     /_sandbox/keys/revoke                  ``{"key": "..."}``
GET      /_sandbox/ledger[?since=SEQ]           ``{"totals", "calls"}``
=======  =====================================  =================================================
"""

from __future__ import annotations

import json
from typing import Any

from airflow_provider_unifapi.sandbox.faults import FaultPlanError
from airflow_provider_unifapi.sandbox.settings import DIGITS, SettingsError, parse_hashtag
from airflow_provider_unifapi.sandbox.state import SandboxState


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
    """Serve one admin request; returns ``(status, JSON body)``."""
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


def _dispatch(state: SandboxState, method: str, path: str, query: dict[str, str], body: bytes) -> bytes:
    parts = path.split("/")[2:]  # "/_sandbox/a/b" -> ["a", "b"]
    head = parts[0] if parts else ""
    if head == "health" and method == "GET":
        return _json({"ok": True})
    if head == "reset" and method == "POST":
        return _json(state.reset(_body(body)))
    if head == "settings":
        if method == "GET":
            return _json(state.settings.public())
        if method == "POST":
            return _json(state.update(_body(body)))
    if head == "balance":
        if method == "GET":
            return _json({"balance": state.balance})
        if method == "POST":
            doc = _body(body)
            set_to, add = _int_field(doc, "set"), _int_field(doc, "add")
            if (set_to is None) == (add is None):
                raise AdminError(400, 'give exactly one of {"set": N} or {"add": N}')
            if set_to is not None and set_to < 0:
                raise AdminError(400, "set: the balance cannot be negative")
            return _json({"balance": state.set_balance(set_to=set_to, add=add)})
    if head == "faults" and len(parts) == 1:
        if method == "GET":
            return _json(state.faults_view())
        if method == "POST":
            doc = _body(body)
            if "plan" not in doc:
                raise AdminError(400, 'body must be {"plan": [rules]}')
            state.install_faults(doc["plan"])
            return _json(state.faults_view())
        if method == "DELETE":
            state.clear_faults()
            return _json(state.faults_view())
    if head == "hashtags":
        if len(parts) == 1 and method == "GET":
            return _json({"hashtags": [h.as_dict() for h in state.catalogue.values()]})
        if len(parts) == 1 and method == "POST":
            hashtag = parse_hashtag(_body(body))
            state.upsert_hashtag(hashtag)
            return _json(hashtag.as_dict())
        if len(parts) == 3 and parts[2] == "truth" and method == "GET":
            return _truth(state, parts[1])
    if head == "keys" and parts[1:] == ["revoke"] and method == "POST":
        key = _body(body).get("key")
        if not isinstance(key, str) or not key:
            raise AdminError(400, 'body must be {"key": "<API key>"}')
        state.revoke(key)
        return _json({"revoked": True})
    if head == "ledger" and method == "GET":
        raw = query.get("since", "0") or "0"
        if not DIGITS.fullmatch(raw):
            raise AdminError(400, "since: must be a non-negative integer")
        with state.lock:
            doc = {"totals": state.ledger.totals(), "calls": state.ledger.since(int(raw))}
        return _json(doc)
    raise AdminError(404, f"no admin route {method} {path}")


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
