"""Fault plans: which API call goes wrong, and how.

A plan is a list of rules evaluated in order for every API call; the first rule that matches fires.
A rule matches when its ``path`` (endpoint) fits, the call number is in ``at`` (if given), it has
fired fewer than ``times`` times (if given), and, last, a draw from its own
``random.Random(seed)`` is below ``rate`` (if given). The draw happens only when everything else
matched, so a plan replays identically for the same sequence of calls.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

KINDS = ("error", "reset", "malformed", "truncated", "slow", "shape")
ENDPOINTS = ("videos", "hashtag", "search", "unknown")
#: Kinds whose default is to charge the page before breaking the response.
BILLED_BY_DEFAULT = {
    "error": False,
    "reset": False,
    "malformed": True,
    "truncated": True,
    "slow": True,
    "shape": True,
}
#: Default ``error.type`` per status for ``error`` rules that give none (``null`` means HTML).
DEFAULT_ERROR_TYPES = {
    400: "validation_error",
    401: "unauthorized",
    402: "insufficient_credits",
    404: "not_found",
    429: "rate_limited",
    500: "internal_error",
    502: "upstream_error",
    503: "upstream_unavailable",
}
SHAPE_VARIANTS = ("missing_id", "missing_pagination")

_COMMON = {"kind", "at", "rate", "seed", "times", "path", "note"}
_SPECIFIC = {
    "error": {"status", "type", "retry_after", "html", "message"},
    "reset": {"billed"},
    "malformed": {"billed"},
    "truncated": {"billed"},
    "slow": {"delay_s"},
    "shape": {"variant"},
}


class FaultPlanError(ValueError):
    """A fault rule is malformed."""


@dataclass
class FaultRule:
    """One validated rule; ``spec`` is the JSON it came from (echoed by ``GET /_sandbox/faults``)."""

    kind: str
    spec: dict[str, Any]
    at: frozenset[int] | None = None
    rate: float | None = None
    seed: int = 0
    times: int | None = None
    path: str | None = None
    status: int = 500
    error_type: str | None = "internal_error"
    retry_after: float | None = None
    html: bool = False
    message: str | None = None
    billed: bool = False
    delay_s: float = 0.0
    variant: str = "missing_id"
    fired: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def matches(self, call_no: int, endpoint: str) -> bool:
        """Whether this rule fires for API call ``call_no`` on ``endpoint`` (draws from ``rng``)."""
        if self.path is not None and self.path != endpoint:
            return False
        if self.at is not None and call_no not in self.at:
            return False
        if self.times is not None and self.fired >= self.times:
            return False
        # The draw comes last, so a rule's random sequence only advances on otherwise-matching calls.
        return self.rate is None or self.rng.random() < self.rate


def parse_rule(spec: Any) -> FaultRule:
    """Validate one rule of a plan.

    :raises FaultPlanError: with a message naming the bad field.
    """
    if not isinstance(spec, Mapping):
        raise FaultPlanError("each rule must be an object")
    kind = spec.get("kind")
    if kind not in KINDS:
        raise FaultPlanError(f"kind must be one of {', '.join(KINDS)}")
    unknown = sorted(set(spec) - _COMMON - _SPECIFIC[kind])
    if unknown:
        raise FaultPlanError(f"{kind} rule: unknown field(s): {', '.join(unknown)}")
    rule = FaultRule(kind=kind, spec=dict(spec), billed=BILLED_BY_DEFAULT[kind])
    if "at" in spec and spec["at"] is not None:
        at = spec["at"]
        if isinstance(at, int) and not isinstance(at, bool):
            at = [at]
        if not isinstance(at, list) or not all(_is_int(n) and n >= 1 for n in at):
            raise FaultPlanError("at: must be a list of call numbers (1-based)")
        rule.at = frozenset(at)
    if spec.get("rate") is not None:
        rate = spec["rate"]
        if not _is_number(rate) or not 0.0 <= rate <= 1.0:
            raise FaultPlanError("rate: must be a number between 0 and 1")
        rule.rate = float(rate)
    seed = spec.get("seed", 0)
    if not _is_int(seed):
        raise FaultPlanError("seed: must be an integer")
    rule.seed = seed
    rule.rng = random.Random(seed)
    if spec.get("times") is not None:
        if not _is_int(spec["times"]) or spec["times"] < 0:
            raise FaultPlanError("times: must be a non-negative integer")
        rule.times = spec["times"]
    if spec.get("path") is not None:
        if spec["path"] not in ENDPOINTS:
            raise FaultPlanError(f"path: must be one of {', '.join(ENDPOINTS)}")
        rule.path = spec["path"]
    if "billed" in spec:
        if not isinstance(spec["billed"], bool):
            raise FaultPlanError("billed: must be a boolean")
        rule.billed = spec["billed"]
    _parse_specific(rule, spec)
    return rule


def _parse_specific(rule: FaultRule, spec: Mapping[str, Any]) -> None:
    if rule.kind == "error":
        status = spec.get("status", 500)
        if not _is_int(status) or not 400 <= status <= 599:
            raise FaultPlanError("status: must be an integer from 400 to 599")
        rule.status = status
        # Absent type: the usual type of the status; a status without one gets an HTML page.
        rule.error_type = spec["type"] if "type" in spec else DEFAULT_ERROR_TYPES.get(status)
        if rule.error_type is not None and not isinstance(rule.error_type, str):
            raise FaultPlanError("type: must be a string or null")
        if spec.get("retry_after") is not None:
            if not _is_number(spec["retry_after"]) or spec["retry_after"] < 0:
                raise FaultPlanError("retry_after: must be a non-negative number")
            rule.retry_after = spec["retry_after"]
        rule.html = bool(spec.get("html", False)) or rule.error_type is None
        msg = spec.get("message")
        if msg is not None and not isinstance(msg, str):
            raise FaultPlanError("message: must be a string")
        rule.message = msg
    elif rule.kind == "slow":
        delay = spec.get("delay_s")
        if not isinstance(delay, (int, float)) or isinstance(delay, bool) or delay < 0:
            raise FaultPlanError("slow rule: delay_s must be a non-negative number")
        rule.delay_s = float(delay)
    elif rule.kind == "shape":
        variant = spec.get("variant", "missing_id")
        if variant not in SHAPE_VARIANTS:
            raise FaultPlanError(f"variant: must be one of {', '.join(SHAPE_VARIANTS)}")
        rule.variant = variant


def parse_plan(plan: Any) -> list[FaultRule]:
    """Validate a whole plan (a JSON list of rules)."""
    if not isinstance(plan, list):
        raise FaultPlanError("plan: must be a list of rules")
    rules = []
    for i, spec in enumerate(plan):
        try:
            rules.append(parse_rule(spec))
        except FaultPlanError as exc:
            raise FaultPlanError(f"plan[{i}]: {exc}") from None
    return rules


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)
