"""The batch's shared budget keeps ``max_credits`` and ``min_balance`` under many concurrent chains.

Pure Python, no Airflow, no HTTP. A seeded simulation runs chains (threads) that page one hashtag
each through :class:`HashtagBudget`, against a simulated API that charges a random amount up to the
call's limit, or bills it in full and loses the answer (the chain then counts it as possibly billed
at its worst case). After every step it proves that the credits really charged never pass
``max_credits``, the workspace balance never drops below ``min_balance``, and settled spend plus
reservations never pass ``max_credits``; at the end, that every chain ended and the room was used,
not left for no reason. Small deterministic tests pin waiting on reservations, stops, name-search
admission, learning the balance with a 1-record call, and which balance reading wins.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pytest

from airflow_provider_unifapi.collector.budget import CallPlan
from airflow_provider_unifapi.collector.shared_budget import HashtagBudget, SharedBudget
from airflow_provider_unifapi.models import StopReason
from airflow_provider_unifapi.storage.checkpoint import Checkpoint

PAGE = 50
CHAINS = 12
START_BALANCE = 10_000
UNKNOWN_RATE = 0.15  # share of calls whose answer is lost (billing unknown)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


def checkpoint(key: str, **fields: Any) -> Checkpoint:
    return Checkpoint(hashtag_id=key, output_format="jsonl", **fields)


@dataclass
class World:
    """The simulated API and workspace; ``lock`` guards it and every invariant check."""

    shared: SharedBudget
    balance: int = START_BALANCE
    charged: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    violations: list[str] = field(default_factory=list)

    def check(self, where: str) -> None:
        """Record any crossed limit (the caller holds ``lock``)."""
        cap, floor = self.shared.max_credits, self.shared.min_balance
        # Spend first: it only grows, so spend read first + reservations read next <= the true sum.
        spent = self.shared.credits_spent
        reserved = self.shared.credits_reserved
        if cap is not None and self.charged > cap:
            self.violations.append(f"{where}: charged {self.charged} > max_credits {cap}")
        if cap is not None and spent + reserved > cap:
            self.violations.append(f"{where}: spent {spent} + reserved {reserved} > max_credits {cap}")
        if floor is not None and self.balance < floor:
            self.violations.append(f"{where}: balance {self.balance} < min_balance {floor}")


@dataclass
class Chain:
    """What a chain's thread leaves behind."""

    cp: Checkpoint
    stop: StopReason | None = None
    error: str | None = None


def chain(world: World, key: str, rng: random.Random, out: Chain) -> None:
    """One chain, calling its budget as the collector does: it reserves before each call and
    settles after it, and settles once more when it leaves its loop."""
    cp = out.cp
    budget = HashtagBudget(shared=world.shared, key=key)

    def plan_next(where: str) -> CallPlan:
        time.sleep(rng.uniform(0, 0.002))
        plan = budget.next_call(PAGE, cp)
        with world.lock:
            world.check(f"{key} {where}")
        return plan

    try:
        plan = plan_next("first plan")
        while plan.stop_reason is None:
            assert 1 <= plan.limit <= PAGE and plan.max_credits == plan.limit, plan
            time.sleep(rng.uniform(0, 0.002))
            with world.lock:  # the API bills up to the call's limit, then debits the workspace
                unknown = rng.random() < UNKNOWN_RATE
                # A lost answer is the worst for the limits: the call was billed in full.
                charge = plan.worst_case_credits if unknown else rng.randint(0, plan.limit)
                world.balance -= charge
                world.charged += charge
                reading = world.balance
                world.check(f"{key} call of {plan.limit} charged {charge}")
            time.sleep(rng.uniform(0, 0.002))
            if unknown:
                cp.add_possibly_billed(plan.worst_case_credits)
            else:
                cp.credits_charged += charge
                cp.balance_remaining, cp.balance_seen_at = reading, now_iso()
                cp.possibly_billed_since_balance = 0
            cp.pages += 1
            budget.settle(cp)
            with world.lock:
                world.check(f"{key} settled")
            plan = plan_next("before call")
        out.stop = plan.stop_reason
    except BaseException as exc:  # a failed assertion in a thread must reach the test
        out.error = repr(exc)
    finally:
        budget.settle(cp)  # as the collector's loop does on its way out: others must not hang


MODES = {
    "max_credits": (2000, None),
    "min_balance": (None, START_BALANCE - 2000),
    "both": (1850, START_BALANCE - 2000),  # either binds, about half the time each
}


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("seed", [1, 7, 2024])
def test_concurrent_chains_never_pass_the_cap_or_the_floor(seed: int, mode: str) -> None:
    max_credits, min_balance = MODES[mode]
    world = World(SharedBudget(max_credits, min_balance))
    outs = [Chain(checkpoint(f"h{i}")) for i in range(CHAINS)]
    threads = [
        threading.Thread(target=chain, args=(world, f"h{i}", random.Random(seed + i), outs[i]), daemon=True)
        for i in range(CHAINS)
    ]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 8
    for t in threads:
        t.join(timeout=max(0.0, deadline - time.monotonic()))
    assert not [t.name for t in threads if t.is_alive()], f"seed {seed} {mode}: chains deadlocked"
    assert not [o.error for o in outs if o.error], f"seed {seed} {mode}"
    assert world.violations == [], f"seed {seed} {mode}: {world.violations[:5]}"

    cps = [o.cp for o in outs]
    stops = {o.stop for o in outs}
    allowed = {StopReason.MAX_CREDITS} if min_balance is None else {StopReason.MIN_BALANCE}
    if max_credits is not None and min_balance is not None:
        allowed.add(StopReason.MAX_CREDITS)
    assert stops and stops <= allowed, stops
    spent = sum(cp.credits_spent for cp in cps)
    assert world.shared.credits_spent == spent and world.shared.credits_reserved == 0
    assert world.charged == spent  # every credit charged is in a checkpoint, none twice
    assert START_BALANCE - world.balance == world.charged
    if StopReason.MAX_CREDITS in stops:
        assert max_credits is not None
        assert spent == max_credits  # the last chain stopped with exactly the cap spent
    if StopReason.MIN_BALANCE in stops:
        assert min_balance is not None
        unknown = sum(cp.possibly_billed_since_balance for cp in cps)
        slack = world.balance - min_balance
        # Stopped because the lowest reading less the unknown since readings reached the floor.
        assert 0 <= slack <= min(unknown, PAGE * CHAINS), (seed, mode, slack, unknown)


def plan_in_thread(budget: HashtagBudget, cp: Checkpoint) -> tuple[threading.Event, list[CallPlan]]:
    done = threading.Event()
    plans: list[CallPlan] = []

    def run() -> None:
        plans.append(budget.next_call(PAGE, cp))
        done.set()

    threading.Thread(target=run, daemon=True).start()
    return done, plans


def test_a_chain_waits_for_other_reservations_and_proceeds_when_they_settle() -> None:
    shared = SharedBudget(max_credits=50, min_balance=None)
    a, cp_a = HashtagBudget(max_pages=1, shared=shared, key="a"), checkpoint("a")
    b, cp_b = HashtagBudget(shared=shared, key="b"), checkpoint("b")
    assert a.next_call(PAGE, cp_a) == CallPlan(50, max_credits=50)
    done, plans = plan_in_thread(b, cp_b)
    assert not done.wait(0.3)  # only a's reservation stands in the way: b waits, it does not stop
    assert shared.credits_reserved == 50
    cp_a.credits_charged, cp_a.pages = 20, 1  # a's page cost less than its worst case
    a.settle(cp_a)
    assert done.wait(2)
    assert a.next_call(PAGE, cp_a).stop_reason is StopReason.MAX_PAGES
    assert plans == [CallPlan(30, max_credits=30)]
    assert (shared.credits_spent, shared.credits_reserved) == (20, 30)


def test_stops_at_the_cap_with_nothing_in_flight_and_shrinks_before_it() -> None:
    shared = SharedBudget(max_credits=100, min_balance=None)
    a, cp_a = (
        HashtagBudget(shared=shared, key="a"),
        checkpoint("a", credits_charged=60, possibly_billed_credits=10),
    )
    a.settle(cp_a)  # earlier tries' spend, as a batch settles it when it starts
    assert a.next_call(PAGE, cp_a) == CallPlan(30, max_credits=30)
    cp_a.credits_charged += 25
    cp_a.add_possibly_billed(5)  # 100 spent: the cap is reached
    a.settle(cp_a)
    started = time.monotonic()
    assert a.next_call(PAGE, cp_a) == CallPlan(0, stop_reason=StopReason.MAX_CREDITS)
    cp_b = checkpoint("b")
    assert HashtagBudget(shared=shared, key="b").next_call(PAGE, cp_b).stop_reason is StopReason.MAX_CREDITS
    assert time.monotonic() - started < 0.4  # a stop, not a wait
    assert (shared.credits_spent, shared.credits_reserved) == (100, 0)
    # A hashtag's own cap applies below the shared one.
    shared = SharedBudget(max_credits=100, min_balance=None)
    own = HashtagBudget(max_credits=20, shared=shared, key="c")
    assert own.next_call(PAGE, checkpoint("c", credits_charged=5)) == CallPlan(15, max_credits=15)


def test_admits_a_name_search_only_within_the_cap_and_above_the_floor() -> None:
    shared = SharedBudget(max_credits=100, min_balance=None)
    shared.settle("h1", 90)
    HashtagBudget(shared=shared, key="h2").next_call(5, checkpoint("h2"))  # 5 in flight
    assert shared.admits(5) is None
    assert shared.admits(6) is StopReason.MAX_CREDITS
    shared.settle_search("name:x", 5, 5)
    assert shared.admits(1) is StopReason.MAX_CREDITS

    floor = SharedBudget(max_credits=None, min_balance=1000)
    assert floor.admits(1) is StopReason.MIN_BALANCE  # no balance known
    floor.note_balance(1010)
    assert floor.admits(10) is None
    assert floor.admits(11) is StopReason.MIN_BALANCE
    floor.settle_search("name:x", 4, 4)  # not in the balance until a later reading
    assert floor.admits(6) is None
    assert floor.admits(7) is StopReason.MIN_BALANCE
    floor.note_balance(1006)  # this reading reflects the search
    assert floor.admits(6) is None
    assert floor.admits(7) is StopReason.MIN_BALANCE


def test_min_balance_without_a_balance_learns_it_with_one_record_one_chain_at_a_time() -> None:
    assert not SharedBudget(100, None).needs_balance
    assert not SharedBudget(None, 500, balance=900, balance_seen_at=now_iso()).needs_balance
    shared = SharedBudget(max_credits=None, min_balance=500)
    assert shared.needs_balance
    a, cp_a = HashtagBudget(shared=shared, key="a"), checkpoint("a")
    b, cp_b = HashtagBudget(shared=shared, key="b"), checkpoint("b")
    assert a.next_call(PAGE, cp_a) == CallPlan(1, max_credits=1)
    done, plans = plan_in_thread(b, cp_b)
    assert not done.wait(0.3)  # one learning call at a time: b waits for a's reading
    cp_a.credits_charged, cp_a.balance_remaining, cp_a.balance_seen_at = 1, 540, now_iso()
    a.settle(cp_a)  # a's reading: the balance is known, b goes on with all the room above the floor
    assert done.wait(2)
    assert plans == [CallPlan(40, max_credits=40)]
    assert not shared.needs_balance


def test_an_earlier_try_reading_stands_in_until_this_try_then_the_lowest_wins() -> None:
    shared = SharedBudget(None, 1000, balance=1030, balance_seen_at="2020-01-01T00:00:00+00:00")
    budget, cp = HashtagBudget(shared=shared, key="a"), checkpoint("a")

    def room(balance: int, seen_at: str) -> int:
        cp.balance_remaining, cp.balance_seen_at = balance, seen_at
        budget.settle(cp)
        return budget.next_call(PAGE, cp).limit

    assert shared.admits(30) is None and shared.admits(31) is StopReason.MIN_BALANCE
    assert room(1040, "2019-06-01T00:00:00+00:00") == 30  # older than the remembered one
    assert room(1020, "2021-01-01T00:00:00+00:00") == 20  # newer: it stands in
    assert room(1035, "2022-01-01T00:00:00+00:00") == 35  # the newest earlier reading, even higher
    assert room(1045, now_iso()) == 45  # this try's first reading replaces them all
    assert room(1010, "2023-01-01T00:00:00+00:00") == 45  # earlier tries no longer count
    assert room(1048, now_iso()) == 45  # within a try a higher reading is stale
    assert room(1042, now_iso()) == 42
    cp.add_possibly_billed(5)  # unknown since the reading: the balance may be that much lower
    budget.settle(cp)
    assert budget.next_call(PAGE, cp).limit == 37
    shared.settle("a", cp.credits_spent, 1042, cp.balance_seen_at, 5)  # a ends, its 5 still unknown
    other = checkpoint("b", balance_remaining=1041, balance_seen_at=now_iso())  # lower: it wins
    b = HashtagBudget(shared=shared, key="b")
    b.settle(other)
    assert b.next_call(PAGE, other).limit == 36
