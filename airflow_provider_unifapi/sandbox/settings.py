"""Sandbox settings: defaults, the default hashtag catalogue, and validation of admin/CLI input.

API keys are turned into SHA-256 digests as soon as they are read: the sandbox never keeps (and so
can never log or echo) a key in clear text.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from airflow_provider_unifapi.sandbox.timeline_settings import (
    DEFAULT_START,
    TIMELINE_FIELDS,
    parse_timeline_setting,
    timeline_public,
)
from airflow_provider_unifapi.sandbox.validation import SettingsError
from airflow_provider_unifapi.sandbox.validation import check_float as _float
from airflow_provider_unifapi.sandbox.validation import check_int as _int

# ASCII digits, matched with fullmatch: r"^\d+$" would also take other scripts' digits and a
# trailing newline.
DIGITS = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class HashtagDef:
    """A catalogue hashtag: its id, name and number of unique videos."""

    id: str
    name: str
    video_count: int

    def as_dict(self) -> dict[str, object]:
        """JSON form used by the admin API."""
        return {"id": self.id, "name": self.name, "video_count": self.video_count}


#: Known hashtags when none are configured. ``cats`` / ``catsoftiktok`` make search
#: ambiguity testable (exact name first), ``emptytag`` has no videos, ``bigdata`` has 1M.
DEFAULT_HASHTAGS: tuple[HashtagDef, ...] = (
    HashtagDef("5050", "cats", 2_500),
    HashtagDef("6021", "catsoftiktok", 800),
    HashtagDef("4242", "dogs", 1_200),
    HashtagDef("77001", "travel", 12_345),
    HashtagDef("229207", "fyp", 100_000),
    HashtagDef("1000000", "bigdata", 1_000_000),
    HashtagDef("404040", "emptytag", 0),
)


def key_digest(key: str) -> str:
    """SHA-256 hex digest of an API key (what the sandbox stores instead of the key)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Settings:
    """Everything ``POST /_sandbox/reset`` (or the CLI, or ``SandboxServer(**settings)``) can set."""

    balance: int = 1_000_000
    rate_limit_per_minute: int = 0
    rate_limit_burst: int | None = None
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    api_key_digests: frozenset[str] = frozenset()
    seed: int = 0
    duplicate_rate: float = 0.02
    short_page_rate: float = 0.05
    extra_fields: bool = True
    hashtags: tuple[HashtagDef, ...] = DEFAULT_HASHTAGS
    not_found_ids: frozenset[str] = frozenset()
    invalid_ids: frozenset[str] = frozenset()
    ledger_cap: int = 2_000_000
    # Timeline mode (see timeline.py and timeline_settings.py); off: every feed is static.
    timeline: bool = False
    timeline_start: int = DEFAULT_START
    daily_new_videos: float = 200.0
    daily_new_videos_by_hashtag: tuple[tuple[str, float], ...] = ()
    entry_rank: str = "low"
    entry_ramp_hours: float = 24.0
    visible_cap: int = 3_000
    decay_days: float = 3.0
    shuffle_width: int = 10

    @property
    def burst(self) -> int:
        """Token bucket capacity: ``rate_limit_burst`` or ``max(1, per_minute // 6)``."""
        if self.rate_limit_burst is not None:
            return self.rate_limit_burst
        return max(1, self.rate_limit_per_minute // 6)

    def draw_latency_s(self, rng: random.Random) -> float:
        """Seconds to sleep before answering one call: ``latency_ms`` +- up to ``latency_jitter_ms``.

        Uniform over ``[latency - jitter, latency + jitter]``, clamped at 0 (a jitter larger than the
        latency piles some calls up at 0 ms rather than failing the setting). The caller serialises
        access to ``rng`` (``random.Random`` is not safe to share between threads unlocked).

        :param rng: the workspace's latency RNG (seeded by ``seed`` at reset, so runs repeat).
        """
        if not self.latency_jitter_ms:
            return self.latency_ms / 1000.0
        jitter = rng.uniform(-self.latency_jitter_ms, self.latency_jitter_ms)
        return max(0.0, self.latency_ms + jitter) / 1000.0

    def public(self) -> dict[str, object]:
        """JSON view of the settings; keys are reported by count only, never echoed."""
        return {
            "balance": self.balance,
            "rate_limit_per_minute": self.rate_limit_per_minute,
            "rate_limit_burst": self.burst,
            "latency_ms": self.latency_ms,
            "latency_jitter_ms": self.latency_jitter_ms,
            "api_keys_configured": len(self.api_key_digests),
            "seed": self.seed,
            "duplicate_rate": self.duplicate_rate,
            "short_page_rate": self.short_page_rate,
            "extra_fields": self.extra_fields,
            "hashtags": [h.as_dict() for h in self.hashtags],
            "not_found_ids": sorted(self.not_found_ids),
            "invalid_ids": sorted(self.invalid_ids),
            "ledger_cap": self.ledger_cap,
            **timeline_public(self),
        }

    def daily_rate(self, hashtag_id: str) -> float:
        """Mean new videos per day of ``hashtag_id`` in timeline mode (its override, or the default).

        :param hashtag_id: the hashtag id.
        """
        return dict(self.daily_new_videos_by_hashtag).get(hashtag_id, self.daily_new_videos)

    def updated(self, changes: Mapping[str, Any]) -> Settings:
        """Return a copy with ``changes`` (admin/CLI JSON) validated and applied.

        :raises SettingsError: on an unknown key or a bad value.
        """
        unknown = sorted(set(changes) - FIELDS)
        if unknown:
            raise SettingsError(f"unknown setting(s): {', '.join(unknown)}")
        new: dict[str, Any] = {}
        for name, value in changes.items():
            if name == "api_keys":
                new["api_key_digests"] = frozenset(key_digest(k) for k in _str_list(name, value))
            elif name == "hashtags":
                new["hashtags"] = tuple(parse_hashtag(h) for h in _list(name, value))
            elif name in ("not_found_ids", "invalid_ids"):
                new[name] = frozenset(_id(name, v) for v in _list(name, value))
            elif name == "rate_limit_burst":
                new[name] = None if value is None else _int(name, value, minimum=1)
            elif name in ("duplicate_rate", "short_page_rate"):
                new[name] = _float(name, value, 0.0, 0.5 if name == "duplicate_rate" else 1.0)
            elif name in ("latency_ms", "latency_jitter_ms"):
                new[name] = _float(name, value, 0.0, 600_000.0)
            elif name == "extra_fields":
                if not isinstance(value, bool):
                    raise SettingsError("extra_fields: must be a boolean")
                new[name] = value
            elif name in TIMELINE_FIELDS:
                new[name] = parse_timeline_setting(name, value)
            elif name == "ledger_cap":
                new[name] = _int(name, value, minimum=1)
            elif name == "seed":
                new[name] = _int(name, value)
            else:  # balance, rate_limit_per_minute
                new[name] = _int(name, value, minimum=0)
        return replace(self, **new)


#: Every setting ``reset``, ``settings`` and the CLI accept.
FIELDS = {
    "balance",
    "rate_limit_per_minute",
    "rate_limit_burst",
    "latency_ms",
    "latency_jitter_ms",
    "api_keys",
    "seed",
    "duplicate_rate",
    "short_page_rate",
    "extra_fields",
    "hashtags",
    "not_found_ids",
    "invalid_ids",
    "ledger_cap",
    *TIMELINE_FIELDS,
}


def parse_hashtag(value: Any) -> HashtagDef:
    """Validate ``{"id", "name", "video_count"}`` (video_count defaults to 1,000)."""
    if isinstance(value, HashtagDef):
        return value
    if not isinstance(value, Mapping):
        raise SettingsError("hashtag: must be an object with id, name, video_count")
    unknown = sorted(set(value) - {"id", "name", "video_count"})
    if unknown:
        raise SettingsError(f"hashtag: unknown field(s): {', '.join(unknown)}")
    name = value.get("name")
    if not isinstance(name, str) or not name or name.startswith("#"):
        raise SettingsError("hashtag.name: must be a non-empty string without '#'")
    return HashtagDef(
        _id("hashtag.id", value.get("id")),
        name,
        _int("hashtag.video_count", value.get("video_count", 1000), minimum=0),
    )


def parse_hashtag_spec(spec: str) -> HashtagDef:
    """Parse the CLI form ``ID:NAME:COUNT``."""
    parts = spec.split(":")
    if len(parts) != 3:
        raise SettingsError(f"--hashtag {spec!r}: expected ID:NAME:COUNT")
    hid, name, count = parts
    try:
        video_count = int(count.replace("_", ""))
    except ValueError as exc:
        raise SettingsError(f"--hashtag {spec!r}: COUNT must be an integer") from exc
    return parse_hashtag({"id": hid, "name": name, "video_count": video_count})


def _id(name: str, value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        value = str(value)
    if not isinstance(value, str) or not DIGITS.fullmatch(value):
        raise SettingsError(f"{name}: hashtag ids are strings of digits")
    return value


def _list(name: str, value: Any) -> list[Any]:
    if not isinstance(value, (list, tuple)):
        raise SettingsError(f"{name}: must be a list")
    return list(value)


def _str_list(name: str, value: Any) -> list[str]:
    items = _list(name, value)
    if not all(isinstance(v, str) and v and v == v.strip() and " " not in v for v in items):
        raise SettingsError(f"{name}: must be a list of non-empty strings without spaces")
    return items
