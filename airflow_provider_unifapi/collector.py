"""The paging loop behind the operator: budgets, dedupe, checkpoint after every page, summary.

Pure Python over the client and the storage layer (no Airflow), so the operator stays a thin
shell and benchmarks can drive the very same loop.

Money rules enforced here:
- before each call the worst-case cost is known (``limit``, at least 1), and ``limit`` shrinks so
  that credits spent over all tries (confirmed + possibly billed) never pass ``max_credits`` and the
  last known balance never drops below ``min_balance``;
- the worst-case cost of the call about to be made is written to the checkpoint first, so a try
  killed mid-call still has that call counted by the next try;
- a page truncated by balance is kept but its cursor is not followed.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from airflow_provider_unifapi.client import MAX_PAGE_SIZE, UnifAPIClient, VideoPager
from airflow_provider_unifapi.exceptions import (
    UnifAPIError,
    UnifAPIInputError,
    UnifAPIInsufficientCreditsError,
)
from airflow_provider_unifapi.models import Video, VideoPage
from airflow_provider_unifapi.storage.checkpoint import Checkpoint, CheckpointStore
from airflow_provider_unifapi.storage.idset import IdSet
from airflow_provider_unifapi.storage.run_folder import RunFolder

log = logging.getLogger(__name__)

# The model's own serializer: the same bytes as ``model_dump_json`` (unknown fields included), without
# the per-call wrapper of TypeAdapter.dump_json (~1 us a record, a quarter of serialising).
_VIDEO_JSON = Video.__pydantic_serializer__.to_json


def check_budget_value(argument: str, value: Any, *, minimum: int) -> int | None:
    """``None`` or an int >= ``minimum`` (templated strings of digits accepted), else a named error."""
    if value is None:
        return None
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,18}", value.strip()):
        value = int(value.strip())  # a rendered template arrives as text
    if isinstance(value, bool) or not isinstance(value, int):
        raise UnifAPIInputError(argument, f"must be None or an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise UnifAPIInputError(argument, f"must be None or an integer >= {minimum}, got {value}")
    return value


@dataclass(frozen=True)
class Budget:
    """Hard limits of one run, counted over all tries.

    :param max_records: stop after exactly this many unique records.
    :param max_pages: stop after this many calls for pages.
    :param max_credits: never spend more (confirmed + possibly billed, name resolution included).
    :param min_balance: never let the last known workspace balance drop below this.
    """

    max_records: int | None = None
    max_pages: int | None = None
    max_credits: int | None = None
    min_balance: int | None = None

    def next_call(
        self, page_size: int, cp: Checkpoint, balance: int | None
    ) -> tuple[int, int | None, str | None]:
        """``(limit, credit cap for the call, stop reason)`` for the next page.

        A stop reason means no call may be made. With ``min_balance`` set and no balance known yet,
        the first call asks for one record to learn the balance.
        """
        limit = page_size
        cap: int | None = None
        if self.max_records is not None:
            left = self.max_records - cp.records
            if left < 1:
                return 0, None, "max_records"
            limit = min(limit, left)
        if self.max_pages is not None and cp.pages >= self.max_pages:
            return 0, None, "max_pages"
        if self.max_credits is not None:
            left = self.max_credits - cp.credits_spent_worst_case
            if left < 1:
                return 0, None, "max_credits"
            limit = min(limit, left)
            cap = left
        if self.min_balance is not None:
            if balance is None:
                limit = 1
            else:
                left = balance - self.min_balance
                if left < 1:
                    return 0, None, "min_balance"
                limit = min(limit, left)
                cap = left if cap is None else min(cap, left)
        return limit, cap, None


class RunStopped(Exception):
    """The run stopped for lack of credits (truncation or 402) and must fail so a retry resumes it.

    :param summary: the summary so far (records kept, credits, balance).
    """

    def __init__(self, message: str, summary: dict[str, Any], cause: UnifAPIError | None = None) -> None:
        super().__init__(message)
        self.summary = summary
        self.cause = cause


class HashtagVideoCollector:
    """Pages one hashtag's videos into a run folder (or a list, for XCom) under a :class:`Budget`.

    :param client: the UnifAPI client.
    :param hashtag_id: numeric hashtag id.
    :param folder: the run folder, or ``None`` for XCom mode (records kept in memory, no resume).
    :param page_size: records per call, 1 to 50.
    :param records_per_part: staged records compacted into one part file.
    :param fail_on_low_balance: raise :class:`RunStopped` on truncation or 402 (default); when
        False, finish with stop reason ``balance_truncated``.
    :param max_empty_pages: empty pages in a row (each costs a credit) after which the run stops.
    :param initial_balance: a remembered balance, used until the first response tells the real one.
    :param resolution_credits: credits already spent resolving a hashtag name (counted in budgets).
    """

    def __init__(
        self,
        client: UnifAPIClient,
        hashtag_id: str,
        *,
        folder: RunFolder | None,
        budget: Budget,
        page_size: int = MAX_PAGE_SIZE,
        records_per_part: int = 10_000,
        fail_on_low_balance: bool = True,
        max_empty_pages: int = 3,
        hashtag_name: str | None = None,
        initial_balance: int | None = None,
        resolution_credits: int = 0,
        output_path: str | None = None,
        logger: logging.Logger | None = None,
        on_page: Callable[[VideoPage, Checkpoint], None] | None = None,
    ) -> None:
        self.client = client
        self.hashtag_id = hashtag_id
        self.hashtag_name = hashtag_name
        self.folder = folder
        self.budget = budget
        self.page_size = page_size
        self.records_per_part = records_per_part
        self.fail_on_low_balance = fail_on_low_balance
        self.max_empty_pages = max_empty_pages
        self.output_path = output_path
        self.log = logger or log
        self.on_page = on_page
        self.store = CheckpointStore(folder.io) if folder is not None else None
        self.resumed = False
        self.records_in_memory: list[dict[str, Any]] = []
        self.checkpoint = self._load_or_start(initial_balance, resolution_credits)

    # -- start and resume -------------------------------------------------------------------------
    def _load_or_start(self, initial_balance: int | None, resolution_credits: int) -> Checkpoint:
        if self.folder is not None:
            self.folder.prepare()
        existing = self.store.load() if self.store is not None else None
        if existing is None:
            cp = Checkpoint(
                hashtag_id=self.hashtag_id,
                hashtag_name=self.hashtag_name,
                output_format=self.folder.output_format if self.folder else "xcom",
                credits_charged=resolution_credits,
                resolution_credits=resolution_credits,
                balance_remaining=initial_balance,
            )
            if self.folder is not None:
                # Nothing to resume: parts left by an earlier run without a checkpoint (a lost or
                # deleted one) must be replaced, not appended to.
                self.folder.remove_stray_files(cp)
                self.folder.clear_staging()
            self.ids = IdSet()
        else:
            cp = existing
            if cp.hashtag_id != self.hashtag_id or cp.output_format != self.folder.output_format:  # type: ignore[union-attr]
                raise UnifAPIInputError(
                    "output_path",
                    f"already holds an unfinished run for hashtag {cp.hashtag_id} in {cp.output_format}; "
                    "use another output_path (e.g. one templated with {{ ds }}) or overwrite=True",
                )
            self.resumed = True
            if cp.pending_call_credits:
                # The previous try died during (or just before) a call: it may have been billed.
                cp.add_unconfirmed(cp.pending_call_credits)
                cp.pending_call_credits = 0
            assert self.folder is not None
            self.ids = self.folder.recover(cp)
            self.log.info(
                "Resuming hashtag %s from its checkpoint: %d pages, %d records, %d credits confirmed "
                "+ %d possibly billed over %d earlier tries; the next page is the first not yet paid for",
                cp.hashtag_id,
                cp.pages,
                cp.records,
                cp.credits_charged,
                cp.credits_unconfirmed,
                cp.tries,
            )
        cp.tries += 1
        return cp

    # -- the loop ---------------------------------------------------------------------------------
    def _save(self) -> None:
        if self.store is not None:
            self.store.save(self.checkpoint)

    def _balance(self) -> int | None:
        # What min_balance is checked against: the last balance seen, less anything that may have
        # been billed since without the API telling us (a lost or unreadable response).
        return self.checkpoint.balance_worst_case

    def _note_balance(self, balance: int | None) -> None:
        if balance is not None:
            self.checkpoint.balance_remaining = balance
            self.checkpoint.balance_seen_at = datetime.now(timezone.utc).isoformat()
            self.checkpoint.unconfirmed_since_balance = 0  # this reading already reflects them

    def run(self) -> dict[str, Any]:
        """Fetch pages until a stop reason; return the summary (also written as ``_manifest.json``)."""
        try:
            return self._run()
        finally:
            if self.store is not None:
                self.store.close()

    def _run(self) -> dict[str, Any]:
        cp = self.checkpoint
        if cp.finished:
            return self._finish(cp.stop_reason or "exhausted")
        pager = VideoPager(cp.cursor, max_empty_pages=self.max_empty_pages)
        pager.empty_run = cp.empty_pages_in_row
        started = time.monotonic()
        records_this_try = 0
        stop_reason: str | None = None
        while True:
            limit, cap, stop_reason = self.budget.next_call(self.page_size, cp, self._balance())
            if stop_reason is not None:
                break
            if cp.pending_call_credits != limit:
                cp.pending_call_credits = limit  # write-ahead: a try killed in the call still counts it
                self._save()
            try:
                page = self.client.get_video_page(
                    self.hashtag_id,
                    cursor=cp.cursor,
                    limit=limit,
                    max_credits=cap,
                    before_retry=self._before_retry,
                )
            except UnifAPIError as exc:
                cp.pending_call_credits = 0
                cp.add_unconfirmed(exc.possibly_billed_credits)
                cp.note_request_id(exc.request_id)
                if isinstance(exc, UnifAPIInsufficientCreditsError):
                    self._note_balance(exc.balance_remaining)
                    self._save()
                    return self._low_balance(exc)
                self._save()
                raise
            cp.pending_call_credits = 0
            cp.credits_charged += page.billing.credits_charged
            cp.add_unconfirmed(page.call_stats.possibly_billed_credits)
            self._note_balance(page.billing.balance_remaining)  # after: it reflects those attempts
            cp.last_request_id = page.request_id
            kept = self._keep(page)
            records_this_try += kept
            pager.consume(page)
            cp.pages += 1
            cp.cursor = pager.cursor
            cp.empty_pages_in_row = pager.empty_run
            if pager.stop_reason == "balance_truncated":
                cp.note_request_id(page.request_id)
            elif self.folder is not None and self.folder.pending_records(cp) >= self.records_per_part:
                self._close_part()
            if pager.done:
                if pager.stop_reason != "balance_truncated":
                    # Committed with the last page: a try killed before the manifest only closes the run.
                    cp.finished, cp.stop_reason = True, pager.stop_reason
            else:
                # Write-ahead for the next call in this same commit: one checkpoint write per page.
                next_limit, _, next_stop = self.budget.next_call(self.page_size, cp, self._balance())
                cp.pending_call_credits = next_limit if next_stop is None else 0
            self._save()
            self._log_page(page, kept, started, records_this_try)
            if self.on_page is not None:
                self.on_page(page, cp)
            if pager.stop_reason == "balance_truncated":
                return self._low_balance(None, page=page)
            if pager.done:
                stop_reason = pager.stop_reason
                break
        return self._finish(stop_reason or "exhausted")

    def _before_retry(self, worst_case: int) -> None:
        # The client retries inside one call; each retry may be billed. Record it before it is sent,
        # so a try killed during the retry still has it counted by the next try.
        self.checkpoint.pending_call_credits += worst_case
        self._save()

    def _keep(self, page: VideoPage) -> int:
        """Dedupe a page by id and stage (or collect) the new records; returns how many were kept."""
        cp = self.checkpoint
        kept: list[Video] = []
        for video in page.data:
            if self.ids.add(video.id):
                kept.append(video)
        dropped = len(page.data) - len(kept)
        if self.budget.max_records is not None:
            room = self.budget.max_records - cp.records
            if len(kept) > room:  # the API returned more than asked: never pass max_records
                dropped += len(kept) - room
                kept = kept[:room]
        cp.duplicates_dropped += dropped
        cp.records += len(kept)
        if not kept:
            return 0
        if self.folder is None:
            self.records_in_memory.extend(v.model_dump(mode="json") for v in kept)
        else:
            payload = b"\n".join([_VIDEO_JSON(v) for v in kept]) + b"\n"
            self.folder.add_page(cp, payload, page.request_id, len(kept))
        return len(kept)

    def _close_part(self) -> None:
        assert self.folder is not None and self.store is not None
        cp = self.checkpoint
        done = self.folder.close_part(cp)
        self.store.compact(cp)  # the part is committed; the journal restarts from here
        self.folder.drop_staged(done)

    def _log_page(self, page: VideoPage, kept: int, started: float, records_this_try: int) -> None:
        cp = self.checkpoint
        elapsed = max(time.monotonic() - started, 1e-9)
        self.log.info(
            "page %d: %d records (%d kept), %d credits (run total %d confirmed + %d possibly billed), "
            "balance %s, %.0f records/s, request_id %s",
            cp.pages,
            len(page.data),
            kept,
            page.billing.credits_charged,
            cp.credits_charged,
            cp.credits_unconfirmed,
            page.billing.balance_remaining,
            records_this_try / elapsed,
            page.request_id,
        )

    # -- endings ----------------------------------------------------------------------------------
    def _low_balance(self, exc: UnifAPIError | None, page: VideoPage | None = None) -> dict[str, Any]:
        cp = self.checkpoint
        if not self.fail_on_low_balance:
            return self._finish("balance_truncated")
        summary = self.summary("balance_truncated")
        what = (
            f"a page was truncated by the workspace balance ({len(page.data)} records received and kept)"
            if page is not None
            else "the API answered 402 insufficient_credits (nothing charged)"
        )
        message = (
            f"UnifAPI balance too low for hashtag {self.hashtag_id}: {what}; balance {cp.balance_remaining} "
            f"credits. {cp.records} records are kept and checkpointed"
            + (f" in {self.output_path}" if self.output_path else "")
            + ". Top up the workspace, then retry (or clear) this task: it resumes from the same cursor "
            "without paying again for what it has."
        )
        raise RunStopped(message, summary, exc)

    def summary(self, stop_reason: str) -> dict[str, Any]:
        cp = self.checkpoint
        return {
            "output_path": self.output_path,
            "files": [part.name for part in cp.parts],
            "records": cp.records,
            "pages": cp.pages,
            "credits_charged": cp.credits_charged,
            "credits_unconfirmed": cp.credits_unconfirmed,
            "resolution_credits": cp.resolution_credits,
            "balance_remaining": cp.balance_remaining,
            "balance_seen_at": cp.balance_seen_at,
            "duplicates_dropped": cp.duplicates_dropped,
            "stop_reason": stop_reason,
            "next_cursor": None if stop_reason == "exhausted" else cp.cursor,
            "resumed": self.resumed,
            "tries": cp.tries,
            "hashtag_id": cp.hashtag_id,
            "hashtag_name": cp.hashtag_name,
            "output_format": None if self.folder is None else self.folder.output_format,
        }

    def _finish(self, stop_reason: str) -> dict[str, Any]:
        cp = self.checkpoint
        if self.folder is not None:
            self._close_part()
            cp.finished = True
            cp.stop_reason = stop_reason
            self._save()
            summary = self.summary(stop_reason)
            manifest = {
                **summary,
                "parts": [part.model_dump() for part in cp.parts],
                "request_ids": {
                    "last": cp.last_request_id,
                    "notable": list(cp.notable_request_ids),
                },
                "written_at": datetime.now(timezone.utc).isoformat(),
            }
            self.folder.write_manifest(manifest)
            self.store.close()  # type: ignore[union-attr]
            self.folder.finish()
        else:
            summary = self.summary(stop_reason)
        self.log.info(
            "Done with hashtag %s: %d records in %d pages, stop reason %s, %d credits charged "
            "(+%d possibly billed) over %d tries, %d duplicates dropped, balance %s",
            self.hashtag_id,
            cp.records,
            cp.pages,
            stop_reason,
            cp.credits_charged,
            cp.credits_unconfirmed,
            cp.tries,
            cp.duplicates_dropped,
            cp.balance_remaining,
        )
        return summary
