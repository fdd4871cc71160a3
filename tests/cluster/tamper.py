"""Proof that the judge can fail: the real run's inputs, each spoiled in one way, must raise the
figure that names that fault (the figures are computed from the data, not assumed)."""

from __future__ import annotations

import copy
from typing import Any

from tests.cluster.judge import judge, paid_pages


def spoiled(inputs: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """One copy of ``inputs`` per fault, keyed by the figure that must count it."""
    hashtag = next(iter(next(iter(inputs["chunks"].values()))))
    out: dict[str, dict[str, Any]] = {}

    lost = copy.deepcopy(inputs)
    lost["lake"].ids[hashtag] = lost["lake"].ids[hashtag][:-1]
    out["records_lost"] = lost

    doubled = copy.deepcopy(inputs)
    doubled["lake"].ids[hashtag] = [*doubled["lake"].ids[hashtag], doubled["lake"].ids[hashtag][0]]
    out["duplicates"] = doubled

    # a page paid again by a batch the kill did not touch, long after the kill
    repaid = copy.deepcopy(inputs)
    killed = {b for k in repaid["kills"] for b in k.batches}
    spared = {h for b, hs in repaid["chunks"].items() if b not in killed for h in hs}
    call = next(c for c in paid_pages(repaid["calls"]) if c["hashtag_id"] in spared)
    last = max(c["seq"] for c in repaid["calls"])
    repaid["calls"].append({**call, "seq": last + 1, "ts": call["ts"] + 3600})
    out["repaid_pages_unexplained"] = repaid

    tight = copy.deepcopy(inputs)
    tight["max_credits"] = judge(**inputs)["highest_batch_credits"] - 1
    out["budget_breaches"] = tight

    leaked = copy.deepcopy(inputs)
    leaked["texts"].append(f"Authorization: Bearer {inputs['api_key']}")
    out["key_hits"] = leaked
    return out


def assert_judge_catches(inputs: dict[str, Any], clean: dict[str, Any]) -> None:
    """Each spoiled copy of the real run raises its figure above the clean run's."""
    for figure, bad in spoiled(inputs).items():
        found = judge(**bad)[figure]
        assert found > clean[figure], f"the judge missed a fault: {figure} stayed {found}"
