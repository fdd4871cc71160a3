"""Cheap deterministic hashing used to derive sandbox data from (seed, hashtag id, index).

``random.Random`` is far too slow to seed once per record (the sandbox must serve ~75k records/s),
so every per-record choice is taken from the bits of a splitmix64 hash instead.
"""

from __future__ import annotations

import hashlib

M64 = 0xFFFFFFFFFFFFFFFF
GOLDEN = 0x9E3779B97F4A7C15


def mix64(x: int) -> int:
    """Return the splitmix64 finaliser of ``x`` (a well-spread 64-bit integer).

    :param x: any non-negative integer; only its low 64 bits matter after the first add.
    """
    x = (x + GOLDEN) & M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


def seed_for(*parts: object) -> int:
    """Return a stable 64-bit seed for any tuple of parts (hashtag id strings may exceed 2^64).

    blake2b rather than ``hash()``: Python's string hash is salted per process, and the sandbox must
    produce the same data in every process (tests compare server output with admin ground truth).
    """
    text = "\x1f".join(str(p) for p in parts).encode("utf-8")
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")


def unit(x: int) -> float:
    """Map a 64-bit hash to a float in [0, 1)."""
    return (x >> 11) * (1.0 / 9007199254740992.0)
