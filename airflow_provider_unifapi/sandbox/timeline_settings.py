"""Settings of timeline mode (:mod:`.timeline`): their names, validation, JSON view and CLI forms.

Kept apart from :mod:`.settings` so that module stays about the static sandbox; :class:`.Settings`
holds the fields, this module checks what admin calls, the CLI and ``SandboxServer(**settings)`` pass.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from airflow_provider_unifapi.sandbox.validation import SettingsError, check_float, check_int

#: 2025-06-01T00:00:00Z: a fixed default start, so every run sees the same days.
DEFAULT_START = 1_748_736_000
#: Largest mean of new videos per hashtag per day (the cost of a feed grows with it).
MAX_DAILY_RATE = 20_000.0
#: Largest visible cap (real feeds show a few thousand videos at most).
MAX_VISIBLE_CAP = 50_000
ENTRY_MODELS = ("low", "high")

#: Every timeline setting ``reset``, ``settings`` and the CLI accept.
TIMELINE_FIELDS = {
    "timeline",
    "timeline_start",
    "daily_new_videos",
    "daily_new_videos_by_hashtag",
    "entry_rank",
    "entry_ramp_hours",
    "visible_cap",
    "decay_days",
    "shuffle_width",
}
_DIGITS = re.compile(r"[0-9]+")


def iso(ts: int) -> str:
    """ISO 8601 UTC text of unix second ``ts`` (``2025-06-01T00:00:00Z``).

    :param ts: unix seconds.
    """
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_instant(name: str, value: Any) -> int:
    """Unix seconds from an integer (unix seconds) or an ISO 8601 text (no zone: UTC).

    :param name: the setting, for the message.
    :param value: the input.
    """
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        value = int(value)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise SettingsError(f"{name}: an ISO 8601 datetime or unix seconds") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        value = int(parsed.timestamp())
    # 2001 .. 2100: ids keep 19 digits and the backlog (up to 10 years) stays after 1991.
    return check_int(name, value, minimum=1_000_000_000, maximum=4_102_444_800)


def _rates(value: Any) -> tuple[tuple[str, float], ...]:
    if not isinstance(value, Mapping):
        raise SettingsError('daily_new_videos_by_hashtag: an object {"<hashtag id>": rate}')
    out = []
    for hid, rate in value.items():
        if not isinstance(hid, str) or not _DIGITS.fullmatch(hid):
            raise SettingsError("daily_new_videos_by_hashtag: hashtag ids are strings of digits")
        out.append((hid, check_float(f"daily_new_videos_by_hashtag[{hid}]", rate, 0.0, MAX_DAILY_RATE)))
    return tuple(sorted(out))


def parse_timeline_setting(name: str, value: Any) -> Any:
    """Validate one timeline setting; returns the value to store on :class:`.Settings`.

    :param name: a name in :data:`TIMELINE_FIELDS`.
    :param value: the admin/CLI input.
    """
    if name == "timeline":
        if not isinstance(value, bool):
            raise SettingsError("timeline: must be a boolean")
        return value
    if name == "timeline_start":
        return parse_instant(name, value)
    if name == "daily_new_videos":
        return check_float(name, value, 0.0, MAX_DAILY_RATE)
    if name == "daily_new_videos_by_hashtag":
        return _rates(value)
    if name == "entry_rank":
        if value not in ENTRY_MODELS:
            raise SettingsError('entry_rank: "low" or "high"')
        return value
    if name == "entry_ramp_hours":
        return check_float(name, value, 0.01, 24.0 * 365)
    if name == "decay_days":
        return check_float(name, value, 0.01, 3650.0)
    if name == "visible_cap":
        return check_int(name, value, minimum=1, maximum=MAX_VISIBLE_CAP)
    return check_int(name, value, minimum=0, maximum=1000)  # shuffle_width


def timeline_public(settings: Any) -> dict[str, object]:
    """The JSON view of the timeline settings (what ``GET /_sandbox/settings`` adds).

    :param settings: a :class:`.Settings`.
    """
    return {
        "timeline": settings.timeline,
        "timeline_start": iso(settings.timeline_start),
        "daily_new_videos": settings.daily_new_videos,
        "daily_new_videos_by_hashtag": dict(settings.daily_new_videos_by_hashtag),
        "entry_rank": settings.entry_rank,
        "entry_ramp_hours": settings.entry_ramp_hours,
        "visible_cap": settings.visible_cap,
        "decay_days": settings.decay_days,
        "shuffle_width": settings.shuffle_width,
    }


def parse_rate_spec(spec: str) -> tuple[str, float]:
    """Parse the CLI form ``ID:RATE`` of a per-hashtag daily rate.

    :param spec: e.g. ``5050:40``.
    """
    hid, sep, rate = spec.partition(":")
    try:
        value = float(rate)
    except ValueError:
        value = -1.0
    if not sep or not _DIGITS.fullmatch(hid) or not 0 <= value <= MAX_DAILY_RATE:
        raise SettingsError(
            f"--daily-new-videos-by-hashtag {spec!r}: expected ID:RATE (0 to {MAX_DAILY_RATE:g})"
        )
    return hid, value
