"""The admin side of timeline mode: the clock's JSON, moving it, and a hashtag's timeline truth.

Truth is free and never in the ledger. It answers, at the current clock, without paging: the visible
ids in rank order; per day since the start, how many videos were created, how many are visible now
and how many were visible at some observed clock (every clock the workspace has been at since its
reset); and for one day, each of its videos with its rank now and the first and last observed clock
it was visible at. That is what a benchmark needs for "recall of the day's new videos, that day and
eventually" without running the model itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_provider_unifapi.sandbox.settings import HashtagDef
from airflow_provider_unifapi.sandbox.state import SandboxState
from airflow_provider_unifapi.sandbox.timeline import DAY, HashtagTimeline
from airflow_provider_unifapi.sandbox.timeline_settings import iso, parse_instant
from airflow_provider_unifapi.sandbox.timeline_state import Visibility
from airflow_provider_unifapi.sandbox.validation import SettingsError

_MOVES = ("advance_days", "advance_hours", "advance_seconds", "to")


def clock_view(state: SandboxState) -> dict[str, Any]:
    """``GET /_sandbox/clock``.

    :param state: the workspace.
    """
    with state.lock:
        settings, clock, observed = state.settings, state.timeline.clock, len(state.timeline.history)
    start = settings.timeline_start
    return {
        "timeline": settings.timeline,
        "clock": clock,
        "clock_iso": iso(clock),
        "start": start,
        "start_iso": iso(start),
        "day": (clock - start) // DAY,
        "hours_since_start": (clock - start) / 3600,
        "observed_clocks": observed,
    }


def target_clock(doc: Mapping[str, Any], clock: int) -> int:
    """Where ``POST /_sandbox/clock`` moves the clock: exactly one of ``advance_days``,
    ``advance_hours``, ``advance_seconds`` (>= 0) or ``to`` (ISO 8601 or unix seconds, not earlier).

    :param doc: the request body.
    :param clock: the current clock.
    :raises SettingsError: on anything else, or a move backwards.
    """
    given = [name for name in _MOVES if name in doc]
    if len(given) != 1 or set(doc) - set(_MOVES):
        raise SettingsError(f"give exactly one of {', '.join(_MOVES)}")
    name = given[0]
    value = doc[name]
    if name == "to":
        target = parse_instant("to", value)
    elif isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 3650 * DAY:
        raise SettingsError(f"{name}: a number >= 0 (the clock never moves backwards)")
    else:
        unit = {"advance_days": DAY, "advance_hours": 3600, "advance_seconds": 1}[name]
        target = clock + round(value * unit)
    if target < clock:
        raise SettingsError(f"to: {iso(target)} is before the clock ({iso(clock)}): it never moves backwards")
    return target


def timeline_truth(
    state: SandboxState, hashtag: HashtagDef, day: int | None, with_ids: bool
) -> dict[str, Any]:
    """``GET /_sandbox/hashtags/{id}/timeline[?day=K][&ids=false]``.

    :param state: the workspace.
    :param hashtag: the hashtag.
    :param day: a day index (negative: the backlog) whose videos to list, or ``None``.
    :param with_ids: include the visible ids in rank order.
    """
    with state.lock:
        settings, clock, history = state.settings, state.timeline.clock, list(state.timeline.history)
    model = state.timeline.model(settings, hashtag)
    ranked = model.ranked(clock)
    seen = state.timeline.visibility(settings, hashtag, history)
    rank_of = {vid: i + 1 for i, (vid, _, _) in enumerate(ranked)}
    today = model.day_index(clock)
    doc: dict[str, Any] = {
        "hashtag_id": hashtag.id,
        "clock": clock,
        "clock_iso": iso(clock),
        "day": today,
        "visible_cap": settings.visible_cap,
        "visible_count": len(ranked),
        "created_total": model.created_up_to(clock),
        "observed_clocks": len(history),
        "backlog": _backlog(model, rank_of, seen),
        "days": [_day_summary(model, k, clock, rank_of, seen) for k in range(0, today + 1)],
    }
    if with_ids:
        doc["ids"] = [str(vid) for vid, _, _ in ranked]
    if day is not None:
        if day > today:
            raise SettingsError(f"day: {day} is after the clock's day ({today})")
        doc["videos"] = _day_videos(model, day, clock, rank_of, seen)
    return doc


def _backlog(model: HashtagTimeline, rank_of: dict[int, int], seen: Visibility) -> dict[str, int]:
    """The videos created before the start: how many, visible now, visible at some observed clock."""
    start = model.params.start
    return {
        "created": model.params.backlog,
        "visible_now": sum(1 for vid in rank_of if vid >> 32 < start),
        "ever_visible": sum(1 for vid in seen.first if vid >> 32 < start),
    }


def _day_summary(
    model: HashtagTimeline, day: int, clock: int, rank_of: dict[int, int], seen: Visibility
) -> dict[str, Any]:
    videos = model.day(day)
    ids = [vid for created, vid in zip(videos.created, videos.ids, strict=True) if created <= clock]
    first = model.day_start(day)
    return {
        "day": day,
        "from": first,
        "from_iso": iso(first),
        "created": len(ids),
        "visible_now": sum(1 for vid in ids if vid in rank_of),
        "ever_visible": sum(1 for vid in ids if vid in seen.first),
    }


def _day_videos(
    model: HashtagTimeline, day: int, clock: int, rank_of: dict[int, int], seen: Visibility
) -> list[dict[str, Any]]:
    videos = model.day(day)
    return [
        {
            "id": str(vid),
            "created_at": created,
            "rank_now": rank_of.get(vid),
            "first_visible": seen.first.get(vid),
            "last_visible": seen.last.get(vid),
        }
        for created, vid in zip(videos.created, videos.ids, strict=True)
        if created <= clock
    ]
