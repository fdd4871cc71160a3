"""Part-file formats: turn staged pages (JSON lines) into one part, and read a part's records back.

Staged pages are the JSON lines of the records as the API sent them; a part is their concatenation
in the chosen format. Names are deterministic (``part-00000.jsonl.gz``...) so a compaction
interrupted by a crash simply rewrites the same part.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator, Sequence
from typing import IO, Any

from airflow_provider_unifapi.exceptions import UnifAPIInputError
from airflow_provider_unifapi.storage.compression import compressor

FORMATS = ("jsonl", "jsonl.gz", "parquet")
# gzip level 1: measured on these machines, zlib's level 6 (its default) costs ~2.5x the CPU of level 1
# (540 vs 210 microseconds for a 50-record page) -- more than parsing the page itself -- for files
# ~15% smaller. See compression.py for the faster gzip used when python-isal is installed.
DEFAULT_GZIP_LEVEL = 1


def check_format(output_format: Any) -> str:
    """Return ``output_format`` when supported, else raise naming the argument and the choices."""
    if output_format not in FORMATS:
        raise UnifAPIInputError(
            "output_format", f"must be one of {', '.join(FORMATS)}; got {output_format!r}"
        )
    if output_format == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise UnifAPIInputError(
                "output_format",
                "'parquet' needs pyarrow: pip install 'airflow-provider-unifapi[parquet]', or use 'jsonl.gz'",
            ) from None
    return str(output_format)


def part_name(index: int, output_format: str) -> str:
    return f"part-{index:05d}.{output_format}"


def write_part(
    folder_io: Any,
    target: str,
    staged: Sequence[str],
    output_format: str,
    *,
    gzip_level: int = DEFAULT_GZIP_LEVEL,
) -> None:
    """Write the staged page files ``staged`` (names in the folder, in order) as one part ``target``."""
    if output_format == "parquet":
        _write_parquet(folder_io, target, staged)
        return
    with folder_io.open(target, "wb") as raw:
        member = compressor(gzip_level) if output_format == "jsonl.gz" else None
        for name in staged:
            data = folder_io.read(name)
            raw.write(member.compress(data) if member is not None else data)
        if member is not None:
            raw.write(member.flush())


def _write_parquet(folder_io: Any, target: str, staged: Sequence[str]) -> None:
    import pyarrow as pa
    import pyarrow.json as pa_json
    import pyarrow.parquet as pq

    buffer = b"".join(folder_io.read(name) for name in staged)
    if buffer:
        # One block holding the whole part: schema inference sees every record, so a field that is
        # null on early records and an object later gets one consistent type.
        table = pa_json.read_json(
            io.BytesIO(buffer), read_options=pa_json.ReadOptions(block_size=max(len(buffer) + 1, 1 << 20))
        )
    else:
        table = pa.table({"id": pa.array([], pa.string())})
    with folder_io.open(target, "wb") as raw:
        pq.write_table(table, raw, compression="zstd")


def read_records(handle: IO[bytes], output_format: str) -> Iterator[dict[str, Any]]:
    """Yield the records of an open part (or staged page, as ``jsonl``) as dicts."""
    if output_format == "parquet":
        import pyarrow.parquet as pq

        yield from pq.read_table(handle).to_pylist()
        return
    stream: Any = gzip.GzipFile(fileobj=handle, mode="rb") if output_format == "jsonl.gz" else handle
    # readline(), not iteration: some fsspec file objects (Airflow 2.11's local opener) are not iterable
    while line := stream.readline():
        if line.strip():
            yield json.loads(line)


def count_records(handle: IO[bytes], output_format: str) -> int:
    """Records in an open part: parquet's row count from its footer, else its non-empty lines."""
    if output_format == "parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(handle).metadata.num_rows)
    stream: Any = gzip.GzipFile(fileobj=handle, mode="rb") if output_format == "jsonl.gz" else handle
    count, last = 0, b"\n"
    while chunk := stream.read(1 << 20):
        # Records are one line each and never contain a raw newline (JSON escapes it).
        count += chunk.count(b"\n")
        last = chunk[-1:]
    return count + (last != b"\n")


def read_ids(handle: IO[bytes], output_format: str) -> Iterator[str]:
    """Yield the ``id`` of every record of an open part (parquet reads the id column only)."""
    if output_format == "parquet":
        import pyarrow.parquet as pq

        for value in pq.read_table(handle, columns=["id"]).column("id").to_pylist():
            yield str(value)
        return
    for record in read_records(handle, output_format):
        yield str(record["id"])


def iter_part_records(path: Any, output_format: str) -> Iterator[dict[str, Any]]:
    """Yield the records of the part at ``path`` (an ObjectStoragePath/UPath) as dicts."""
    with path.open("rb") as handle:
        yield from read_records(handle, output_format)
