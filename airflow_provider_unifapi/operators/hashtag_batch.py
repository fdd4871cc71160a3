"""TikTokHashtagBatchOperator: many hashtags in one task, paged concurrently under one shared budget."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import timezone
from functools import cached_property
from typing import Any, TypeVar

from airflow_provider_unifapi._compat import (
    AirflowException,
    AirflowFailException,
    BaseOperator,
    ObjectStoragePath,
)
from airflow_provider_unifapi.client import MAX_PAGE_SIZE, UnifAPIClient, validate_hashtag_id, validate_limit
from airflow_provider_unifapi.collector import Budget, PagingSettings
from airflow_provider_unifapi.collector.batch import BatchItem, BatchSettings, HashtagBatch
from airflow_provider_unifapi.collector.shared_budget import SharedBudget
from airflow_provider_unifapi.exceptions import UnifAPIInputError
from airflow_provider_unifapi.hooks.unifapi import UnifAPIHook
from airflow_provider_unifapi.operators._arguments import check_count
from airflow_provider_unifapi.storage.fsio import local_folder
from airflow_provider_unifapi.storage.parts import DEFAULT_GZIP_LEVEL, check_format

T = TypeVar("T")


def chunk(items: Iterable[T], size: int) -> list[list[T]]:
    """Split ``items`` into lists of ``size`` (the last may be shorter), for mapping batches.

    :param items: the hashtags (ids and/or names), or anything else.
    :param size: items per chunk, >= 1.
    :raises UnifAPIInputError: ``size`` is not a positive integer.
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise UnifAPIInputError("size", f"must be an integer >= 1, got {size!r}")
    listed = list(items)
    return [listed[i : i + size] for i in range(0, len(listed), size)]


class TikTokHashtagBatchOperator(BaseOperator):
    """Fetch the videos of many hashtags in one task: ``max_concurrency`` cursor chains at once.

    Each hashtag goes to ``<output_path>/hashtag=<id>/`` with the guarantees of
    :class:`~airflow_provider_unifapi.operators.hashtag_videos.TikTokHashtagVideosOperator` (parts,
    checkpoint after every page, manifest, exactly-once, dedupe); a retried try resumes every
    unfinished hashtag and reuses finished ones for 0 credits. ``max_credits`` and ``min_balance``
    hold for the whole batch over all tries, every chain's call in flight counted at its worst case.
    The chains share one client whose pacer spaces requests to the workspace rate limit. One
    hashtag's error does not stop the others: the task writes ``<output_path>/_batch_manifest.json``
    (also its return value) and then fails naming the hashtags that failed.

    The constructor only stores its arguments; every check runs at the start of ``execute``.

    :param hashtags: hashtag ids and/or names (without ``#``) (templated; a list, an ``XComArg``,
        a JSON list or comma-separated text).
    :param output_path: the batch's base folder URL (templated).
    :param unifapi_conn_id: the ``unifapi`` connection.
    :param max_concurrency: cursor chains paged at once within the task (templated).
    :param max_credits: never let the batch spend more, over all tries (templated).
    :param min_balance: never let the workspace balance drop below this (templated).
    :param max_credits_per_hashtag: each hashtag's own credit cap (templated).
    :param max_records_per_hashtag: each hashtag's own record cap (templated).
    :param page_size: records per call, 1 to 50 (templated).
    :param output_conn_id: connection of the object store (templated).
    :param output_format: ``jsonl``, ``jsonl.gz`` (default) or ``parquet`` (templated).
    :param records_per_part: records per part file.
    :param max_empty_pages: empty pages in a row after which a hashtag stops.
    :param fail_on_low_balance: a hashtag cut short by the balance counts as failed (retryable).
    :param fail_on_hashtag_error: fail the task when a hashtag failed (default); False succeeds
        and leaves the failures in the return value and the batch manifest.
    :param pace_requests: pace the shared client to the rate limit (whatever the connection says).
    :param gzip_level: compression level of ``jsonl.gz`` parts.
    """

    template_fields: Sequence[str] = (
        "hashtags",
        "output_path",
        "max_concurrency",
        "max_credits",
        "min_balance",
        "max_credits_per_hashtag",
        "max_records_per_hashtag",
        "page_size",
        "output_conn_id",
        "output_format",
    )
    ui_color = "#25f4ee"

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
        page_size: int | str = MAX_PAGE_SIZE,
        output_conn_id: str | None = None,
        output_format: str = "jsonl.gz",
        records_per_part: int = 10_000,
        max_empty_pages: int = 3,
        fail_on_low_balance: bool = True,
        fail_on_hashtag_error: bool = True,
        pace_requests: bool = True,
        gzip_level: int = DEFAULT_GZIP_LEVEL,
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
        self.page_size = page_size
        self.output_conn_id = output_conn_id
        self.output_format = output_format
        self.records_per_part = records_per_part
        self.max_empty_pages = max_empty_pages
        self.fail_on_low_balance = fail_on_low_balance
        self.fail_on_hashtag_error = fail_on_hashtag_error
        self.pace_requests = pace_requests
        self.gzip_level = gzip_level

    @cached_property
    def hook(self) -> UnifAPIHook:
        """The hook of ``unifapi_conn_id`` (its connection's settings and remembered balance)."""
        return UnifAPIHook(self.unifapi_conn_id)

    def execute(self, context: Any) -> Any:
        try:
            items = parse_hashtags(self.hashtags)
            settings, shared_caps = self._check()
            base = self._base()
            kwargs = self.hook.client_kwargs()
        except UnifAPIInputError as exc:
            raise AirflowFailException(str(exc)) from None  # bad input: a retry would fail the same way
        kwargs["max_connections"] = max(int(kwargs["max_connections"]), settings.max_concurrency)
        kwargs["pace_requests"] = bool(self.pace_requests)
        remembered = self.hook.recall_balance() if shared_caps[1] is not None else None
        shared = SharedBudget(
            *shared_caps,
            balance=remembered.balance if remembered else None,
            balance_seen_at=remembered.seen_at.astimezone(timezone.utc).isoformat() if remembered else None,
        )
        with UnifAPIClient(**kwargs) as client:
            batch = HashtagBatch(client, base, self.output_path, items, settings, shared, logger=self.log)
            try:
                manifest = batch.run()
            finally:
                self.hook.remember_balance(client.last_balance)
        self._log_totals(manifest, client)
        self._raise_for_failures(manifest, context)
        return manifest

    def _check(self) -> tuple[BatchSettings, tuple[int | None, int | None]]:
        page_size = validate_limit(check_count("page_size", self.page_size, minimum=1), "page_size")
        concurrency = check_count("max_concurrency", self.max_concurrency, minimum=1) or 1
        if concurrency > 64:
            raise UnifAPIInputError("max_concurrency", f"must be at most 64, got {concurrency}")
        gzip_level = self.gzip_level
        if isinstance(gzip_level, bool) or not isinstance(gzip_level, int) or not 0 <= gzip_level <= 9:
            raise UnifAPIInputError("gzip_level", f"must be an integer from 0 to 9, got {gzip_level!r}")
        settings = BatchSettings(
            output_format=check_format(self.output_format),
            records_per_part=check_count("records_per_part", self.records_per_part, minimum=1) or 1,
            gzip_level=gzip_level,
            per_hashtag=Budget(
                max_records=check_count("max_records_per_hashtag", self.max_records_per_hashtag, minimum=1),
                max_credits=check_count("max_credits_per_hashtag", self.max_credits_per_hashtag, minimum=1),
            ),
            paging=PagingSettings(
                page_size=page_size,
                max_empty_pages=check_count("max_empty_pages", self.max_empty_pages, minimum=1) or 1,
                fail_on_low_balance=bool(self.fail_on_low_balance),
            ),
            max_concurrency=concurrency,
        )
        caps = (
            check_count("max_credits", self.max_credits, minimum=1),
            check_count("min_balance", self.min_balance, minimum=0),
        )
        return settings, caps

    def _base(self) -> Any:
        url = self.output_path
        if not isinstance(url, str) or not url.strip():
            raise UnifAPIInputError("output_path", f"must be the batch's base folder URL, got {url!r}")
        try:
            return (None if self.output_conn_id else local_folder(url)) or ObjectStoragePath(
                url, conn_id=self.output_conn_id
            )
        except Exception as exc:
            raise UnifAPIInputError(
                "output_path", f"{url!r} is not a usable object-storage URL: {exc}"
            ) from None

    def _log_totals(self, manifest: dict[str, Any], client: UnifAPIClient) -> None:
        t = manifest["totals"]
        pacer = client.pacer
        self.log.info(
            "Batch of %d hashtags: %s; %s records; %s credits spent over all tries (%s this try); "
            "pacer waited %.1f s over %d requests",
            t["hashtags"],
            t["by_status"],
            f"{t['records']:,}",
            f"{t['credits_spent']:,}",
            f"{t['credits_spent_this_try']:,}",
            pacer.waited_seconds if pacer else 0.0,
            pacer.waits if pacer else 0,
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


def parse_hashtags(value: Any) -> list[BatchItem]:
    """The batch's hashtags from a rendered ``hashtags``: ids (digits) and names, duplicates dropped.

    :param value: a list/tuple, a JSON list, or comma-separated text.
    :raises UnifAPIInputError: naming ``hashtags`` and the bad entry.
    """
    if isinstance(value, str):
        text = value.strip()
        value = json.loads(text) if text.startswith("[") else [v for v in text.split(",") if v.strip()]
    if not isinstance(value, (list, tuple)) or not value:
        raise UnifAPIInputError(
            "hashtags", f"must be a non-empty list of hashtag ids and/or names, got {value!r}"
        )
    items: dict[str, BatchItem] = {}
    for entry in value:
        if isinstance(entry, int) and not isinstance(entry, bool):
            entry = str(entry)
        if not isinstance(entry, str) or not entry.strip().lstrip("#"):
            raise UnifAPIInputError("hashtags", f"holds {entry!r}: give numeric ids or names without #")
        text = entry.strip().lstrip("#")
        if text.isascii() and text.isdigit():
            items.setdefault(text, BatchItem(text, hashtag_id=validate_hashtag_id(text)))
        else:
            items.setdefault(text.lower(), BatchItem(text, hashtag_name=text))
    return list(items.values())
