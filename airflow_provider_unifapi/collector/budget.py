"""The hard limits of one run, and what they allow for the next call."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from airflow_provider_unifapi.models import StopReason
from airflow_provider_unifapi.storage.checkpoint import Checkpoint


def dollars(credits: int) -> str:
    """Credits as dollars, exactly (1 credit = $0.001): ``5000`` -> ``$5.00``, ``452`` -> ``$0.452``.

    :param credits: a whole number of credits.
    """
    sign = "-" if credits < 0 else ""
    whole, thousandths = divmod(abs(credits), 1000)
    fraction = f"{thousandths:03d}"
    if fraction.endswith("0"):  # cents suffice: $5.00, $0.45
        fraction = fraction[:2]
    return f"{sign}${whole:,}.{fraction}"


def fresh(seen_at: str | None, max_age: float | None) -> bool:
    """Whether a reading seen at ``seen_at`` (ISO 8601; ``None``: unknown) is at most ``max_age``
    seconds old (``None``: any age)."""
    if max_age is None:
        return True
    if not seen_at:
        return False
    age = (datetime.now(timezone.utc) - datetime.fromisoformat(seen_at)).total_seconds()
    return age <= max_age


def credits_spent(summary: Mapping[str, Any]) -> int:
    """Credits a summary, manifest or batch row accounts for: confirmed + possibly billed, all tries
    (a live run's: ``Checkpoint.credits_spent``)."""
    return int(summary.get("credits_charged") or 0) + int(summary.get("possibly_billed_credits") or 0)


@dataclass(frozen=True)
class CallPlan:
    """What the budget allows for the next page.

    :param limit: records to ask for (at least 1 when a call may be made).
    :param max_credits: the credit cap sent with the call (``X-Unifapi-Max-Credits``), if any.
    :param stop_reason: set when no call may be made.
    """

    limit: int
    max_credits: int | None = None
    stop_reason: StopReason | None = None

    @property
    def worst_case_credits(self) -> int:
        """The most one attempt of this call may cost (a call is billed at least 1 credit)."""
        return max(self.limit, 1)


@dataclass(frozen=True)
class Budget:
    """Hard limits of one run, counted over all tries.

    :param max_records: stop after exactly this many unique records.
    :param max_pages: stop after this many calls for pages.
    :param max_credits: never spend more (``credits_spent``: confirmed + possibly billed, name
        resolution included).
    :param min_balance: never let the last known workspace balance drop below this.
    :param balance_max_age: seconds a balance reading of an earlier try or run stands in for the
        balance (``None``: always); an older one is learned again with a 1-record call, so a top-up
        made since is seen.
    """

    max_records: int | None = None
    max_pages: int | None = None
    max_credits: int | None = None
    min_balance: int | None = None
    balance_max_age: float | None = None

    def cap_text(self) -> str:
        """The credit cap as an opening line says it (in credits and dollars)."""
        if self.max_credits is None:
            return "no max_credits (set it to cap the spend)"
        return f"budget {self.max_credits:,} credits ({dollars(self.max_credits)})"

    def next_call(self, page_size: int, checkpoint: Checkpoint) -> CallPlan:
        """What the next page may ask for, given what the run has already spent and kept.

        With ``min_balance`` set and no balance known yet, the first call asks for one record to
        learn the balance.

        :param page_size: records per call when nothing else limits it.
        :param checkpoint: the run so far.
        """
        cp = checkpoint
        limit, cap = page_size, None
        if self.max_records is not None:
            left = self.max_records - cp.records
            if left < 1:
                return CallPlan(0, stop_reason=StopReason.MAX_RECORDS)
            limit = min(limit, left)
        if self.max_pages is not None and cp.pages >= self.max_pages:
            return CallPlan(0, stop_reason=StopReason.MAX_PAGES)
        if self.max_credits is not None:
            left = self.max_credits - cp.credits_spent
            if left < 1:
                return CallPlan(0, stop_reason=StopReason.MAX_CREDITS)
            limit, cap = min(limit, left), left
        if self.min_balance is not None:
            # The lowest the balance may be now: the last one seen, less what may have been billed since.
            balance = cp.balance_worst_case if fresh(cp.balance_seen_at, self.balance_max_age) else None
            if balance is None:
                return CallPlan(1, cap)
            left = balance - self.min_balance
            if left < 1:
                return CallPlan(0, stop_reason=StopReason.MIN_BALANCE)
            limit, cap = min(limit, left), left if cap is None else min(cap, left)
        return CallPlan(limit, cap)

    def settle(self, checkpoint: Checkpoint) -> None:
        """After a call, and when the run leaves its loop: ``checkpoint`` holds what the call cost.
        A run's own limits read the checkpoint directly; a batch's shared ones are told here.

        :param checkpoint: the run so far.
        """
