"""The paging loop (no Airflow; benchmarks drive the same loop): budgets, dedupe, a checkpoint after
every page, the summary. Money rules enforced here:

- before each call its worst-case cost is known (``limit``, at least 1), and ``limit`` shrinks so
  that ``credits_spent`` over all tries (confirmed + possibly billed) never passes ``max_credits``
  and the last known balance never drops below ``min_balance``;
- the call's worst case is committed as ``in_flight_credits`` before it is made, so a try killed
  mid-call still has that call counted (as possibly billed) by the next try;
- a page truncated by balance is kept but its cursor is not followed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from airflow_provider_unifapi.client import MAX_PAGE_SIZE, UnifAPIClient, VideoPager
from airflow_provider_unifapi.collector.budget import Budget, CallPlan
from airflow_provider_unifapi.collector.output import RunOutput
from airflow_provider_unifapi.collector.progress import LinePace, PageLogger, ProgressLog
from airflow_provider_unifapi.exceptions import UnifAPIError, UnifAPIInsufficientCreditsError
from airflow_provider_unifapi.models import BalanceReading, HashtagStatus, StopReason, VideoPage
from airflow_provider_unifapi.storage.checkpoint import Checkpoint
from airflow_provider_unifapi.storage.idset import IdSet

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PagingSettings:
    """How pages are asked for, and what a low balance does.

    :param page_size: records per call, 1 to 50.
    :param max_empty_pages: empty pages in a row (each costs a credit) after which the run stops.
    :param fail_on_low_balance: raise :class:`RunStopped` on truncation or 402, else end ``balance_truncated``.
    """

    page_size: int = MAX_PAGE_SIZE
    max_empty_pages: int = 3
    fail_on_low_balance: bool = True


@dataclass(frozen=True)
class RunStart:
    """What a fresh run starts from (a resumed one reads all of it from its checkpoint).

    :param hashtag_name: the name ``hashtag_id`` was resolved from, if any.
    :param initial_balance: a remembered balance reading, used until a response tells the real one.
    :param resolution_credits: credits already spent resolving the name (counted in budgets).
    """

    hashtag_name: str | None = None
    initial_balance: BalanceReading | None = None
    resolution_credits: int = 0


class RunStopped(Exception):
    """The run stopped for lack of credits (truncation or 402) and must fail so a retry resumes it.

    :param message: what happened and what to do.
    :param summary: the summary so far (records kept, credits, balance).
    :param cause: the 402 error, or ``None`` for a page truncated by balance.
    """

    def __init__(self, message: str, summary: dict[str, Any], cause: UnifAPIError | None = None) -> None:
        super().__init__(message)
        self.summary = summary
        self.cause = cause


class HashtagVideoCollector:
    """Pages one hashtag's videos into a :class:`RunOutput` under a :class:`Budget` (all in :meth:`run`).

    :param client: the UnifAPI client.
    :param hashtag_id: numeric hashtag id.
    :param output: where records go (an object-storage folder, or XCom).
    :param budget: the run's hard limits, over all tries.
    :param paging: page size, empty-page bound, what a low balance does.
    :param start: what a fresh run starts from.
    :param logger: where page and summary lines go (the task's logger in Airflow).
    :param on_page: called after each page is committed, with the page and the checkpoint.
    :param pace: when progress lines are due (a batch shares one across its chains).
    """

    def __init__(
        self,
        client: UnifAPIClient,
        hashtag_id: str,
        *,
        output: RunOutput,
        budget: Budget | None = None,
        paging: PagingSettings | None = None,
        start: RunStart | None = None,
        logger: PageLogger | None = None,
        on_page: Callable[[VideoPage, Checkpoint], None] | None = None,
        pace: LinePace | None = None,
    ) -> None:
        self.client = client
        self.hashtag_id = hashtag_id
        self.output = output
        self.budget = budget or Budget()
        self.paging = paging or PagingSettings()
        self.start = start or RunStart()
        self.log: PageLogger = logger or log
        self.on_page = on_page
        self.resumed = False
        self.ids = IdSet()
        self.progress = ProgressLog(self.log, self.budget, pace=pace)
        #: credits spent by earlier tries (and runs of a stopped folder), known once the run opens
        self.spent_before = 0
        self._low_balance_cause: UnifAPIError | VideoPage | None = None

    # -- start and resume -------------------------------------------------------------------------
    def _open(self) -> Checkpoint:
        earlier = self.output.open(self.hashtag_id)
        if earlier is None:
            cp = Checkpoint(
                hashtag_id=self.hashtag_id,
                hashtag_name=self.start.hashtag_name,
                output_format=self.output.output_format or "xcom",
                credits_charged=self.start.resolution_credits,
                resolution_credits=self.start.resolution_credits,
            )
        else:
            cp, self.resumed = earlier, True
            # The previous try died during (or just before) a call: it may have been billed.
            cp.count_in_flight()
            self.ids = self.output.load_ids(cp)
            if self.output.keeps_records:
                self.log.info(
                    f"Resuming hashtag {cp.hashtag_id} from its checkpoint: {cp.pages} pages, {cp.records} "
                    f"records, {cp.credits_charged} credits confirmed + {cp.possibly_billed_credits} possibly "
                    f"billed over {cp.tries} earlier tries; the next page is the first not yet paid for"
                )
            else:
                self.log.info(
                    f"Retrying hashtag {cp.hashtag_id}: {cp.tries} earlier tries spent {cp.credits_charged} "
                    f"credits confirmed + {cp.possibly_billed_credits} possibly billed, counted against the "
                    "budget; their records were not kept (XCom mode), so paging restarts"
                )
        self._note_remembered(cp)
        cp.tries += 1
        self.spent_before = cp.credits_spent
        return cp

    # -- the loop ---------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Fetch pages until a stop reason; return the summary (also written as ``_manifest.json``).

        :raises RunStopped: the balance ran out and ``fail_on_low_balance`` is set.
        :raises UnifAPIError: a call failed (the checkpoint is saved first).
        """
        try:
            cp = self._open()
            self.progress.opening(cp, url=self.output.url, page_size=self.paging.page_size)
            if cp.finished:  # a try died after the feed's last page, before the manifest
                stop = StopReason(cp.stop_reason or StopReason.EXHAUSTED)
            else:
                stop = self._page_until_stop(cp)
            if stop is StopReason.BALANCE_TRUNCATED and self.paging.fail_on_low_balance:
                raise self._stopped(cp)
            return self._finish(cp, stop)
        finally:
            self.output.close()

    def _page_until_stop(self, cp: Checkpoint) -> StopReason:
        pager = VideoPager(cp.cursor, max_empty_pages=self.paging.max_empty_pages)
        pager.empty_run = cp.empty_pages_in_row
        try:
            plan = self.budget.next_call(self.paging.page_size, cp)
            while plan.stop_reason is None:
                page = self._call(cp, plan)
                if page is None:  # 402: nothing charged, the balance is known
                    return StopReason.BALANCE_TRUNCATED
                plan = self._take(cp, page, pager)
            return plan.stop_reason
        finally:
            self.budget.settle(cp)  # a failed call's charge, or a plan reserved and never called

    def _call(self, cp: Checkpoint, plan: CallPlan) -> VideoPage | None:
        """One page, or ``None`` for a 402; the checkpoint says what it may have cost either way."""
        if cp.in_flight_credits != plan.worst_case_credits:
            cp.in_flight_credits = plan.worst_case_credits  # write-ahead: a try killed in the call counts it
            self.output.save(cp)
        try:
            return self.client.get_video_page(
                self.hashtag_id,
                cursor=cp.cursor,
                limit=plan.limit,
                max_credits=plan.max_credits,
                before_retry=lambda worst_case: self._before_retry(cp, worst_case),
            )
        except UnifAPIError as exc:
            cp.in_flight_credits = 0
            cp.add_possibly_billed(exc.possibly_billed_credits)
            cp.note_request_id(exc.request_id)
            if not isinstance(exc, UnifAPIInsufficientCreditsError):
                self.output.save(cp)
                raise
            self._note_balance(cp, exc.balance_remaining)
            self.output.save(cp)
            self._low_balance_cause = exc
            return None

    def _before_retry(self, cp: Checkpoint, worst_case: int) -> None:
        # The client retries inside one call and each retry may be billed: commit it before it is
        # sent, so a try killed during the retry still has it counted by the next try.
        cp.in_flight_credits += worst_case
        self.output.save(cp)

    def _take(self, cp: Checkpoint, page: VideoPage, pager: VideoPager) -> CallPlan:
        """Account for a page, keep its new records and commit; returns the next call's plan (with
        the stop reason when there is none)."""
        cp.in_flight_credits = 0
        cp.credits_charged += page.billing.credits_charged
        cp.add_possibly_billed(page.call_stats.possibly_billed_credits)
        self._note_balance(cp, page.billing.balance_remaining)  # after: it reflects those attempts
        self.budget.settle(cp)  # before the next call is planned
        cp.last_request_id = page.request_id
        kept = self._keep(cp, page)
        pager.consume(page)
        cp.pages += 1
        cp.cursor = pager.cursor
        cp.empty_pages_in_row = pager.empty_run
        stop = None if pager.stop_reason is None else StopReason(pager.stop_reason)
        if stop is StopReason.BALANCE_TRUNCATED:
            cp.note_request_id(page.request_id)
            self._low_balance_cause = page
        else:
            self.output.page_done(cp)
        if stop is None:
            # Write-ahead for the next call in this same commit: one checkpoint write per page.
            plan = self.budget.next_call(self.paging.page_size, cp)
            cp.in_flight_credits = 0 if plan.stop_reason is not None else plan.worst_case_credits
        else:
            plan = CallPlan(0, stop_reason=stop)
            if stop.ends_feed:
                # Committed with the last page: a try killed before the manifest only closes the run.
                cp.finished, cp.stop_reason = True, stop
        self.output.save(cp)
        self._log_page(cp, page, kept, last=plan.stop_reason is not None)
        if self.on_page is not None:
            self.on_page(page, cp)
        return plan

    def _note_remembered(self, cp: Checkpoint) -> None:
        """A remembered reading newer than the run's own (a top-up the sensor saw) stands in."""
        reading = self.start.initial_balance
        if reading is None:
            return
        seen_at = reading.seen_at.astimezone(timezone.utc).isoformat()
        if cp.balance_seen_at is None or datetime.fromisoformat(cp.balance_seen_at) < reading.seen_at:
            cp.balance_remaining, cp.balance_seen_at = reading.balance, seen_at

    def _note_balance(self, cp: Checkpoint, balance: int | None) -> None:
        if balance is not None:
            cp.balance_remaining = balance
            cp.balance_seen_at = datetime.now(timezone.utc).isoformat()
            cp.possibly_billed_since_balance = 0  # this reading already reflects them

    def _keep(self, cp: Checkpoint, page: VideoPage) -> int:
        """Dedupe a page by id and hand the new records to the output; returns how many were kept."""
        kept = [video for video in page.data if self.ids.add(video.id)]
        dropped = len(page.data) - len(kept)
        if self.budget.max_records is not None:
            room = self.budget.max_records - cp.records
            if len(kept) > room:  # the API returned more than asked: never pass max_records
                dropped += len(kept) - room
                kept = kept[:room]
        cp.duplicates_dropped += dropped
        cp.records += len(kept)
        if kept:
            self.output.keep(cp, kept, page.request_id)
        return len(kept)

    def _log_page(self, cp: Checkpoint, page: VideoPage, kept: int, *, last: bool) -> None:
        self.progress.page(cp, kept, page.billing.balance_remaining, last=last)

    # -- endings ----------------------------------------------------------------------------------
    def _stopped(self, cp: Checkpoint) -> RunStopped:
        cause = self._low_balance_cause
        if isinstance(cause, VideoPage):
            what = (
                f"a page was cut short by the workspace balance ({len(cause.data)} records received and kept)"
            )
            # The cut-short page's cursor is not followed (the spec leaves open whether it skips the
            # records not returned), so the retry asks that page again, and the API bills it again.
            repay = (
                f"asks the cut-short page again from its cursor and pays for it again: the API bills every "
                f"record it returns, at least 1 credit a call, so up to {self.paging.page_size} credits "
                f"(the {len(cause.data)} records already kept come back as duplicates and are dropped); "
                "no page before it is paid again"
            )
        else:
            what = "the API answered 402 insufficient_credits (nothing charged)"
            repay = "asks the same page again; nothing already paid for is paid again"
        if self.output.keeps_records:
            kept = f"{cp.records} records are kept and checkpointed in {self.output.url}"
            resume = f"it resumes from the checkpoint and {repay}"
        else:
            kept = f"{cp.records} records were received; XCom mode keeps none across tries"
            resume = "it pages again from the start" + (
                "; the credits spent so far still count against max_credits"
                if self.output.keeps_budget
                else " with a fresh budget (Airflow < 3.3 keeps nothing across tries in XCom mode)"
            )
        message = (
            f"UnifAPI balance too low for hashtag {self.hashtag_id}: {what}; balance {cp.balance_remaining} "
            f"credits. {kept}. Top up the workspace, then retry (or clear) this task: {resume}."
        )
        error = cause if isinstance(cause, UnifAPIError) else None
        return RunStopped(message, self.summary(cp, StopReason.BALANCE_TRUNCATED), error)

    def summary(self, cp: Checkpoint, stop_reason: StopReason) -> dict[str, Any]:
        """The run's summary: what the task returns and ``_manifest.json`` holds.

        :param cp: the run's checkpoint.
        :param stop_reason: why the run stopped.
        """
        return {
            "output_path": self.output.url,
            "files": [part.name for part in cp.parts],
            "records": cp.records,
            "pages": cp.pages,
            "credits_charged": cp.credits_charged,
            "possibly_billed_credits": cp.possibly_billed_credits,
            "resolution_credits": cp.resolution_credits,
            "balance_remaining": cp.balance_remaining,
            "balance_seen_at": cp.balance_seen_at,
            "duplicates_dropped": cp.duplicates_dropped,
            "stop_reason": stop_reason.value,
            "status": HashtagStatus.of(stop_reason, cp.pages).value,
            "credits_spent_this_try": cp.credits_spent - self.spent_before,
            "next_cursor": None if stop_reason is StopReason.EXHAUSTED else cp.cursor,
            "resumed": self.resumed,
            "tries": cp.tries,
            "hashtag_id": cp.hashtag_id,
            "hashtag_name": cp.hashtag_name,
            "output_format": self.output.output_format,
        }

    def _finish(self, cp: Checkpoint, stop_reason: StopReason) -> dict[str, Any]:
        # Only the feed's end finishes a run; a limit's stop keeps the checkpoint and its cursor, so a
        # raised limit (or a top-up) continues without paying again for any page.
        cp.finished, cp.stop_reason = stop_reason.ends_feed, stop_reason
        if HashtagStatus.of(stop_reason, cp.pages) is HashtagStatus.SKIPPED:
            self.output.skip(cp)
            summary = self.summary(cp, stop_reason)
        else:
            self.output.finish(cp)  # closes the last part, which the summary lists
            summary = self.summary(cp, stop_reason)
            self.output.complete(cp, summary)
        self.progress.closing(cp, stop_reason.value)
        return summary
