"""Read back what a contestant delivered and compare it with the sandbox's ground truth.

Independent of the provider's code on purpose: parts are read with gzip/pyarrow directly, listed by
``_manifest.json``.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:  # orjson is in the bench environment (dlt brings it); the test environments use json
    import orjson

    _loads: Callable[[bytes], Any] = orjson.loads
except ImportError:  # pragma: no cover - depends on the environment
    _loads = json.loads


@dataclass
class Delivery:
    """What one run delivered, checked against the truth."""

    rows: int  # records written (duplicates included)
    unique: int  # distinct ids written
    duplicates: int
    correct: bool
    problem: str | None = None


def _open(path: Path) -> Any:
    with open(path, "rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gzipped else open(path, "rb")


def _jsonl_ids(path: Path) -> Iterator[str]:
    with _open(path) as handle:
        for line in handle:
            if line.strip():
                yield str(_loads(line)["id"])


def _parquet_ids(path: Path) -> Iterator[str]:
    import pyarrow.parquet as pq

    for value in pq.read_table(path, columns=["id"]).column("id").to_pylist():
        yield str(value)


def ours_ids(out: Path) -> list[str]:
    manifest_path = out / "_manifest.json"
    if not manifest_path.exists():
        raise FileNotFoundError(f"{out} has no _manifest.json: the run did not finish")
    manifest = json.loads(manifest_path.read_text())
    fmt = manifest["output_format"]
    ids: list[str] = []
    for part in manifest["parts"]:
        path = out / part["name"]
        ids.extend(_parquet_ids(path) if fmt == "parquet" else _jsonl_ids(path))
    return ids


def jsonl_ids(out: Path) -> list[str]:
    from benchmarks.contestants.http_operator import OUTPUT_NAME

    return list(_jsonl_ids(out / OUTPUT_NAME))


def dlt_ids(out: Path) -> list[str]:
    from benchmarks.contestants.dlt_rest_api import DATASET, TABLE

    files = sorted(p for p in (out / DATASET / TABLE).iterdir() if p.is_file())
    if not files:
        raise FileNotFoundError(f"dlt wrote no {TABLE} file under {out}")
    ids: list[str] = []
    for path in files:
        ids.extend(_jsonl_ids(path))
    return ids


READERS: dict[str, Callable[[Path], list[str]]] = {"ours": ours_ids, "jsonl": jsonl_ids, "dlt": dlt_ids}


def check(output: str, out: Path, truth: list[str], *, dedupes: bool, ordered: bool = True) -> Delivery:
    """Compare the ids written under ``out`` with ``truth``.

    A contestant that ``dedupes`` must hold exactly the truth, in order. The others may repeat ids
    the API sent twice (counted as duplicates) but must hold every unique id and nothing else.
    """
    try:
        ids = READERS[output](out)
    except (OSError, KeyError, ValueError) as exc:
        return Delivery(0, 0, 0, False, f"unreadable output: {type(exc).__name__}: {exc}")
    seen: dict[str, None] = dict.fromkeys(ids)
    unique = list(seen)
    delivery = Delivery(rows=len(ids), unique=len(unique), duplicates=len(ids) - len(unique), correct=True)
    if (dedupes and ids != truth) or (
        not dedupes and (unique != truth if ordered else set(unique) != set(truth))
    ):
        delivery.correct = False
    if not delivery.correct:
        truth_set = set(truth)
        missing = sum(1 for i in truth if i not in seen)
        extra = sum(1 for i in unique if i not in truth_set)
        delivery.problem = (
            f"{len(ids)} rows, {len(unique)} unique ids vs {len(truth)} in the truth: "
            f"{missing} missing, {extra} unknown, {delivery.duplicates} duplicates"
            + (", order differs" if not missing and not extra and not delivery.duplicates else "")
        )
    return delivery
