"""The run's log lines as a person reads them (README, "Logs"): built from counters only, so no key
or response body can reach them; progress lines at a bounded rate (a 20,000-page run logs ~210)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from airflow_provider_unifapi.collector.budget import Budget, dollars
from airflow_provider_unifapi.storage.checkpoint import Checkpoint

#: pages logged one by one at the start of a try (a person watching sees it move)
FIRST_PAGES = 10
#: after those, one line every this many pages...
EVERY_PAGES = 100
#: ...or once this many seconds passed since the last line (slow APIs still show progress)
EVERY_SECONDS = 60.0


class PageLogger(Protocol):
    """What a run logs through: a ``logging.Logger``, or an Airflow task's ``self.log``."""

    def info(self, msg: Any, /, *args: Any) -> Any: ...


def spent_text(cp: Checkpoint, budget: Budget) -> str:
    """``612 of 5,000 credits ($0.612)``, or ``612 credits ($0.612)`` without a cap."""
    spent = cp.credits_spent
    cap = "" if budget.max_credits is None else f" of {budget.max_credits:,}"
    return f"{spent:,}{cap} credits ({dollars(spent)})"


class LinePace:
    """When a progress line is due; one pace may serve every chain of a batch (thread-safe), so a batch
    logs about as many lines as one hashtag of the same total pages.

    :param clock: seconds, monotonic (tests pass a fake one).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._pages = 0
        self._last_line: float | None = None
        self._last_logged_page = 0

    def due(self, *, last: bool) -> bool:
        """Count a page; whether its line is due (always when ``last``: the run stops on it)."""
        with self._lock:
            self._pages += 1
            now = self.clock()
            if self._last_line is None:
                self._last_line = now
            due = (
                last
                or self._pages <= FIRST_PAGES
                or self._pages - self._last_logged_page >= EVERY_PAGES
                or now - self._last_line >= EVERY_SECONDS
            )
            if due:
                self._last_line, self._last_logged_page = now, self._pages
            return due


class ProgressLog:
    """Writes the opening, progress and closing lines of one try.

    :param logger: where lines go.
    :param budget: the run's limits (for "x of max_credits").
    :param clock: seconds, monotonic (tests pass a fake one).
    :param pace: a batch's shared pace; its lines then start with the hashtag.
    """

    def __init__(
        self,
        logger: PageLogger,
        budget: Budget,
        *,
        clock: Callable[[], float] = time.monotonic,
        pace: LinePace | None = None,
    ) -> None:
        self.log = logger
        self.budget = budget
        self.clock = clock
        self.pace = pace or LinePace(clock)
        self.prefix = "" if pace is None else "{} "
        self._started = 0.0
        self._records_this_try = 0

    def opening(self, cp: Checkpoint, *, url: str | None, page_size: int) -> None:
        """Say what the try is about to do: hashtag, folder (``None``: XCom), budget, earlier spend."""
        self._started = self.clock()
        name = f"#{cp.hashtag_name} (id {cp.hashtag_id})" if cp.hashtag_name else cp.hashtag_id
        where = url or "XCom (returned by the task)"
        budget = self.budget.cap_text()
        floor = (
            "" if self.budget.min_balance is None else f", keeping the balance >= {self.budget.min_balance:,}"
        )
        earlier = ""
        if cp.credits_spent:
            earlier = f"; {cp.credits_spent:,} credits ({dollars(cp.credits_spent)}) already spent"
        self.log.info(
            f"Collecting hashtag {name} into {where}: {budget}{floor}, pages of {page_size}{earlier}"
        )

    def page(self, cp: Checkpoint, kept: int, balance: int | None, *, last: bool) -> None:
        """Log a committed page's line (``kept`` new records) when the pace allows it."""
        self._records_this_try += kept
        if self.pace.due(last=last):
            line = self.page_line(cp, kept, balance, self.clock() - self._started)
            self.log.info("%s", self.prefix.format(cp.hashtag_id) + line)

    def page_line(self, cp: Checkpoint, kept: int, balance: int | None, elapsed: float) -> str:
        """One progress line: ``page 12: 600 records (+50); 612 of 5,000 credits ($0.612); ...``."""
        rate = self._records_this_try / max(elapsed, 1e-9)
        line = f"page {cp.pages:,}: {cp.records:,} records (+{kept}); {spent_text(cp, self.budget)}"
        if balance is not None:
            line += f"; balance {balance:,}"
        return f"{line}; {rate:,.0f} rec/s"

    def closing(self, cp: Checkpoint, stop_reason: str) -> None:
        """The run's summary in credits and dollars; every credit is in it: confirmed + possibly billed."""
        cap = "" if self.budget.max_credits is None else f" of max_credits {self.budget.max_credits:,}"
        # "N credits charged (+M possibly billed)" keeps plain integers: scripts parse it.
        tries = "1 try" if cp.tries == 1 else f"{cp.tries} tries"
        balance = "unknown" if cp.balance_remaining is None else f"{cp.balance_remaining:,}"
        self.log.info(
            f"Done with hashtag {cp.hashtag_id}: {cp.records:,} records in {cp.pages:,} pages, stop reason "
            f"{stop_reason}; spent {cp.credits_spent:,} credits ({dollars(cp.credits_spent)}){cap} = "
            f"{cp.credits_charged} credits charged (+{cp.possibly_billed_credits} possibly billed); {tries}, "
            f"{cp.duplicates_dropped:,} duplicates dropped, balance {balance}"
        )
