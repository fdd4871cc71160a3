"""The cluster run judged against the sandbox's truth and ledger, as figures that must be zero.

Pure functions over plain data (the lake as read from S3, the ledger's calls, the truth, the kills),
so a test can feed them a tampered copy of a real run and see them count the fault.

- every hashtag exact: the records in its S3 folder equal the truth as a set, none lost, none twice,
  none foreign, and nothing in the folder but its parts and manifest;
- a page (hashtag, offset) is paid twice only when a SIGKILL cut the try that paid it first: the
  first payment before the kill (plus :data:`IN_FLIGHT_GRACE_S` for the calls in flight), the second
  after it, the hashtag in a batch the killed worker was running, and at most ``max_concurrency``
  such pages per killed batch (one per cursor chain);
- each batch's ledger credits, and its manifest's worst case, stay within its ``max_credits``; and
  the manifest never counts less than the ledger charged for the batch's hashtags.
"""

from __future__ import annotations

import gzip
import itertools
import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from tests.chaos.analysis import key_hits, output_figures

#: a call in flight at the SIGKILL is logged by the sandbox when it answers: within its latency
IN_FLIGHT_GRACE_S = 5.0
_BATCH = re.compile(r"/batch=(\d+)/_batch_manifest\.json$")


@dataclass
class Kill:
    """One SIGKILL: the worker, when (``time.time()``), and the ``collect`` batches it was running."""

    worker: str
    at: float
    batches: list[int]


@dataclass
class Lake:
    """What the run left in S3."""

    manifests: dict[int, dict[str, Any]] = field(default_factory=dict)  # batch -> _batch_manifest.json
    ids: dict[str, list[str]] = field(default_factory=dict)  # hashtag -> record ids, in part order
    stray: dict[str, list[str]] = field(default_factory=dict)  # hashtag -> objects not in its manifest
    texts: list[bytes] = field(default_factory=list)  # every object's bytes (gzip decompressed)


def _get(s3: Any, bucket: str, key: str) -> bytes:
    return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def read_lake(s3: Any, bucket: str) -> Lake:
    """Read every batch manifest, every hashtag folder it names, and every object of ``bucket``."""
    lake = Lake()
    keys = [
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for o in page.get("Contents", [])
    ]
    for key in keys:
        data = _get(s3, bucket, key)
        lake.texts.append(gzip.decompress(data) if key.endswith(".gz") else data)
        match = _BATCH.search(key)
        if match:
            lake.manifests[int(match.group(1))] = json.loads(data)
    for manifest in lake.manifests.values():
        for row in manifest["hashtags"]:
            prefix = str(row["output_path"]).removeprefix(f"s3://{bucket}/").rstrip("/") + "/"
            lake.ids[str(row["hashtag_id"])], lake.stray[str(row["hashtag_id"])] = _read_folder(
                s3, bucket, prefix, [k for k in keys if k.startswith(prefix)]
            )
    return lake


def _read_folder(s3: Any, bucket: str, prefix: str, keys: list[str]) -> tuple[list[str], list[str]]:
    """A hashtag folder's record ids (parts in manifest order) and the objects it should not hold."""
    if f"{prefix}_manifest.json" not in keys:
        return [], [k.removeprefix(prefix) for k in keys]
    manifest = json.loads(_get(s3, bucket, f"{prefix}_manifest.json"))
    assert manifest["output_format"] in ("jsonl", "jsonl.gz"), manifest["output_format"]
    ids: list[str] = []
    names = [part["name"] for part in manifest["parts"]]
    for name in names:
        data = _get(s3, bucket, prefix + name)
        lines = (gzip.decompress(data) if name.endswith(".gz") else data).splitlines()
        ids += [str(json.loads(line)["id"]) for line in lines if line.strip()]
    stray = [k.removeprefix(prefix) for k in keys if k.removeprefix(prefix) not in {*names, "_manifest.json"}]
    return ids, stray


def output_check(chunks: dict[int, list[str]], lake: Lake, truths: dict[str, list[str]]) -> dict[str, Any]:
    """Records against the truth, hashtag by hashtag (see :func:`tests.chaos.analysis.output_figures`)."""
    totals: Counter[str] = Counter()
    details: list[str] = []
    for hashtags in chunks.values():
        for hashtag in hashtags:
            ids, truth = lake.ids.get(hashtag, []), truths[hashtag]
            for name, value in output_figures(ids, truth, "exhausted").items():
                totals[name] += value
            totals["hashtags_not_exact"] += int(set(ids) != set(truth) or len(ids) != len(set(ids)))
            stray = lake.stray.get(hashtag, ["(no folder)"])
            totals["stray_objects"] += len(stray)
            details += [f"hashtag={hashtag}/{name}" for name in stray]
    rows = [row for m in lake.manifests.values() for row in m["hashtags"]]
    totals["hashtags_failed"] = sum(1 for row in rows if row["status"] == "failed")
    totals["batches_missing"] = len(set(chunks) - set(lake.manifests))
    return {**totals, "stray_detail": details[:5]}


def paid_pages(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ledger calls that paid for a page of videos."""
    return [c for c in calls if c["endpoint"] == "videos" and (c["credits_charged"] or 0) > 0]


def repaid_check(
    calls: list[dict[str, Any]], chunks: dict[int, list[str]], kills: list[Kill], max_concurrency: int
) -> dict[str, Any]:
    """Pages paid more than once, and how many of them no kill explains."""
    batch_of = {h: b for b, hashtags in chunks.items() for h in hashtags}
    pages: dict[tuple[str, Any], list[dict[str, Any]]] = defaultdict(list)
    for call in sorted(paid_pages(calls), key=lambda c: c["seq"]):
        pages[(call["hashtag_id"], call["offset"])].append(call)
    repaid = repaid_credits = unexplained = 0
    per_kill: Counter[tuple[int, int]] = Counter()
    detail: list[dict[str, Any]] = []
    for (hashtag, offset), group in pages.items():
        for earlier, later in itertools.pairwise(group):
            repaid += 1
            repaid_credits += int(earlier["credits_charged"])
            cause = next(
                (
                    n
                    for n, kill in enumerate(kills)
                    if batch_of.get(hashtag) in kill.batches
                    and earlier["ts"] <= kill.at + IN_FLIGHT_GRACE_S
                    and later["ts"] > kill.at
                ),
                None,
            )
            if cause is None:
                unexplained += 1
                detail.append(
                    {"hashtag_id": hashtag, "offset": offset, "seqs": [earlier["seq"], later["seq"]]}
                )
            else:
                per_kill[(cause, batch_of[hashtag])] += 1
    beyond = sum(max(0, n - max_concurrency) for n in per_kill.values())
    return {
        "repaid_pages": repaid,
        "repaid_credits": repaid_credits,
        "repaid_pages_unexplained": unexplained + beyond,
        "repaid_per_killed_batch": {f"batch {b}": n for (_, b), n in sorted(per_kill.items())},
        "repaid_detail": detail[:5],
    }


def budget_check(
    calls: list[dict[str, Any]], chunks: dict[int, list[str]], lake: Lake, max_credits: int
) -> dict[str, Any]:
    """Each batch's credits: the ledger's and the manifest's worst case within ``max_credits``, and the
    manifest counting at least what the ledger charged."""
    charged: Counter[str] = Counter()
    for call in paid_pages(calls):
        charged[call["hashtag_id"]] += int(call["credits_charged"])
    breaches = unaccounted = 0
    highest = 0
    for batch, hashtags in chunks.items():
        ledger = sum(charged[h] for h in hashtags)
        spent = int(lake.manifests[batch]["totals"]["credits_spent"]) if batch in lake.manifests else 0
        breaches += int(ledger > max_credits) + int(spent > max_credits)
        unaccounted += max(0, ledger - spent)
        highest = max(highest, ledger, spent)
    return {
        "ledger_credits": sum(charged.values()),
        "budget_breaches": breaches,
        "credits_unaccounted": unaccounted,
        "highest_batch_credits": highest,
        "batch_max_credits": max_credits,
    }


def judge(
    *,
    chunks: dict[int, list[str]],
    lake: Lake,
    truths: dict[str, list[str]],
    calls: list[dict[str, Any]],
    kills: list[Kill],
    max_concurrency: int,
    max_credits: int,
    api_key: str,
    texts: list[Any],
) -> dict[str, Any]:
    """Every figure of the run; those in :data:`MUST_BE_ZERO` must be 0."""
    figures: dict[str, Any] = {
        "hashtags": sum(len(h) for h in chunks.values()),
        "batches": len(chunks),
        "pages_paid": len(paid_pages(calls)),
        "calls_429": sum(1 for c in calls if c["status"] == 429),
    }
    figures.update(output_check(chunks, lake, truths))
    figures.update(repaid_check(calls, chunks, kills, max_concurrency))
    figures.update(budget_check(calls, chunks, lake, max_credits))
    figures["key_hits"] = key_hits(api_key, [*lake.texts, *texts])
    return figures


MUST_BE_ZERO = (
    "records_lost",
    "duplicates",
    "foreign_records",
    "out_of_order",
    "hashtags_not_exact",
    "stray_objects",
    "hashtags_failed",
    "batches_missing",
    "repaid_pages_unexplained",
    "budget_breaches",
    "credits_unaccounted",
    "key_hits",
)
