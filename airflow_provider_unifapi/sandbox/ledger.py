"""The call ledger: one compact entry per API call, plus running totals.

Entries are tuples (not dicts) and identical header sets are shared, so even the default cap of
2,000,000 calls stays a few hundred MB at worst; a 1M-record run at page size 50 (20k calls) is a
few MB. Totals are kept as counters so they stay right after old entries are dropped.
The caller holds the state lock.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Iterable
from typing import Any

FIELDS = (
    "seq",
    "ts",
    "method",
    "endpoint",
    "path",
    "hashtag_id",
    "cursor",
    "offset",
    "limit",
    "max_credits",
    "status",
    "error_type",
    "fault",
    "records",
    "credits_charged",
    "balance_after",
    "request_id",
    "headers",
)
_HEADERS_INDEX = FIELDS.index("headers")
#: Header names never stored: the key (Authorization) and anything that could carry a credential.
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})


class Ledger:
    """Bounded, ordered record of API calls.

    :param cap: how many most recent calls to keep.
    """

    def __init__(self, cap: int) -> None:
        self._entries: deque[tuple[Any, ...]] = deque(maxlen=cap)
        self._header_sets: dict[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]] = {}
        self.seq = 0
        self.calls = 0
        self.credits_charged = 0
        self.records_served = 0
        self.by_status: dict[str, int] = {}

    def resize(self, cap: int) -> None:
        """Keep at most ``cap`` entries from now on (the newest are kept)."""
        self._entries = deque(self._entries, maxlen=cap)

    def intern_headers(self, headers: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
        """Lower-cased request headers without secrets, shared between identical calls."""
        key = tuple((k, v) for k, v in headers if k not in SECRET_HEADERS)
        found = self._header_sets.get(key)
        if found is None:
            if len(self._header_sets) > 10_000:  # unique per call (idempotency keys): stop sharing
                self._header_sets.clear()
            self._header_sets[key] = found = key
        return found

    def append(self, **entry: Any) -> int:
        """Add one call; returns its sequence number (1-based, since the last reset)."""
        self.seq += 1
        entry["seq"] = self.seq
        for name in ("path", "hashtag_id"):  # repeated in most entries: share one string object
            if entry.get(name) is not None:
                entry[name] = sys.intern(entry[name])
        entry["headers"] = self.intern_headers(entry.get("headers", ()))
        self._entries.append(tuple(entry.get(f) for f in FIELDS))
        self.calls += 1
        self.credits_charged += entry.get("credits_charged") or 0
        self.records_served += entry.get("records") or 0
        status = entry.get("status")
        label = "no_response" if status is None else str(status)
        self.by_status[label] = self.by_status.get(label, 0) + 1
        return self.seq

    def totals(self) -> dict[str, Any]:
        """Running totals since the last reset (dropped entries included)."""
        return {
            "calls": self.calls,
            "credits_charged": self.credits_charged,
            "records_served": self.records_served,
            "by_status": dict(self.by_status),
        }

    def since(self, seq: int = 0) -> list[dict[str, Any]]:
        """Entries with a sequence number above ``seq``, oldest first, as JSON-ready dicts."""
        out = []
        # Entries are in seq order: walk back from the end so ``since`` costs what it returns.
        for row in reversed(self._entries):
            if row[0] <= seq:
                break
            item = dict(zip(FIELDS, row, strict=False))
            item["headers"] = dict(row[_HEADERS_INDEX])
            out.append(item)
        out.reverse()
        return out
