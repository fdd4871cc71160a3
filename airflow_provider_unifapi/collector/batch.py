"""Many hashtags in one task: up to ``max_concurrency`` cursor chains at once, one folder each.

Pure Python over the client and the storage layer (no Airflow), like :mod:`.loop`. Every hashtag
is paged by its own :class:`~.loop.HashtagVideoCollector` into ``<base>/hashtag=<id>/`` with the
single-hashtag guarantees (parts, checkpoint after every page, manifest, exactly-once, dedupe);
the chains share one client (so one connection pool and one rate pacer) and one
:class:`~.shared_budget.SharedBudget`. A chain's fatal error ends that chain only; the batch
manifest ``<base>/_batch_manifest.json`` lists every hashtag's outcome and the totals.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from airflow_provider_unifapi.client import UnifAPIClient
from airflow_provider_unifapi.collector.budget import Budget
from airflow_provider_unifapi.collector.loop import (
    HashtagVideoCollector,
    PageLogger,
    PagingSettings,
    RunStart,
    RunStopped,
)
from airflow_provider_unifapi.collector.output import ObjectStorageOutput
from airflow_provider_unifapi.collector.shared_budget import HashtagBudget, SharedBudget
from airflow_provider_unifapi.exceptions import UnifAPIError, UnifAPIInsufficientCreditsError, is_retryable
from airflow_provider_unifapi.hooks.balance_reading import PROBE_CREDITS, PROBE_QUERY
from airflow_provider_unifapi.storage.fsio import FolderIO
from airflow_provider_unifapi.storage.run_folder import RunFolder

log = logging.getLogger(__name__)

BATCH_MANIFEST = "_batch_manifest.json"
#: name resolutions of earlier tries (a name's id and what finding it cost), so a retry pays none again
NAMES_FILE = "_batch_names.json"
#: worst case of one name resolution (the client reads at most 3 search pages of 20 results)
RESOLUTION_WORST_CASE = 60
#: The balance probe's entry in the names file (a hashtag name has no spaces): its credits count
#: with the resolutions'.
PROBE_ENTRY = "balance probe"


@dataclass(frozen=True)
class BatchItem:
    """One entry of the batch: a numeric id, or a name to resolve.

    :param key: how the user gave it (the id, or the name), used to name it in failures.
    :param hashtag_id: the numeric id, if given or resolved.
    :param hashtag_name: the name, if given.
    """

    key: str
    hashtag_id: str | None = None
    hashtag_name: str | None = None


@dataclass(frozen=True)
class BatchSettings:
    """How every chain of the batch writes and pages.

    :param output_format: ``jsonl``, ``jsonl.gz`` or ``parquet``.
    :param records_per_part: records per part file.
    :param gzip_level: compression level of ``jsonl.gz`` parts.
    :param per_hashtag: each hashtag's own caps (``max_records``, ``max_credits``).
    :param paging: page size, empty-page bound, what a low balance does.
    :param max_concurrency: cursor chains paged at once.
    """

    output_format: str
    records_per_part: int
    gzip_level: int
    per_hashtag: Budget
    paging: PagingSettings
    max_concurrency: int


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
        items: list[BatchItem],
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

    # -- the batch --------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Resolve names, page every hashtag (finished ones reused for 0 credits), write the manifest."""
        self.io.makedirs()
        names = self._load_names()
        self._count_earlier_spend(names)
        items = [self._resolve(item, names) for item in self.items]
        with ThreadPoolExecutor(self.settings.max_concurrency, thread_name_prefix="unifapi-chain") as pool:
            results = list(pool.map(self._chain, items))
        manifest = self._manifest(results, names)
        self._write_json(BATCH_MANIFEST, manifest)
        return manifest

    def _folder(self, hashtag_id: str) -> RunFolder:
        s = self.settings
        return RunFolder(self.base / f"hashtag={hashtag_id}", s.output_format, gzip_level=s.gzip_level)

    def _count_earlier_spend(self, names: dict[str, dict[str, Any]]) -> None:
        """Seed the shared budget with what earlier tries spent, so the cap holds over all tries."""
        for name, entry in names.items():
            self.shared.settle(f"name:{name}", int(entry.get("credits", 0)) + int(entry.get("in_flight", 0)))
        for item in self.items:
            hashtag_id = item.hashtag_id or names.get(item.hashtag_name or "", {}).get("hashtag_id")
            if hashtag_id is None:
                continue
            output = ObjectStorageOutput(self._folder(hashtag_id))
            manifest = output.folder.read_manifest()
            # Each with its last balance reading: the newest of them stands for the balance until
            # this try's first response (a finished hashtag's may be the only recent one).
            if manifest is not None:
                spent = int(manifest.get("credits_charged", 0)) + int(
                    manifest.get("possibly_billed_credits", 0)
                )
                reading = manifest.get("balance_remaining"), manifest.get("balance_seen_at")
                self.shared.settle(hashtag_id, spent, *reading)
                continue
            self._settle_from_checkpoint(hashtag_id, output)

    # -- names ------------------------------------------------------------------------------------
    def _load_names(self) -> dict[str, dict[str, Any]]:
        if not self.io.exists(NAMES_FILE):
            return {}
        names: dict[str, dict[str, Any]] = json.loads(self.io.read(NAMES_FILE))
        return names

    def _resolve(self, item: BatchItem, names: dict[str, dict[str, Any]]) -> BatchItem | dict[str, Any]:
        """The item with its id, or the failure of its resolution (a result row)."""
        name = item.hashtag_name
        if item.hashtag_id is not None or name is None:
            return item
        entry = names.get(name, {})
        if entry.get("hashtag_id"):
            return BatchItem(item.key, entry["hashtag_id"], name)
        if self.shared.needs_balance:
            self._probe_balance(names)
        why = self.shared.admits(RESOLUTION_WORST_CASE)
        if why is not None:
            return _row(item, status="skipped", stop_reason=why.value)
        spent_before = int(entry.get("credits", 0))
        # Write-ahead: a try killed during the search still counts its worst case.
        names[name] = {"credits": spent_before, "in_flight": RESOLUTION_WORST_CASE}
        self._write_json(NAMES_FILE, names)
        try:
            resolved = self.client.resolve_hashtag_id(name)
        except UnifAPIError as exc:
            cost = _error_cost(exc)
            names[name] = {"credits": spent_before + cost, "error": str(exc)}
            self._write_json(NAMES_FILE, names)
            self.shared.settle_search(f"name:{name}", spent_before + cost, cost)
            return _row(item, status="failed", error=_error(exc))
        names[name] = {"hashtag_id": resolved.hashtag.id, "credits": spent_before + resolved.credits_charged}
        self._write_json(NAMES_FILE, names)
        self.shared.settle_search(f"name:{name}", names[name]["credits"], resolved.credits_charged)
        self.log.info(
            "Resolved hashtag name %r to id %s (%d credits)",
            name,
            resolved.hashtag.id,
            resolved.credits_charged,
        )
        return BatchItem(item.key, resolved.hashtag.id, name)

    def _probe_balance(self, names: dict[str, dict[str, Any]]) -> None:
        """Learn the balance (1 credit; no free endpoint) before a name search under ``min_balance``."""
        spent_before = int(names.get(PROBE_ENTRY, {}).get("credits", 0))
        names[PROBE_ENTRY] = {"credits": spent_before, "in_flight": PROBE_CREDITS}
        self._write_json(NAMES_FILE, names)
        try:
            page = self.client.search_hashtags(PROBE_QUERY, limit=1, max_credits=PROBE_CREDITS)
        except UnifAPIError as exc:
            cost = _error_cost(exc)
            names[PROBE_ENTRY] = {"credits": spent_before + cost}
            self._write_json(NAMES_FILE, names)
            self.shared.settle_search(f"name:{PROBE_ENTRY}", spent_before + cost, cost)
            if isinstance(exc, UnifAPIInsufficientCreditsError) and exc.balance_remaining is not None:
                self.shared.note_balance(exc.balance_remaining)
            return
        cost = page.billing.credits_charged + page.call_stats.possibly_billed_credits
        names[PROBE_ENTRY] = {"credits": spent_before + cost}
        self._write_json(NAMES_FILE, names)
        self.shared.settle_search(f"name:{PROBE_ENTRY}", spent_before + cost, 0)
        self.shared.note_balance(page.billing.balance_remaining)

    # -- one chain --------------------------------------------------------------------------------
    def _chain(self, item: BatchItem | dict[str, Any]) -> dict[str, Any]:
        """Page one hashtag; never raises for an API error (the batch finishes the others)."""
        if isinstance(item, dict):
            return item
        assert item.hashtag_id is not None
        folder = self._folder(item.hashtag_id)
        manifest = folder.read_manifest()
        if manifest is not None:
            folder.finish()  # a try killed between the manifest and its clean-up left them
            return _row(item, status="reused", summary=manifest)
        output = ObjectStorageOutput(
            folder,
            records_per_part=self.settings.records_per_part,
            url=f"{self.url}/hashtag={item.hashtag_id}/",
        )
        p = self.settings.per_hashtag
        budget = HashtagBudget(
            max_records=p.max_records, max_credits=p.max_credits, shared=self.shared, key=item.hashtag_id
        )
        collector = HashtagVideoCollector(
            self.client,
            item.hashtag_id,
            output=output,
            budget=budget,
            paging=self.settings.paging,
            start=RunStart(hashtag_name=item.hashtag_name),
            logger=self.log,
        )
        try:
            summary = collector.run()
        except RunStopped as stop:
            self._settle_from_checkpoint(item.hashtag_id, output)
            error = {"message": str(stop), "type": "RunStopped", "retryable": True}
            return _row(item, status="failed", summary=stop.summary, error=error)
        except UnifAPIError as exc:
            so_far = self._settle_from_checkpoint(item.hashtag_id, output)
            return _row(item, status="failed", summary=so_far, error=_error(exc))
        self.shared.settle(
            item.hashtag_id,
            int(summary["credits_charged"]) + int(summary["possibly_billed_credits"]),
            summary["balance_remaining"],
            summary["balance_seen_at"],
        )
        return _row(item, status="done", summary=summary)

    def _settle_from_checkpoint(self, hashtag_id: str, output: ObjectStorageOutput) -> dict[str, Any]:
        """Settle a chain from its saved checkpoint (one that raised, or an earlier try's); returns
        its figures. A call in flight when a try died counts as possibly billed."""
        cp = output.earlier_checkpoint()
        output.close()
        if cp is None:
            return {}
        unknown = cp.possibly_billed_since_balance + cp.in_flight_credits
        spent = cp.credits_spent + cp.in_flight_credits
        self.shared.settle(hashtag_id, spent, cp.balance_remaining, cp.balance_seen_at, unknown)
        return {
            "hashtag_id": hashtag_id,
            "records": cp.records,
            "pages": cp.pages,
            "credits_charged": cp.credits_charged,
            "possibly_billed_credits": cp.possibly_billed_credits + cp.in_flight_credits,
            "stop_reason": None,
            "output_path": output.url,
        }

    # -- the batch manifest -----------------------------------------------------------------------
    def _manifest(self, rows: list[dict[str, Any]], names: dict[str, dict[str, Any]]) -> dict[str, Any]:
        resolution = sum(int(e.get("credits", 0)) + int(e.get("in_flight", 0)) for e in names.values())
        charged = sum(r["credits_charged"] for r in rows)
        possibly = sum(r["possibly_billed_credits"] for r in rows)
        failures = [{"hashtag": r["hashtag"], **r["error"]} for r in rows if r["status"] == "failed"]
        return {
            "output_path": self.url,
            "hashtags": rows,
            "failures": failures,
            "totals": {
                "hashtags": len(rows),
                "by_status": dict(Counter(r["status"] for r in rows)),
                "stop_reasons": dict(Counter(r["stop_reason"] for r in rows if r["stop_reason"])),
                "records": sum(r["records"] for r in rows),
                "credits_charged": charged,
                "possibly_billed_credits": possibly,
                "resolution_credits": resolution,
                "credits_spent": charged + possibly + resolution,
                "credits_spent_this_try": sum(r["credits_spent"] for r in rows if r["status"] != "reused"),
            },
            "max_credits": self.shared.max_credits,
            "min_balance": self.shared.min_balance,
            "written_at": datetime.now(timezone.utc).isoformat(),
        }

    def _write_json(self, name: str, data: dict[str, Any]) -> None:
        # Written aside and renamed: a try killed mid-write leaves the previous version whole.
        self.io.write(f"{name}.tmp", json.dumps(data, indent=1, sort_keys=True, default=str).encode())
        self.io.replace(f"{name}.tmp", name)


def _error_cost(exc: UnifAPIError) -> int:
    """Credits a failed call charged or may have."""
    return int(getattr(exc, "credits_charged", 0) or 0) + exc.possibly_billed_credits


def _error(exc: UnifAPIError) -> dict[str, Any]:
    """A chain's failure: its message, its type, and whether a retry of the task may fix it."""
    return {
        "message": str(exc),
        "type": type(exc).__name__,
        "retryable": is_retryable(exc) or exc.may_have_been_billed,
    }


def _row(
    item: BatchItem,
    *,
    status: str,
    summary: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
    stop_reason: str | None = None,
) -> dict[str, Any]:
    """One hashtag's line in the batch manifest."""
    s = summary or {}
    charged, possibly = int(s.get("credits_charged") or 0), int(s.get("possibly_billed_credits") or 0)
    return {
        "hashtag": item.key,
        "hashtag_id": item.hashtag_id or s.get("hashtag_id"),
        "hashtag_name": item.hashtag_name,
        "status": status,
        "records": int(s.get("records") or 0),
        "pages": int(s.get("pages") or 0),
        "credits_charged": charged,
        "possibly_billed_credits": possibly,
        "credits_spent": charged + possibly,
        "stop_reason": s.get("stop_reason", stop_reason),
        "output_path": s.get("output_path"),
        "files": s.get("files", []),
        "error": error,
    }
