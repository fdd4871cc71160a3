"""TikTokHashtagBatchOperator: many hashtags in one task, paged concurrently under one shared budget."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timezone
from typing import Any, TypeVar

from airflow_provider_unifapi._compat import (
    AirflowException,
    AirflowFailException,
    AirflowNotFoundException,
    add_outlet_extra,
)
from airflow_provider_unifapi.client import MAX_PAGE_SIZE, UnifAPIClient
from airflow_provider_unifapi.collector import Budget, dollars
from airflow_provider_unifapi.collector.batch import BatchSettings, HashtagBatch
from airflow_provider_unifapi.collector.shared_budget import SharedBudget
from airflow_provider_unifapi.exceptions import UnifAPIError, UnifAPIInputError
from airflow_provider_unifapi.hooks.unifapi import UnifAPIHook
from airflow_provider_unifapi.operators._arguments import (
    check_count,
    check_gzip_level,
    check_paging,
    output_folder,
    parse_hashtags,
    writer_name,
)
from airflow_provider_unifapi.operators._base import CollectionOperator, task_failure
from airflow_provider_unifapi.storage.parts import DEFAULT_GZIP_LEVEL, check_format

T = TypeVar("T")


def chunk(items: Iterable[T], size: int) -> list[list[T]]:
    """Split ``items`` into lists of ``size`` (the last may be shorter), for mapping batches.

    :param items: the hashtags (ids and/or names), or anything else.
    :param size: items per chunk, >= 1 (else :class:`UnifAPIInputError`).
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise UnifAPIInputError("size", f"must be an integer >= 1, got {size!r}")
    listed = list(items)
    return [listed[i : i + size] for i in range(0, len(listed), size)]


class TikTokHashtagBatchOperator(CollectionOperator):
    """Fetch the videos of many hashtags in one task, ``max_concurrency`` at once (docs/batch.md).

    Each hashtag goes to ``<output_path>/hashtag=<id>/``; one's error does not stop the others: the
    task writes ``<output_path>/_batch_manifest.json`` (its return value), then fails naming them.

    :param hashtags: hashtag ids and/or names without ``#`` (templated; a list, an ``XComArg``,
        a JSON or Python list as text, or comma-separated text).
    :param output_path: the batch's base folder URL (templated).
    :param unifapi_conn_id: the ``unifapi`` connection.
    :param max_concurrency: cursor chains paged at once, 1 to 64 (templated).
    :param max_credits: never let the batch spend more, over all tries (templated).
    :param min_balance: never let the workspace balance drop below this (templated).
    :param max_credits_per_hashtag: each hashtag's own credit cap (templated).
    :param max_records_per_hashtag: each hashtag's own record cap (templated).
    :param max_pages_per_hashtag: each hashtag's own cap on page calls (templated).
    :param page_size: records per call, 1 to 50 (templated).
    :param output_conn_id: connection of the object store (templated).
    :param output_format: ``jsonl``, ``jsonl.gz`` (default) or ``parquet`` (templated).
    :param records_per_part: records per part file.
    :param max_empty_pages: empty pages in a row after which a hashtag stops.
    :param fail_on_low_balance: a hashtag cut short by the balance counts as failed (retryable).
    :param fail_on_hashtag_error: fail the task when a hashtag failed; False leaves the failures in
        the return value.
    :param pace_requests: pace the shared client to the rate limit (whatever the connection says).
    :param gzip_level: compression level of ``jsonl.gz`` parts.
    :param overwrite: fetch every hashtag again (by default a done one is reused for 0 credits and a
        stopped one continues).
    """

    template_fields: Sequence[str] = (
        "hashtags",
        "output_path",
        "max_concurrency",
        "max_credits",
        "min_balance",
        "max_credits_per_hashtag",
        "max_records_per_hashtag",
        "max_pages_per_hashtag",
        "page_size",
        "output_conn_id",
        "output_format",
    )

    def __init__(
        self,
        *,
        hashtags: Any,
        output_path: str,
        unifapi_conn_id: str = UnifAPIHook.default_conn_name,
        max_concurrency: int | str = 4,
        max_credits: int | str | None = None,
        min_balance: int | str | None = None,
        max_credits_per_hashtag: int | str | None = None,
        max_records_per_hashtag: int | str | None = None,
        max_pages_per_hashtag: int | str | None = None,
        page_size: int | str = MAX_PAGE_SIZE,
        output_conn_id: str | None = None,
        output_format: str = "jsonl.gz",
        records_per_part: int = 10_000,
        max_empty_pages: int = 3,
        fail_on_low_balance: bool = True,
        fail_on_hashtag_error: bool = True,
        pace_requests: bool = True,
        gzip_level: int = DEFAULT_GZIP_LEVEL,
        overwrite: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.hashtags = hashtags
        self.output_path = output_path
        self.unifapi_conn_id = unifapi_conn_id
        self.max_concurrency = max_concurrency
        self.max_credits = max_credits
        self.min_balance = min_balance
        self.max_credits_per_hashtag = max_credits_per_hashtag
        self.max_records_per_hashtag = max_records_per_hashtag
        self.max_pages_per_hashtag = max_pages_per_hashtag
        self.page_size = page_size
        self.output_conn_id = output_conn_id
        self.output_format = output_format
        self.records_per_part = records_per_part
        self.max_empty_pages = max_empty_pages
        self.fail_on_low_balance = fail_on_low_balance
        self.fail_on_hashtag_error = fail_on_hashtag_error
        self.pace_requests = pace_requests
        self.gzip_level = gzip_level
        self.overwrite = overwrite

    def execute(self, context: Any) -> Any:
        self._run_summary: dict[str, Any] | None = None  # the batch manifest, for lineage
        try:
            items = parse_hashtags(self.hashtags)
            settings = self._settings(context)
            shared = self._shared_budget()
            base = output_folder(self._output_path(), self.output_conn_id)
            kwargs = self.hook.client_kwargs()
            kwargs["max_connections"] = max(int(kwargs["max_connections"]), settings.max_concurrency)
            kwargs["pace_requests"] = bool(self.pace_requests)
            with UnifAPIClient(**kwargs) as client:
                batch = HashtagBatch(client, base, self.output_path, items, settings, shared, logger=self.log)
                try:
                    manifest = batch.run()
                finally:
                    self.hook.remember_balance(client.last_balance)
        except (UnifAPIError, AirflowNotFoundException) as exc:
            raise task_failure(exc, conn_id=self.unifapi_conn_id) from None
        self._run_summary = manifest
        self._log_totals(manifest, client)
        add_outlet_extra(context, self.outlets, batch_asset_extra(manifest))
        self._raise_for_failures(manifest, context)
        return manifest

    def _settings(self, context: Any) -> BatchSettings:
        concurrency = check_count("max_concurrency", self.max_concurrency, minimum=1) or 1
        if concurrency > 64:
            raise UnifAPIInputError("max_concurrency", f"must be at most 64, got {concurrency}")
        return BatchSettings(
            output_format=check_format(self.output_format),
            records_per_part=check_count("records_per_part", self.records_per_part, minimum=1) or 1,
            gzip_level=check_gzip_level(self.gzip_level),
            per_hashtag=Budget(
                max_records=check_count("max_records_per_hashtag", self.max_records_per_hashtag, minimum=1),
                max_pages=check_count("max_pages_per_hashtag", self.max_pages_per_hashtag, minimum=1),
                max_credits=check_count("max_credits_per_hashtag", self.max_credits_per_hashtag, minimum=1),
            ),
            paging=check_paging(self),
            max_concurrency=concurrency,
            overwrite=bool(self.overwrite),
            owner=writer_name(context),
        )

    def _shared_budget(self) -> SharedBudget:
        floor = check_count("min_balance", self.min_balance, minimum=0)
        remembered = self.hook.recall_fresh_balance(floor) if floor is not None else None
        return SharedBudget(
            check_count("max_credits", self.max_credits, minimum=1),
            floor,
            balance=remembered.balance if remembered else None,
            balance_seen_at=remembered.seen_at.astimezone(timezone.utc).isoformat() if remembered else None,
            balance_max_age=self.hook.balance_max_age() if floor is not None else None,
        )

    def _output_path(self) -> str:
        url = self.output_path
        if not isinstance(url, str) or not url.strip():
            raise UnifAPIInputError("output_path", f"must be the batch's base folder URL, got {url!r}")
        return url

    def _log_totals(self, manifest: dict[str, Any], client: UnifAPIClient) -> None:
        t = manifest["totals"]
        pacer = client.pacer
        statuses = ", ".join(f"{n} {status}" for status, n in t["by_status"].items())
        waited, waits = (pacer.waited_seconds, pacer.waits) if pacer else (0.0, 0)
        self.log.info(
            f"Batch of {t['hashtags']} hashtags: {statuses} ({t['reused']} reused); {t['records']:,} records; "
            f"spent {t['credits_spent']:,} credits ({dollars(t['credits_spent'])}) over all tries = "
            f"{t['credits_charged']} charged + {t['possibly_billed_credits']} possibly billed + "
            f"{t['resolution_credits']} for names; {t['credits_spent_this_try']:,} credits this try; "
            f"pacer waited {waited:.1f} s over {waits} requests"
        )

    def _raise_for_failures(self, manifest: dict[str, Any], context: Any) -> None:
        failures = manifest["failures"]
        if not failures:
            return
        named = "; ".join(f"{f['hashtag']}: {f['message']}" for f in failures)
        message = f"{len(failures)} of {len(manifest['hashtags'])} hashtags failed ({named})"
        if any(f["retryable"] for f in failures):
            # The batch manifest is in the folder; XCom of a failed try would not be kept.
            raise AirflowException(
                f"{message}. A retry resumes them; finished hashtags are reused for 0 credits."
            )
        if self.fail_on_hashtag_error:
            raise AirflowFailException(f"{message}. Fix or remove them; the others are complete.")
        self.log.warning("%s; succeeding as fail_on_hashtag_error=False", message)


def batch_asset_extra(manifest: dict[str, Any]) -> dict[str, Any]:
    """What an asset event of a batch carries: its manifest's totals (not its rows: it may hold thousands)."""
    t = manifest["totals"]
    return {
        "output_path": manifest["output_path"],
        "totals": t,
        "credits_spent": t["credits_spent"],
        "dollars_spent": dollars(t["credits_spent"]),
        "credits_spent_this_run": t["credits_spent_this_try"],
        "max_credits": manifest["max_credits"],
    }
