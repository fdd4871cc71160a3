"""Part-file formats: turn staged pages (JSON lines) into one part, and read a part's records back.

Names are deterministic (``part-00000.jsonl.gz``...): a crashed compaction rewrites the same part.
``jsonl.gz`` is standard gzip, by python-isal when installed (the ``fast`` extra), else zlib.
"""

from __future__ import annotations

import gzip
import importlib
import io
import json
import zlib
from collections.abc import Iterator, Sequence
from types import ModuleType
from typing import IO, Any, Protocol

from airflow_provider_unifapi.exceptions import UnifAPIInputError

_isal_zlib: ModuleType | None
try:
    _isal_zlib = importlib.import_module("isal.isal_zlib")
except ImportError:  # the optional `fast` extra is not installed
    _isal_zlib = None

FORMATS = ("jsonl", "jsonl.gz", "parquet")
DEFAULT_GZIP_LEVEL = 1
_GZIP_WBITS = 31  # zlib's wbits for a gzip header and trailer (header mtime 0: deterministic bytes)


class Compressor(Protocol):
    def compress(self, data: bytes, /) -> bytes: ...

    def flush(self, mode: int = ..., /) -> bytes: ...


def isal_available() -> bool:
    """True when python-isal will compress ``jsonl.gz`` parts."""
    return _isal_zlib is not None


def compressor(level: int, *, use_isal: bool = True) -> Compressor:
    """A compressor for one gzip member at zlib ``level`` 0-9 (1-9 map onto isal's 1-3; its 0 compresses)."""
    if use_isal and _isal_zlib is not None and level > 0:
        isal: Compressor = _isal_zlib.compressobj(min(3, (level + 2) // 3), _isal_zlib.DEFLATED, _GZIP_WBITS)
        return isal
    return zlib.compressobj(level, zlib.DEFLATED, _GZIP_WBITS)


def gzip_member(data: bytes, level: int) -> bytes:
    """``data`` as one complete gzip member (a part may hold many: ``cat a.gz b.gz`` is valid gzip)."""
    member = compressor(level)
    return member.compress(data) + member.flush()


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


def _decompressed(handle: IO[bytes], output_format: str) -> Any:
    return gzip.GzipFile(fileobj=handle, mode="rb") if output_format == "jsonl.gz" else handle


def read_records(handle: IO[bytes], output_format: str) -> Iterator[dict[str, Any]]:
    """Yield the records of an open part (or staged page, as ``jsonl``) as dicts."""
    if output_format == "parquet":
        import pyarrow.parquet as pq

        yield from pq.read_table(handle).to_pylist()
        return
    stream = _decompressed(handle, output_format)
    # readline(), not iteration: some fsspec file objects (Airflow 2.11's local opener) are not iterable
    while line := stream.readline():
        if line.strip():
            yield json.loads(line)


def count_records(handle: IO[bytes], output_format: str) -> int:
    """Records in an open part: parquet's row count from its footer, else its non-empty lines."""
    if output_format == "parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(handle).metadata.num_rows)
    stream = _decompressed(handle, output_format)
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
