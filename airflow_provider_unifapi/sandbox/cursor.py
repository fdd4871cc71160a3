"""Opaque, tamper-evident cursors.

A cursor is urlsafe base64 (no padding) of ``mac(6) | kind(1) | offset ^ mask(8) | scope``, where
``scope`` is the hashtag id (videos) or the lower-cased query (search). The offset is masked with a
hash of the scope so it never shows in plain text, and the MAC catches edits and truncation.
Cursors do not expire and survive a sandbox restart (the key is fixed), like long-lived real
cursors; resuming a run against a restarted sandbox is a legitimate test.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct

_KEY = b"unifapi-sandbox-cursor-v1"
_MAC_LEN = 6
_VIDEOS = b"V"
_SEARCH = b"S"


class CursorError(ValueError):
    """The cursor is malformed, forged, or belongs to another hashtag / query / endpoint."""


def _mask(scope: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(scope, digest_size=8, key=_KEY).digest(), "big")


def _mac(raw: bytes) -> bytes:
    return hashlib.blake2b(raw, digest_size=_MAC_LEN, key=_KEY, person=b"mac").digest()


def _encode(kind: bytes, scope: str, offset: int) -> str:
    scope_b = scope.encode("utf-8")
    raw = kind + struct.pack(">Q", offset ^ _mask(kind + scope_b)) + scope_b
    return base64.urlsafe_b64encode(_mac(raw) + raw).rstrip(b"=").decode("ascii")


def _decode(kind: bytes, scope: str, cursor: str) -> int:
    try:
        blob = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError) as exc:
        raise CursorError("cursor is not valid base64") from exc
    if len(blob) < _MAC_LEN + 9 or base64.urlsafe_b64encode(blob).rstrip(b"=").decode() != cursor:
        raise CursorError("cursor is malformed")
    mac, raw = blob[:_MAC_LEN], blob[_MAC_LEN:]
    if _mac(raw) != mac:
        raise CursorError("cursor is malformed or was modified")
    if raw[:1] != kind:
        raise CursorError("cursor was issued for another endpoint")
    got_scope = raw[9:]
    if got_scope != scope.encode("utf-8"):
        what = "hashtag" if kind == _VIDEOS else "query"
        raise CursorError(f"cursor was issued for another {what}")
    masked = int.from_bytes(raw[1:9], "big")
    return masked ^ _mask(kind + got_scope)


def encode_video_cursor(hashtag_id: str, offset: int) -> str:
    """Cursor for the videos of ``hashtag_id`` starting at feed position ``offset``."""
    return _encode(_VIDEOS, hashtag_id, offset)


def decode_video_cursor(hashtag_id: str, cursor: str) -> int:
    """Feed position of a videos cursor; :class:`CursorError` if it is not one for ``hashtag_id``."""
    return _decode(_VIDEOS, hashtag_id, cursor)


def encode_search_cursor(query: str, offset: int) -> str:
    """Cursor for the hashtag search ``query`` (compared case-insensitively) at ``offset``."""
    return _encode(_SEARCH, query.lower(), offset)


def decode_search_cursor(query: str, cursor: str) -> int:
    """Offset of a search cursor; :class:`CursorError` if it was issued for another query."""
    return _decode(_SEARCH, query.lower(), cursor)
