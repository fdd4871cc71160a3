"""Opaque, tamper-evident cursors.

A cursor is urlsafe base64 (no padding) of ``mac(6) | kind(1) | offset ^ mask(8) | scope``, where
``scope`` is the hashtag id (videos) or the lower-cased query (search). The offset is masked with a
hash of the scope so it never shows in plain text, and the MAC catches edits and truncation.
Cursors do not expire and survive a sandbox restart (the key is fixed), like long-lived real
cursors; resuming a run against a restarted sandbox is a legitimate test.

In timeline mode a videos cursor is a *walk* cursor, ``mac(6) | "T" | (clock, nonce, offset) ^ mask(20)
| hashtag id``: it names the feed's clock and the walk's order as well as the position.
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
_WALK = b"T"
_WALK_FIELDS = struct.Struct(">QIQ")  # clock, nonce, offset


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


def _unpack(cursor: str) -> bytes:
    """The MAC-checked raw bytes of a cursor (``kind | masked fields | scope``)."""
    try:
        blob = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError) as exc:
        raise CursorError("cursor is not valid base64") from exc
    if len(blob) < _MAC_LEN + 9 or base64.urlsafe_b64encode(blob).rstrip(b"=").decode() != cursor:
        raise CursorError("cursor is malformed")
    mac, raw = blob[:_MAC_LEN], blob[_MAC_LEN:]
    if _mac(raw) != mac:
        raise CursorError("cursor is malformed or was modified")
    return raw


def _check_scope(kind: bytes, scope: str, got_scope: bytes) -> None:
    if got_scope != scope.encode("utf-8"):
        what = "hashtag" if kind in (_VIDEOS, _WALK) else "query"
        raise CursorError(f"cursor was issued for another {what}")


def _decode(kind: bytes, scope: str, cursor: str) -> int:
    raw = _unpack(cursor)
    if raw[:1] != kind:
        raise CursorError("cursor was issued for another endpoint")
    got_scope = raw[9:]
    _check_scope(kind, scope, got_scope)
    masked = int.from_bytes(raw[1:9], "big")
    return masked ^ _mask(kind + got_scope)


def _walk_mask(scope: bytes) -> bytes:
    return hashlib.blake2b(_WALK + scope, digest_size=_WALK_FIELDS.size, key=_KEY).digest()


def encode_walk_cursor(hashtag_id: str, clock: int, nonce: int, offset: int) -> str:
    """Cursor of a timeline walk: the feed of ``hashtag_id`` at ``clock`` in the order of walk
    ``nonce``, resuming at position ``offset``.

    :param hashtag_id: the hashtag id.
    :param clock: the walk's clock (unix seconds).
    :param nonce: the walk's nonce.
    :param offset: the next feed position.
    """
    scope = hashtag_id.encode("utf-8")
    fields = _WALK_FIELDS.pack(clock, nonce, offset)
    raw = _WALK + bytes(a ^ b for a, b in zip(fields, _walk_mask(scope), strict=True)) + scope
    return base64.urlsafe_b64encode(_mac(raw) + raw).rstrip(b"=").decode("ascii")


def decode_any_video_cursor(hashtag_id: str, cursor: str) -> tuple[int, tuple[int, int] | None]:
    """``(offset, None)`` for a static videos cursor, ``(offset, (clock, nonce))`` for a walk cursor.

    :param hashtag_id: the hashtag the call asks for.
    :param cursor: the cursor it sent.
    :raises CursorError: when it is neither, or belongs to another hashtag.
    """
    raw = _unpack(cursor)
    if raw[:1] == _VIDEOS:
        return _decode(_VIDEOS, hashtag_id, cursor), None
    if raw[:1] != _WALK or len(raw) < 1 + _WALK_FIELDS.size:
        raise CursorError("cursor was issued for another endpoint")
    end = 1 + _WALK_FIELDS.size
    _check_scope(_WALK, hashtag_id, raw[end:])
    fields = bytes(a ^ b for a, b in zip(raw[1:end], _walk_mask(raw[end:]), strict=True))
    clock, nonce, offset = _WALK_FIELDS.unpack(fields)
    return offset, (clock, nonce)


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
