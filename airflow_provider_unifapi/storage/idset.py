"""A compact exact set of video ids: digit strings below 2**64 as sorted ``array('Q')`` runs (~8 bytes
an id, against ~90 in a ``set`` of strings), any other id (schemas drift) in an ordinary set.
"""

from __future__ import annotations

import heapq
from array import array
from bisect import bisect_left
from collections.abc import Iterable

_BUFFER_LIMIT = 32_768
_U64 = 2**64


class IdSet:
    """Exact membership over ids added so far; ``add`` returns False for an id already present."""

    def __init__(self, ids: Iterable[str] = ()) -> None:
        self._buffer: set[int] = set()
        self._runs: list[array[int]] = []
        self._other: set[str] = set()
        self._size = 0
        for value in ids:
            self.add(value)

    def __len__(self) -> int:
        return self._size

    @staticmethod
    def _key(value: str) -> int | None:
        if len(value) <= 20 and value.isdigit() and value.isascii() and (value[0] != "0" or value == "0"):
            number = int(value)
            if number < _U64:
                return number
        return None

    def _has_key(self, key: int) -> bool:
        if key in self._buffer:
            return True
        for run in self._runs:
            at = bisect_left(run, key)
            if at < len(run) and run[at] == key:
                return True
        return False

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, str):
            return False
        key = self._key(value)
        return value in self._other if key is None else self._has_key(key)

    def add(self, value: str) -> bool:
        key = self._key(value)
        if key is None:
            if value in self._other:
                return False
            self._other.add(value)
        else:
            if self._has_key(key):
                return False
            self._buffer.add(key)
            if len(self._buffer) >= _BUFFER_LIMIT:
                self._flush()
        self._size += 1
        return True

    def _flush(self) -> None:
        self._runs.append(array("Q", sorted(self._buffer)))
        self._buffer.clear()
        # Merge while the newest run is at least half the size of the one before: keeps the number
        # of runs logarithmic, so lookups stay a handful of C-level bisects.
        while len(self._runs) >= 2 and len(self._runs[-1]) * 2 >= len(self._runs[-2]):
            newer = self._runs.pop()
            older = self._runs.pop()
            self._runs.append(array("Q", heapq.merge(older, newer)))
