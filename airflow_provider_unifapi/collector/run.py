"""One hashtag's run, the service both operators use: claim -> resolve -> reuse, continue, resume or
clear -> page -> end, and how it ended (``HashtagStatus``). Every decision about one hashtag is made
here and only here; the batch runs many under a shared budget. Pure Python (no Airflow).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from airflow_provider_unifapi.client import UnifAPIClient
from airflow_provider_unifapi.collector.budget import Budget, credits_spent, dollars
from airflow_provider_unifapi.collector.loop import (
    HashtagVideoCollector,
    PagingSettings,
    RunStart,
    RunStopped,
)
from airflow_provider_unifapi.collector.names import NameBook
from airflow_provider_unifapi.collector.output import RunOutput
from airflow_provider_unifapi.collector.progress import LinePace, PageLogger
from airflow_provider_unifapi.collector.results import HashtagResult, HashtagTarget
from airflow_provider_unifapi.collector.shared_budget import SharedBudget
from airflow_provider_unifapi.exceptions import UnifAPIError, UnifAPIInputError
from airflow_provider_unifapi.models import BalanceReading, HashtagStatus, StopReason

log = logging.getLogger(__name__)

#: what a reused summary drops from the manifest (the parts' details stay in the folder)
_MANIFEST_ONLY = ("parts", "request_ids", "written_at")


class HashtagRun:
    """Runs one hashtag into one output; :meth:`run` never raises for the API (it returns ``failed``).

    :param client: the UnifAPI client.
    :param target: the hashtag (a name is resolved here unless the output remembers it).
    :param output: where its records go.
    :param budget: its hard limits (a batch's chain passes its share of the batch's).
    :param paging: page size, empty-page bound, what a low balance does.
    :param initial_balance: a remembered balance reading, used until a response tells the real one.
    :param overwrite: clear a finished (or stopped) earlier run and fetch again.
    :param owner: who writes (task instance and try), shown to a writer refused by the folder's claim.
    :param logger: where lines go (the task's logger in Airflow).
    :param pace: a batch's progress pace, shared by its chains (lines then name their hashtag).
    """

    def __init__(
        self,
        client: UnifAPIClient,
        target: HashtagTarget,
        output: RunOutput,
        *,
        budget: Budget | None = None,
        paging: PagingSettings | None = None,
        initial_balance: BalanceReading | None = None,
        overwrite: bool = False,
        owner: str = "",
        logger: PageLogger | None = None,
        pace: LinePace | None = None,
    ) -> None:
        self.client = client
        self.target = target
        self.output = output
        self.budget = budget or Budget()
        self.paging = paging or PagingSettings()
        self.initial_balance = initial_balance
        self.overwrite = overwrite
        self.owner = owner
        self.log: PageLogger = logger or log
        self.pace = pace

    def run(self) -> HashtagResult:
        """Claim the output, then reuse, continue or page the hashtag; release the claim.

        :raises UnifAPIInputError: the output cannot be written, or holds another hashtag's run.
        :raises UnifAPIFolderBusyError: another live writer holds the output.
        """
        self.output.claim(self.owner)
        try:
            if self.overwrite:
                self.output.clear()
            else:
                stored = self.output.stored_run()
                if stored is not None and self._finished(stored):
                    return self._reuse(stored)
            return self._page()
        finally:
            self.output.release()

    # -- reuse ------------------------------------------------------------------------------------
    def _finished(self, manifest: dict[str, Any]) -> bool:
        """Whether a stored run is final: done, or stopped with nothing left to continue from."""
        t = self.target
        if (t.hashtag_id and manifest.get("hashtag_id") != t.hashtag_id) or (
            t.hashtag_id is None and manifest.get("hashtag_name") != t.hashtag_name
        ):
            raise UnifAPIInputError(
                "output_path",
                f"{self.output.url} holds the run of hashtag {manifest.get('hashtag_id')}, not {t.label}; "
                "give each hashtag its own output_path (or overwrite=True)",
            )
        # A manifest of an earlier release has no status: it was written only at the end of a run.
        if manifest.get("status", HashtagStatus.DONE) == HashtagStatus.DONE:
            return True
        return self.output.earlier_checkpoint() is None

    def _reuse(self, manifest: dict[str, Any]) -> HashtagResult:
        self.output.tidy()  # a try killed between the manifest and its clean-up left them
        summary = {k: v for k, v in manifest.items() if k not in _MANIFEST_ONLY}
        summary.update(
            reused=True, status=summary.get("status", HashtagStatus.DONE.value), credits_spent_this_try=0
        )
        spent = credits_spent(summary)
        self.log.info(
            f"{self.target.label}: reused the finished folder {self.output.url} (0 credits this time); it "
            f"holds {summary.get('records', 0):,} records that cost {spent:,} credits ({dollars(spent)}). "
            "overwrite=True fetches again."
        )
        target = replace(self.target, hashtag_id=summary.get("hashtag_id"))
        return HashtagResult(target, HashtagStatus(summary["status"]), summary, reused=True)

    # -- paging -----------------------------------------------------------------------------------
    def _page(self) -> HashtagResult:
        target = self.target
        try:
            hashtag_id, resolution_credits = self._hashtag_id()
            target = replace(target, hashtag_id=hashtag_id)
            collector = HashtagVideoCollector(
                self.client,
                hashtag_id,
                output=self.output,
                budget=self.budget,
                paging=self.paging,
                start=RunStart(
                    hashtag_name=target.hashtag_name,
                    initial_balance=self.initial_balance,
                    resolution_credits=resolution_credits,
                ),
                logger=self.log,
                pace=self.pace,
            )
            summary = collector.run()
        except RunStopped as stop:
            return HashtagResult(
                target, HashtagStatus.FAILED, {**stop.summary, **self._so_far(target)}, error=stop
            )
        except UnifAPIInputError:
            raise
        except UnifAPIError as exc:
            return HashtagResult(target, HashtagStatus.FAILED, self._so_far(target), error=exc)
        status = HashtagStatus(summary["status"])
        if status is not HashtagStatus.DONE:
            self._say_how_to_continue(target, summary)
        return HashtagResult(target, status, summary)

    def _hashtag_id(self) -> tuple[str, int]:
        """The id to page, and what resolving its name cost (all tries), through the output's book."""
        t = self.target
        if t.hashtag_id is not None:
            return t.hashtag_id, 0
        assert t.hashtag_name is not None
        names = NameBook(self.client, self.output.name_store(), SharedBudget(None, None), self.log)
        names.open()
        resolved = names.resolve(t)
        if isinstance(resolved, HashtagResult):
            assert resolved.error is not None  # nothing limits a lone hashtag's search: it failed
            raise resolved.error
        assert resolved.hashtag_id is not None
        return resolved.hashtag_id, names.credits_for(t.hashtag_name)

    def _so_far(self, target: HashtagTarget) -> dict[str, Any]:
        """A failed run's figures from its checkpoint (a call in flight counts as possibly billed)."""
        cp = self.output.earlier_checkpoint()
        if cp is None:
            return {"hashtag_id": target.hashtag_id, "output_path": self.output.url}
        cp.count_in_flight()
        return {
            "hashtag_id": cp.hashtag_id,
            "records": cp.records,
            "pages": cp.pages,
            "credits_charged": cp.credits_charged,
            "possibly_billed_credits": cp.possibly_billed_credits,
            "balance_remaining": cp.balance_remaining,
            "balance_seen_at": cp.balance_seen_at,
            "possibly_billed_since_balance": cp.possibly_billed_since_balance,
            "output_path": self.output.url,
        }

    def _say_how_to_continue(self, target: HashtagTarget, summary: dict[str, Any]) -> None:
        reason = StopReason(summary["stop_reason"])
        what = {
            StopReason.MIN_BALANCE: (
                "top up the workspace (or lower min_balance); a balance reading stands in until it is "
                "balance_max_age old, so run behind UnifAPIBalanceSensor (a live reading) or wait that long,"
            ),
            StopReason.BALANCE_TRUNCATED: "top up the workspace",
        }.get(reason, f"raise {reason.value}")
        self.log.info(
            f"{target.label} {summary['status']} at {reason.value} with {summary.get('records', 0):,} records: "
            f"{what} and run again to continue from the cursor; pages already paid for are not paid again"
        )
