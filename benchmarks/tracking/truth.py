"""The truth of a run, from the sandbox's ``/timeline`` (free, never in the ledger).

Run ``r`` (r = 0 .. D-1) happens with the clock at ``c_r = start + r days``; the clock moves a day
between runs and not after the last, so the observed clocks are exactly the run clocks. Run 0 is
the first pull (the backlog); for r >= 1 the **new videos of run r** are those created in
``[c_{r-1}, c_r)`` (timeline day ``r-1``), split by the truth's ``first_visible``:

- *visible at run r*: in the feed at ``c_r`` (``first_visible == c_r``): what a full pull that day
  gets; the denominator of "recall that day";
- *collectable*: visible at some run clock (``first_visible`` set): the denominator of "recall
  eventually" (late entrants included: an ``entry_rank=low`` video can enter the feed days later);
- *never visible* at any run clock: no one can collect them; excluded, and counted apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

DAY_S = 86_400


@dataclass
class RunTruth:
    """The new videos of one run, per hashtag."""

    visible: dict[str, set[str]] = field(default_factory=dict)  # visible at the run's clock
    collectable: dict[str, set[str]] = field(default_factory=dict)  # visible at some run clock
    never_visible: int = 0
    created: int = 0

    def count(self, which: str) -> int:
        sets: dict[str, set[str]] = getattr(self, which)
        return sum(len(s) for s in sets.values())


@dataclass
class Truth:
    """Per run (index r), its new videos; ``runs[0]`` is empty (the backlog is not new)."""

    start: int
    runs: list[RunTruth]
    backlog_ever_visible: int = 0  # backlog videos visible at some run clock (run 0's job)


def _day_doc(admin: httpx.Client, hid: str, day: int | None) -> dict[str, Any]:
    params: dict[str, Any] = {"ids": "false"}
    if day is not None:
        params["day"] = day
    response = admin.get(f"/_sandbox/hashtags/{hid}/timeline", params=params)
    return dict(response.raise_for_status().json())


def read_truth(admin: httpx.Client, hashtags: list[str], days: int) -> Truth:
    """Read after the last run (the clock at ``c_{D-1}``): every run's new videos."""
    clock = admin.get("/_sandbox/clock").raise_for_status().json()
    if clock["day"] != days - 1 or clock["observed_clocks"] != days:
        raise RuntimeError(f"the clock is not at the last run: {clock}")
    start = int(clock["start"])
    truth = Truth(start=start, runs=[RunTruth() for _ in range(days)])
    for hid in hashtags:
        summary = _day_doc(admin, hid, None)
        truth.backlog_ever_visible += int(summary["backlog"]["ever_visible"])
        for r in range(1, days):
            run = truth.runs[r]
            videos = _day_doc(admin, hid, r - 1)["videos"]
            at = start + r * DAY_S
            early = [v["id"] for v in videos if v["first_visible"] is not None and v["first_visible"] < at]
            if early:
                raise RuntimeError(f"hashtag {hid}: {len(early)} videos of day {r - 1} visible before {at}")
            run.created += len(videos)
            run.visible[hid] = {v["id"] for v in videos if v["first_visible"] == at}
            run.collectable[hid] = {v["id"] for v in videos if v["first_visible"] is not None}
            run.never_visible += sum(1 for v in videos if v["first_visible"] is None)
    return truth
