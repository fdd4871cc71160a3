"""Many hashtags in one task (docs/batch.md): up to ``max_concurrency`` chains at once, each a
:class:`~.run.HashtagRun` into ``<base>/hashtag=<id>/``, sharing one client (one pool, one pacer)
and one :class:`~.shared_budget.SharedBudget`. A chain's fatal error ends that chain only.
"""

from __future__ import annotations

import logging
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any

from airflow_provider_unifapi.client import UnifAPIClient
from airflow_provider_unifapi.collector.budget import Budget, credits_spent, dollars
from airflow_provider_unifapi.collector.loop import PagingSettings
from airflow_provider_unifapi.collector.names import NameBook
from airflow_provider_unifapi.collector.output import FileStore, ObjectStorageOutput, write_json
from airflow_provider_unifapi.collector.progress import LinePace, PageLogger
from airflow_provider_unifapi.collector.results import HashtagResult, HashtagTarget
from airflow_provider_unifapi.collector.run import HashtagRun
from airflow_provider_unifapi.collector.shared_budget import HashtagBudget, SharedBudget
from airflow_provider_unifapi.exceptions import UnifAPIError
from airflow_provider_unifapi.models import HashtagStatus
from airflow_provider_unifapi.storage.claim import FolderClaim
from airflow_provider_unifapi.storage.fsio import FolderIO
from airflow_provider_unifapi.storage.run_folder import RunFolder

log = logging.getLogger(__name__)

BATCH_MANIFEST = "_batch_manifest.json"
#: the batch's book of name resolutions (:mod:`.names`), so a retry pays for none again
NAMES_FILE = "_batch_names.json"


@dataclass(frozen=True)
class BatchSettings:
    """How every chain of the batch writes and pages.

    :param output_format: ``jsonl``, ``jsonl.gz`` or ``parquet``.
    :param records_per_part: records per part file.
    :param gzip_level: compression level of ``jsonl.gz`` parts.
    :param per_hashtag: each hashtag's own caps.
    :param paging: page size, empty-page bound, what a low balance does.
    :param max_concurrency: cursor chains paged at once.
    :param overwrite: clear every hashtag's earlier run and fetch again.
    :param owner: who writes (task instance and try), shown to a writer refused by a claim.
    """

    output_format: str
    records_per_part: int
    gzip_level: int
    per_hashtag: Budget
    paging: PagingSettings
    max_concurrency: int
    overwrite: bool = False
    owner: str = ""


class HashtagBatch:
    """Pages a batch of hashtags under one shared budget; :meth:`run` returns the batch manifest.

    :param client: the shared client (its pool should hold ``max_concurrency`` connections).
    :param base: the batch's folder (an ``ObjectStoragePath`` or universal-pathlib path).
    :param url: the folder's URL as the user gave it.
    :param items: the hashtags.
    :param settings: output and paging settings.
    :param shared: the batch's shared ``max_credits`` / ``min_balance``.
    :param logger: where lines go (the task's logger in Airflow).
    """

    def __init__(
        self,
        client: UnifAPIClient,
        base: Any,
        url: str,
        items: list[HashtagTarget],
        settings: BatchSettings,
        shared: SharedBudget,
        logger: PageLogger | None = None,
    ) -> None:
        self.client = client
        self.base = base
        self.url = url.rstrip("/")
        self.items = items
        self.settings = settings
        self.shared = shared
        self.log: PageLogger = logger or log
        self.io = FolderIO(base)
        self.pace = LinePace()

    # -- the batch --------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Resolve names, page every hashtag (finished ones reused for 0 credits), write the manifest.

        :raises UnifAPIInputError: the base folder cannot be written (before anything is paid).
        :raises UnifAPIFolderBusyError: another live try or run writes this batch's folder.
        """
        claim = FolderClaim(self.io, self.url, self.settings.owner)
        claim.acquire()
        try:
            self._log_opening()
            names = NameBook(self.client, FileStore(self.io, NAMES_FILE), self.shared, self.log)
            names.open()
            self._count_earlier_spend(names)
            targets = _same_hashtags([names.resolve(item) for item in self.items])
            with ThreadPoolExecutor(
                self.settings.max_concurrency, thread_name_prefix="unifapi-chain"
            ) as pool:
                results = list(pool.map(self._chain, targets))
            manifest = self._manifest(results, names)
            write_json(self.io, BATCH_MANIFEST, manifest)
        finally:
            claim.release()
        return manifest

    def _log_opening(self) -> None:
        cap, floor = self.shared.max_credits, self.shared.min_balance
        budget = "no max_credits (set it to cap the batch's spend)"
        if cap is not None:
            budget = f"batch budget {cap:,} credits ({dollars(cap)}) over all tries"
        floor_text = "" if floor is None else f", keeping the balance >= {floor:,}"
        self.log.info(
            f"Collecting {len(self.items)} hashtags into {self.url}: {budget}{floor_text}, "
            f"{self.settings.max_concurrency} at once, pages of {self.settings.paging.page_size}"
        )

    def _folder(self, hashtag_id: str) -> RunFolder:
        s = self.settings
        return RunFolder(self.base / f"hashtag={hashtag_id}", s.output_format, gzip_level=s.gzip_level)

    def _count_earlier_spend(self, names: NameBook) -> None:
        """Seed the shared budget with what earlier tries spent, so the cap holds over all tries."""
        for item in self.items:
            hashtag_id = item.hashtag_id or names.known_id(item.hashtag_name)
            if hashtag_id is None:
                continue
            output = ObjectStorageOutput(self._folder(hashtag_id))
            # Each with its last balance reading: the newest of them stands for the balance until
            # this try's first response (a finished hashtag's may be the only recent one). A checkpoint
            # is never older than the manifest beside it (a stopped run being continued).
            if self._settle_from_checkpoint(hashtag_id, output):
                continue
            manifest = output.folder.read_manifest()
            if manifest is not None:
                reading = manifest.get("balance_remaining"), manifest.get("balance_seen_at")
                self.shared.settle(hashtag_id, credits_spent(manifest), *reading)

    # -- one chain --------------------------------------------------------------------------------
    def _chain(self, item: HashtagTarget | HashtagResult) -> HashtagResult:
        """Run one hashtag; never raises for an API or folder error (the batch finishes the others)."""
        if isinstance(item, HashtagResult):
            return item
        assert item.hashtag_id is not None
        s = self.settings
        output = ObjectStorageOutput(
            self._folder(item.hashtag_id),
            records_per_part=s.records_per_part,
            url=f"{self.url}/hashtag={item.hashtag_id}/",
        )
        p = s.per_hashtag
        budget = HashtagBudget(
            max_records=p.max_records,
            max_pages=p.max_pages,
            max_credits=p.max_credits,
            shared=self.shared,
            key=item.hashtag_id,
        )
        run = HashtagRun(
            self.client,
            item,
            output,
            budget=budget,
            paging=s.paging,
            overwrite=s.overwrite,
            owner=s.owner,
            logger=self.log,
            pace=self.pace,
        )
        try:
            return run.run()  # a chain that pages settles with the shared budget after every call
        except UnifAPIError as exc:  # the folder refused this writer: nothing was paid
            self._settle_from_checkpoint(item.hashtag_id, output)
            return HashtagResult(item, HashtagStatus.FAILED, {"output_path": output.url}, error=exc)

    def _settle_from_checkpoint(self, hashtag_id: str, output: ObjectStorageOutput) -> bool:
        """Settle a chain from its saved checkpoint (an earlier try's), if it has one. A call in flight
        when a try died counts as possibly billed."""
        cp = output.earlier_checkpoint()
        output.close()
        if cp is None:
            return False
        cp.count_in_flight()
        self.shared.settle_checkpoint(hashtag_id, cp)
        return True

    # -- the batch manifest -----------------------------------------------------------------------
    def _manifest(self, results: list[HashtagResult], names: NameBook) -> dict[str, Any]:
        rows = [result.row() for result in results]
        resolution = names.credits
        charged = sum(r["credits_charged"] for r in rows)
        possibly = sum(r["possibly_billed_credits"] for r in rows)
        failures = [
            {"hashtag": r["hashtag"], **r["error"]} for r in rows if r["status"] == HashtagStatus.FAILED
        ]
        by_status = Counter(r["status"] for r in rows)
        return {
            "output_path": self.url,
            "hashtags": rows,
            "failures": failures,
            "totals": {
                "hashtags": len(rows),
                "by_status": {status.value: by_status[status.value] for status in HashtagStatus},
                "reused": sum(r["reused"] for r in rows),
                "stop_reasons": dict(Counter(r["stop_reason"] for r in rows if r["stop_reason"])),
                "records": sum(r["records"] for r in rows),
                "credits_charged": charged,
                "possibly_billed_credits": possibly,
                "resolution_credits": resolution,
                "credits_spent": charged + possibly + resolution,
                "credits_spent_this_try": sum(r["credits_spent_this_try"] for r in rows)
                + resolution
                - names.credits_at_open,
            },
            "max_credits": self.shared.max_credits,
            "min_balance": self.shared.min_balance,
            "written_at": datetime.now(timezone.utc).isoformat(),
        }


def _same_hashtags(items: list[HashtagTarget | HashtagResult]) -> list[HashtagTarget | HashtagResult]:
    """Drop inputs that resolved to a hashtag listed before (a name and its id): one chain per folder.

    The first input of a hashtag runs it; its result names the others in ``same_as``.
    """
    first: dict[str, int] = {}
    same: dict[str, list[str]] = {}
    kept: list[HashtagTarget | HashtagResult] = []
    for item in items:
        if isinstance(item, HashtagTarget) and item.hashtag_id is not None:
            if item.hashtag_id in first:
                same[item.hashtag_id].append(item.key)
                continue
            first[item.hashtag_id], same[item.hashtag_id] = len(kept), []
        kept.append(item)
    return [
        replace(item, same_as=tuple(same[item.hashtag_id]))
        if isinstance(item, HashtagTarget) and item.hashtag_id in same
        else item
        for item in kept
    ]
