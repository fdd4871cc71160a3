"""(a) Today's daily full re-pull: :class:`HashtagVideoCollector` pages every hashtag's whole feed
each day into an :class:`ObjectStorageOutput` over ``<workdir>/out/day=<d>/hashtag=<id>/`` (jsonl.gz,
the operators' default), the way ``TikTokHashtagBatchOperator`` builds its folders, without Airflow.

Each day's folders are that day's snapshot; every snapshot is kept, so a video still in the feed is
written again every day (the duplicates across days this benchmark counts).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.tracking.contestant import DayContext, DayResult, Delivery

OUTPUT_FORMAT = "jsonl.gz"


def day_folder(workdir: Path, day: int, hashtag_id: str) -> Path:
    return workdir / "out" / f"day={day}" / f"hashtag={hashtag_id}"


def run_day(ctx: DayContext) -> DayResult:
    from upath import UPath

    from airflow_provider_unifapi.client import UnifAPIClient
    from airflow_provider_unifapi.collector import HashtagVideoCollector, ObjectStorageOutput
    from airflow_provider_unifapi.collector.loop import PagingSettings
    from airflow_provider_unifapi.storage.run_folder import RunFolder

    records = 0
    summaries: dict[str, Any] = {}
    with UnifAPIClient(ctx.api_key, ctx.sandbox_url, timeout=60) as client:
        for hid in ctx.hashtags:
            url = f"file://{day_folder(ctx.path, ctx.day, hid)}/"
            output = ObjectStorageOutput(RunFolder(UPath(url), OUTPUT_FORMAT), url=url)
            paging = PagingSettings(page_size=ctx.page_size)
            summary = HashtagVideoCollector(client, hid, output=output, paging=paging).run()
            records += int(summary["records"])
            summaries[hid] = {k: summary.get(k) for k in ("records", "pages", "stop_reason")}
    return DayResult(records=records, notes={"hashtags": summaries})


def _read(folder: Path) -> list[str]:
    from upath import UPath

    from airflow_provider_unifapi.storage.run_folder import iter_run_records

    return [str(record["id"]) for record in iter_run_records(UPath(f"file://{folder}"))]


def delivered(ctx: DayContext) -> Delivery:
    """The day's snapshot, read from its run folders (earlier days' folders are never touched again:
    the output is append-only, the harness sums the days)."""
    rows = {hid: _read(day_folder(ctx.path, ctx.day, hid)) for hid in ctx.hashtags}
    return Delivery(
        ids={hid: set(ids) for hid, ids in rows.items()}, rows_added=sum(len(ids) for ids in rows.values())
    )
