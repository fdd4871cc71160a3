"""Hashtag names resolved to ids once over all tries: a paid search, kept in a small JSON book with
write-ahead (its worst case written before it is made), so a killed try still counts it and a retry
reads the id. Under a shared budget a search is admitted like a call (docs/batch.md).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from airflow_provider_unifapi.client import PROBE_CREDITS, PROBE_QUERY, UnifAPIClient
from airflow_provider_unifapi.collector.output import NameStore
from airflow_provider_unifapi.collector.progress import PageLogger
from airflow_provider_unifapi.collector.results import HashtagResult, HashtagTarget
from airflow_provider_unifapi.collector.shared_budget import SharedBudget
from airflow_provider_unifapi.exceptions import UnifAPIError, UnifAPIInsufficientCreditsError
from airflow_provider_unifapi.models import HashtagStatus

log = logging.getLogger(__name__)

#: worst case of one name resolution (the client reads at most 3 search pages of 20 results)
RESOLUTION_WORST_CASE = 60
#: The balance probe's entry in the book (a hashtag name has no spaces): its credits count with the
#: resolutions'.
PROBE_ENTRY = "balance probe"


def error_cost(exc: UnifAPIError) -> int:
    """Credits a failed call charged or may have."""
    return int(getattr(exc, "credits_charged", 0) or 0) + exc.possibly_billed_credits


class NameBook:
    """Resolves names through ``client`` once over all tries, counting every search in ``shared``.

    :param client: the UnifAPI client.
    :param store: where the book is kept.
    :param shared: the budget the searches are admitted by and settled in (a batch's shared one;
        ``SharedBudget(None, None)`` admits everything).
    :param logger: where lines go.
    """

    def __init__(
        self, client: UnifAPIClient, store: NameStore, shared: SharedBudget, logger: PageLogger | None = None
    ) -> None:
        self.client = client
        self.store = store
        self.shared = shared
        self.log: PageLogger = logger or log
        self.entries: dict[str, dict[str, Any]] = {}
        #: what the book's searches had spent when this try opened it
        self.credits_at_open = 0

    def open(self) -> None:
        """Read the book and count what earlier tries' searches spent (in flight ones at worst case)."""
        self.entries = self.store.load()
        self.credits_at_open = self.credits
        for name in self.entries:
            self.shared.settle(f"name:{name}", self.credits_for(name))

    def known_id(self, name: str | None) -> str | None:
        """The id an earlier try resolved ``name`` to, if any."""
        return self.entries.get(name or "", {}).get("hashtag_id")

    @property
    def credits(self) -> int:
        """Credits every search of the book spent (or may have), all tries."""
        return sum(self.credits_for(name) for name in self.entries)

    def credits_for(self, name: str) -> int:
        """What resolving ``name`` spent over all tries."""
        entry = self.entries.get(name, {})
        return int(entry.get("credits", 0)) + int(entry.get("in_flight", 0))

    def _save(self) -> None:
        self.store.save(self.entries)

    def resolve(self, target: HashtagTarget) -> HashtagTarget | HashtagResult:
        """``target`` with its id, or the result of a resolution that could not be made."""
        name = target.hashtag_name
        if target.hashtag_id is not None or name is None:
            return target
        known = self.known_id(name)
        if known:
            return replace(target, hashtag_id=known)
        if self.shared.needs_balance:
            self._probe_balance()
        why = self.shared.admits(RESOLUTION_WORST_CASE)
        if why is not None:
            return HashtagResult(target, HashtagStatus.SKIPPED, {"stop_reason": why.value})
        spent_before = self.credits_for(name)  # a search a killed try made counts at its worst case
        # Write-ahead: a try killed during the search still counts its worst case.
        self.entries[name] = {"credits": spent_before, "in_flight": RESOLUTION_WORST_CASE}
        self._save()
        try:
            resolved = self.client.resolve_hashtag_id(name)
        except UnifAPIError as exc:
            cost = error_cost(exc)
            self.entries[name] = {"credits": spent_before + cost, "error": str(exc)}
            self._save()
            self.shared.settle_search(f"name:{name}", spent_before + cost, cost)
            return HashtagResult(target, HashtagStatus.FAILED, error=exc)
        spent = spent_before + resolved.credits_charged
        self.entries[name] = {"hashtag_id": resolved.hashtag.id, "credits": spent}
        self._save()
        self.shared.settle_search(f"name:{name}", spent, resolved.credits_charged)
        self.log.info(
            f"Resolved hashtag name {name!r} to id {resolved.hashtag.id} with {resolved.calls} search call(s) "
            f"costing {resolved.credits_charged} credits"
        )
        return replace(target, hashtag_id=resolved.hashtag.id)

    def _probe_balance(self) -> None:
        """Learn the balance (1 credit; no free endpoint) before a name search under ``min_balance``."""
        spent_before = self.credits_for(PROBE_ENTRY)
        self.entries[PROBE_ENTRY] = {"credits": spent_before, "in_flight": PROBE_CREDITS}
        self._save()
        try:
            page = self.client.search_hashtags(PROBE_QUERY, limit=1, max_credits=PROBE_CREDITS)
        except UnifAPIError as exc:
            cost = error_cost(exc)
            self.entries[PROBE_ENTRY] = {"credits": spent_before + cost}
            self._save()
            self.shared.settle_search(f"name:{PROBE_ENTRY}", spent_before + cost, cost)
            if isinstance(exc, UnifAPIInsufficientCreditsError) and exc.balance_remaining is not None:
                self.shared.note_balance(exc.balance_remaining)
            return
        cost = page.billing.credits_charged + page.call_stats.possibly_billed_credits
        self.entries[PROBE_ENTRY] = {"credits": spent_before + cost}
        self._save()
        self.shared.settle_search(f"name:{PROBE_ENTRY}", spent_before + cost, 0)
        self.shared.note_balance(page.billing.balance_remaining)
