"""One ``max_credits`` and ``min_balance`` for the many chains of a batch, with calls in flight reserved.

A chain reserves before each call and settles after it (:class:`HashtagBudget` does both for the
collector): :meth:`SharedBudget.reserve` answers with a limit that fits what is left once every
*other* chain's call in flight is counted at its worst case, and holds that worst case for the chain;
:meth:`SharedBudget.settle` replaces it with what the chain has spent over all tries and its newest
balance reading. The call's ``X-Unifapi-Max-Credits`` is set to the reservation, so retries inside
the call cannot spend past it either. When only the other chains' reservations stand in the way, a
chain waits for them to settle (they are often charged less than their worst case) instead of stopping.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone

from airflow_provider_unifapi.collector.budget import Budget, CallPlan, dollars, fresh
from airflow_provider_unifapi.models import StopReason
from airflow_provider_unifapi.storage.checkpoint import Checkpoint

#: how long a waiting chain sleeps before looking at the reservations again (seconds)
_WAIT_SLICE = 0.5


class SharedBudget:
    """Thread-safe credit and balance limits shared by every chain of a batch, over all tries.

    :param max_credits: never let the batch's ``credits_spent`` (all hashtags, tries and names) pass this.
    :param min_balance: never let the workspace balance drop below this.
    :param balance: a remembered balance, used until a response of this try tells the real one.
    :param balance_seen_at: when it was seen (ISO 8601, UTC).
    :param balance_max_age: seconds an earlier try's reading stands in (``None``: always).

    Before this try's first response the newest earlier reading stands in (none: a 1-record call
    learns it). Responses of concurrent calls reach their chains in any order, and the balance only
    goes down while the batch spends, so within a try the lowest reading is the newest: chains may
    stop at ``min_balance`` early (a top-up is seen by the next try), never late.
    """

    def __init__(
        self,
        max_credits: int | None,
        min_balance: int | None,
        balance: int | None = None,
        balance_seen_at: str | None = None,
        balance_max_age: float | None = None,
    ) -> None:
        self.max_credits = max_credits
        self.balance_max_age = balance_max_age
        self.min_balance = min_balance
        self._cond = threading.Condition()
        self._spent: dict[str, int] = {}
        self._reserved: dict[str, int] = {}
        self._possibly_billed_since_balance: dict[str, int] = {}
        self._balance = balance
        # True while the balance comes from before this try: then the newest reading wins.
        self._balance_earlier = True
        self._balance_seen_at = (balance_seen_at or "") if balance is not None else ""
        # Name searches run before any chain's call, so the first reading of a chain reflects them.
        self._outside_since_balance = 0
        self._try_started_at = datetime.now(timezone.utc).isoformat()

    @property
    def limits(self) -> bool:
        """Whether there is anything to share."""
        return self.max_credits is not None or self.min_balance is not None

    @property
    def credits_spent(self) -> int:
        """Settled spend of the whole batch (confirmed + possibly billed), reservations excluded."""
        with self._cond:
            return sum(self._spent.values())

    @property
    def credits_reserved(self) -> int:
        """Worst case of the calls in flight now."""
        with self._cond:
            return sum(self._reserved.values())

    def settle(
        self,
        key: str,
        credits_spent: int,
        balance: int | None = None,
        balance_seen_at: str | None = None,
        unknown_since_balance: int = 0,
    ) -> None:
        """After a call (or from an earlier try's records): drop ``key``'s reservation; the call's charge
        shows from now on in its spend, its last balance reading or its unknown credits since.

        :param key: the hashtag (or ``name:<name>`` for a resolution).
        :param credits_spent: its confirmed + possibly billed credits.
        :param balance: the balance its last response reported.
        :param balance_seen_at: when that reading was taken (ISO 8601, UTC).
        :param unknown_since_balance: credits of its calls of unknown outcome since that reading.
        """
        with self._cond:
            self._spent[key] = credits_spent
            self._reserved[key] = 0
            self._note_reading(balance, balance_seen_at)
            # Summed over chains: another chain's lower reading may predate this chain's unknowns.
            self._possibly_billed_since_balance[key] = unknown_since_balance
            self._cond.notify_all()

    def settle_checkpoint(self, key: str, cp: Checkpoint) -> None:
        """:meth:`settle` with what a chain's checkpoint says (this try's, or an earlier try's)."""
        unknown = cp.possibly_billed_since_balance
        self.settle(key, cp.credits_spent, cp.balance_remaining, cp.balance_seen_at, unknown)

    def settle_search(self, key: str, credits_spent: int, cost: int) -> None:
        """Record a name search's spend over all tries; this try's ``cost`` is unknown to the balance
        until a chain's next reading."""
        with self._cond:
            self._spent[key] = credits_spent
            self._reserved[key] = 0
            self._outside_since_balance += cost
            self._cond.notify_all()

    def note_balance(self, balance: int) -> None:
        """A reading taken outside the chains (the batch's balance probe)."""
        with self._cond:
            self._note_reading(balance, datetime.now(timezone.utc).isoformat())
            self._cond.notify_all()

    @property
    def needs_balance(self) -> bool:
        """``min_balance`` is set and no balance is known yet."""
        with self._cond:
            return self.min_balance is not None and self._balance is None

    def admits(self, credits: int) -> StopReason | None:
        """Whether a name search of worst case ``credits`` may be made; why not if not."""
        with self._cond:
            others = sum(self._reserved.values())
            if (
                self.max_credits is not None
                and self.max_credits - sum(self._spent.values()) - others < credits
            ):
                return StopReason.MAX_CREDITS
            if self.min_balance is None:
                return None
            if self._balance is None or self._room_above_floor(others) < credits:
                return StopReason.MIN_BALANCE
            return None

    def reserve(self, key: str, plan: CallPlan) -> CallPlan:
        """Before a call: shrink ``plan`` (the chain's own limits) to the shared room and hold it for
        ``key`` until it settles; may wait for other chains to settle."""
        with self._cond:
            self._reserved[key] = 0
            while True:
                others = sum(self._reserved.values())
                limit = self._limit(plan.limit, others)
                if isinstance(limit, int):
                    self._reserved[key] = limit
                    return CallPlan(limit, max_credits=limit)
                if others == 0:  # nothing will come back: the batch's limit is reached
                    return CallPlan(0, stop_reason=limit)
                self._cond.wait(_WAIT_SLICE)

    def _note_reading(self, reading: int | None, seen_at: str | None) -> None:
        if reading is None:
            return
        seen_at = seen_at or ""
        if seen_at < self._try_started_at:  # an earlier try's: the newest fresh one stands in
            if not fresh(seen_at, self.balance_max_age):
                return  # a top-up since would not show: a 1-record call learns the balance again
            if self._balance_earlier and (self._balance is None or seen_at >= self._balance_seen_at):
                self._balance, self._balance_seen_at = reading, seen_at
            return
        self._outside_since_balance = 0
        if self._balance is None or self._balance_earlier or reading < self._balance:
            self._balance = reading
            self._balance_earlier = False

    def _room_above_floor(self, others: int) -> int:
        """Credits the balance allows above ``min_balance`` (the caller holds the lock)."""
        assert self._balance is not None and self.min_balance is not None
        unknown = sum(self._possibly_billed_since_balance.values()) + self._outside_since_balance
        return self._balance - unknown - others - self.min_balance

    def _limit(self, wanted: int, others: int) -> int | StopReason:
        """The records this call may ask for, or why none (the caller holds the lock)."""
        limit = wanted
        if self.max_credits is not None:
            left = self.max_credits - sum(self._spent.values()) - others
            if left < 1:
                return StopReason.MAX_CREDITS
            limit = min(limit, left)
        if self.min_balance is not None:
            if self._balance is None:
                # Learn the balance with a 1-record call, one chain at a time.
                return 1 if others == 0 else StopReason.MIN_BALANCE
            left = self._room_above_floor(others)
            if left < 1:
                return StopReason.MIN_BALANCE
            limit = min(limit, left)
        return limit


@dataclass(frozen=True)
class HashtagBudget(Budget):
    """A chain's own limits (per-hashtag caps), then the batch's shared ones.

    :param shared: the batch's shared budget.
    :param key: the chain's hashtag id.
    """

    shared: SharedBudget = field(default_factory=lambda: SharedBudget(None, None))
    key: str = ""

    def cap_text(self) -> str:
        own = "" if self.max_credits is None else f", at most {self.max_credits:,} for this hashtag"
        cap = self.shared.max_credits
        if cap is None:
            return f"no batch max_credits{own}"
        return f"batch budget {cap:,} credits ({dollars(cap)}) shared{own}"

    def next_call(self, page_size: int, checkpoint: Checkpoint) -> CallPlan:
        plan = super().next_call(page_size, checkpoint)
        if plan.stop_reason is not None or not self.shared.limits:
            return plan
        return self.shared.reserve(self.key, plan)

    def settle(self, checkpoint: Checkpoint) -> None:
        self.shared.settle_checkpoint(self.key, checkpoint)
