"""(d) dlt's ``rest_api`` source re-pulling every hashtag daily, ``primary_key="id"`` and
``write_disposition="merge"``, into a local SQLite database (dlt's ``sqlalchemy`` destination).

The ``client`` part (bearer key, cursor paginator) is the one ``benchmarks/contestants/dlt_rest_api.py``
uses for this API; one resource (and table) per hashtag, as in the fleet scenario. Otherwise dlt's
defaults: nested lists become child tables, merged with their parents. DuckDB is not in the bench
environment and the ``filesystem`` destination merges only into Delta/Iceberg tables (``deltalake``
is not installed either): SQLite through SQLAlchemy is the local destination with a ``merge`` here
(``delete-insert``: a re-pulled id's row is replaced, stamped with the new load).

The pipeline's folder lives in the workdir, so day d's run continues day d-1's pipeline.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

from benchmarks.tracking.contestant import DayContext, DayResult, Delivery

DATASET = "tiktok"
PIPELINE = "unifapi_tracking"


def table(hashtag_id: str) -> str:
    return f"h{hashtag_id}"


def database(workdir: Path) -> Path:
    return workdir / "dlt.db"


def run_day(ctx: DayContext) -> DayResult:
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    import dlt
    from dlt.sources.rest_api import rest_api_source

    from benchmarks.contestants.dlt_rest_api import rest_api_client

    resources: list[Any] = [
        {
            "name": table(hid),
            "primary_key": "id",
            "write_disposition": "merge",
            "endpoint": {
                "path": f"tiktok/hashtags/{hid}/videos",
                "params": {"limit": ctx.page_size},
                "data_selector": "data",
            },
        }
        for hid in ctx.hashtags
    ]
    source = rest_api_source(
        {"client": rest_api_client(ctx.sandbox_url, ctx.api_key), "resources": resources}
    )
    pipeline = dlt.pipeline(
        pipeline_name=PIPELINE,
        destination=dlt.destinations.sqlalchemy(credentials=f"sqlite:///{database(ctx.path)}"),
        dataset_name=DATASET,
        pipelines_dir=str(ctx.path / "pipelines"),
    )
    pipeline.run(source)
    trace = pipeline.last_trace
    info = trace.last_normalize_info if trace is not None else None
    counts = dict(info.row_counts) if info is not None else {}
    records = sum(counts.get(table(hid), 0) for hid in ctx.hashtags)
    return DayResult(records=records, notes={"row_counts": counts})


def _connect(workdir: Path) -> sqlite3.Connection:
    """The destination, read-only, with the dataset's database attached the way dlt lays it out."""
    conn = sqlite3.connect(f"file:{database(workdir)}?mode=ro", uri=True)
    attached = workdir / f"dlt__{DATASET}.db"
    if attached.exists():
        conn.execute(f"ATTACH DATABASE 'file:{attached}?mode=ro' AS {DATASET}")
    return conn


def _new_loads(ctx: DayContext, conn: sqlite3.Connection) -> set[str]:
    """The loads that appeared since the previous day (remembered beside the destination)."""
    seen_path = ctx.path / "loads-seen.json"
    seen = set(json.loads(seen_path.read_text())) if seen_path.exists() else set()
    loads = {str(row[0]) for row in conn.execute(f"SELECT load_id FROM {DATASET}._dlt_loads")}
    seen_path.write_text(json.dumps(sorted(loads)))
    return loads - seen


def delivered(ctx: DayContext) -> Delivery:
    """Read from the destination: today's rows are those stamped with a load of today's run."""
    conn = _connect(ctx.path)
    try:
        today = _new_loads(ctx, conn)
        ids: dict[str, set[str]] = {}
        rows_added = rows_total = distinct_total = 0
        for hid in ctx.hashtags:
            rows = conn.execute(f"SELECT id, _dlt_load_id FROM {DATASET}.{table(hid)}").fetchall()
            fresh = [str(vid) for vid, load in rows if load in today]
            ids[hid] = set(fresh)
            rows_added += len(fresh)
            rows_total += len(rows)
            distinct_total += len({str(vid) for vid, _ in rows})
    finally:
        conn.close()
    return Delivery(ids=ids, rows_added=rows_added, rows_total=rows_total, distinct_total=distinct_total)
