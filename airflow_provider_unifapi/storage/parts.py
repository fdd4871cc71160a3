"""Part-file formats: turn staged pages (JSON lines) into one part, and read a part's ids back.

Staged pages are the raw JSON lines of the records as the API sent them; a part is their
concatenation in the chosen format. Names are deterministic (``part-00000.jsonl.gz``...) so a
compaction interrupted by a crash simply rewrites the same part.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator, Sequence
from typing import Any

from airflow_provider_unifapi.exceptions import UnifAPIInputError

FORMATS = ("jsonl", "jsonl.gz", "parquet")
# gzip level 1: measured on these machines, level 6 (the default) costs about as much CPU as
# fetching and parsing the page; level 1 is ~4x cheaper for ~15% larger files.
DEFAULT_GZIP_LEVEL = 1
_COPY_CHUNK = 1 << 20


def check_format(output_format: Any) -> str:
    """Return ``output_format`` when supported, else raise naming the argument and the choices."""
    if output_format not in FORMATS:
        raise UnifAPIInputError("output_format", f"must be one of {', '.join(FORMATS)}; got {output_format!r}")
    if output_format == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise UnifAPIInputError(
                "output_format",
                "'parquet' needs pyarrow: pip install 'airflow-provider-unifapi[parquet]', or use 'jsonl.gz'",
            ) from None
    return output_format


def part_name(index: int, output_format: str) -> str:
    return f"part-{index:05d}.{output_format}"


def write_part(target: Any, staged: Sequence[Any], output_format: str, *, gzip_level: int = DEFAULT_GZIP_LEVEL) -> None:
    """Write the staged page files ``staged`` (paths, in order) as one part at ``target``."""
    if output_format == "parquet":
        _write_parquet(target, staged)
        return
    with target.open("wb") as raw:
        out: Any = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=gzip_level, mtime=0) if output_format == "jsonl.gz" else raw
        try:
            for page in staged:
                with page.open("rb") as src:
                    while chunk := src.read(_COPY_CHUNK):
                        out.write(chunk)
        finally:
            if out is not raw:
                out.close()


def _write_parquet(target: Any, staged: Sequence[Any]) -> None:
    import pyarrow.json as pa_json
    import pyarrow.parquet as pq

    buffer = b"".join(page.read_bytes() for page in staged)
    if not buffer:
        return _write_empty_parquet(target)
    # One block holding the whole part: schema inference sees every record, so a field that is
    # null on early records and an object later gets one consistent type.
    table = pa_json.read_json(
        io.BytesIO(buffer),
        read_options=pa_json.ReadOptions(block_size=max(len(buffer) + 1, 1 << 20)),
    )
    with target.open("wb") as raw:
        pq.write_table(table, raw, compression="zstd")


def _write_empty_parquet(target: Any) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    with target.open("wb") as raw:
        pq.write_table(pa.table({"id": pa.array([], pa.string())}), raw)


def iter_part_ids(path: Any, output_format: str) -> Iterator[str]:
    """Yield the ``id`` of every record of a part (or of a staged page with ``jsonl``)."""
    if output_format == "parquet":
        import pyarrow.parquet as pq

        with path.open("rb") as raw:
            column = pq.read_table(raw, columns=["id"]).column("id")
        for value in column.to_pylist():
            yield str(value)
        return
    for record in iter_part_records(path, output_format):
        yield str(record["id"])


def iter_part_records(path: Any, output_format: str) -> Iterator[dict[str, Any]]:
    """Yield the records of a part as dicts (for readers and tests; parquet needs pyarrow)."""
    if output_format == "parquet":
        import pyarrow.parquet as pq

        with path.open("rb") as raw:
            table = pq.read_table(raw)
        yield from table.to_pylist()
        return
    with path.open("rb") as raw:
        stream: Any = gzip.GzipFile(fileobj=raw, mode="rb") if output_format == "jsonl.gz" else raw
        # readline(), not iteration: some fsspec file objects (Airflow 2.11's local opener) are not iterable
        while line := stream.readline():
            if line.strip():
                yield json.loads(line)
