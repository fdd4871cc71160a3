"""Every write to one run's output folder (layout: docs/output.md; append and staging modes: README,
"Output layout and the summary")."""

from __future__ import annotations

import json
import os
from typing import Any, cast

from airflow_provider_unifapi.exceptions import UnifAPIOutputMismatchError
from airflow_provider_unifapi.storage.checkpoint import CHECKPOINT_NAME, Checkpoint, PartInfo, StagedPage
from airflow_provider_unifapi.storage.fsio import FolderIO
from airflow_provider_unifapi.storage.idset import IdSet
from airflow_provider_unifapi.storage.parts import (
    DEFAULT_GZIP_LEVEL,
    count_records,
    gzip_member,
    iter_part_records,
    part_name,
    read_ids,
    write_part,
)

MANIFEST_NAME = "_manifest.json"
#: a single-hashtag folder's book of name resolutions (collector/names.py), kept while unfinished
NAMES_FILE = "_names.json"
STAGING_DIR = "_staging"


class RunFolder:
    """Writes staged pages, parts and the manifest of one run under ``folder``.

    :param folder: an ``ObjectStoragePath`` (or any universal-pathlib path) to the run's folder.
    :param output_format: ``jsonl``, ``jsonl.gz`` or ``parquet``.
    :param gzip_level: compression level of ``jsonl.gz`` parts.
    """

    def __init__(self, folder: Any, output_format: str, *, gzip_level: int = DEFAULT_GZIP_LEVEL) -> None:
        self.folder = folder
        self.output_format = output_format
        self.gzip_level = gzip_level
        self.io = FolderIO(folder)
        self._staging_ready = False
        #: append pages to the open part (local disks) instead of staging them
        self.append_mode = self.io.local and output_format in ("jsonl", "jsonl.gz")
        self._part_handle: Any = None
        self._part_handle_name: str | None = None

    def read_manifest(self) -> dict[str, Any] | None:
        if not self.io.exists(MANIFEST_NAME):
            return None
        return cast(dict[str, Any], json.loads(self.io.read(MANIFEST_NAME)))

    def prepare(self) -> None:
        """Create the folder (a no-op on object stores without directories)."""
        self.io.makedirs()

    def clear(self) -> None:
        """Delete everything this package writes in the folder (for ``overwrite=True``)."""
        for name in self.io.listdir():
            if name.startswith("part-") or name == MANIFEST_NAME or name.startswith(CHECKPOINT_NAME):
                self.io.delete(name)
        self._remove_staging()

    def add_page(self, checkpoint: Checkpoint, payload: bytes, request_id: str, records: int) -> None:
        """Make a page's records (JSON lines) durable; the caller then commits the checkpoint."""
        if not self.append_mode:
            checkpoint.staged.append(self.stage_page(checkpoint.pages, payload, request_id, records))
            return
        part = checkpoint.open_part
        if part is None:
            part = checkpoint.open_part = PartInfo(name=part_name(len(checkpoint.parts), self.output_format))
        if self.output_format == "jsonl.gz":
            payload = gzip_member(payload, self.gzip_level)
        handle = self._open_part(part.name)
        handle.write(payload)
        handle.flush()  # into the OS before the checkpoint names these bytes: survives a kill
        part.bytes += len(payload)
        part.records += records
        part.pages += 1
        part.first_request_id = part.first_request_id or request_id
        part.last_request_id = request_id

    def _open_part(self, name: str) -> Any:
        if self._part_handle_name != name:
            self._close_part_handle()
            self._part_handle = self.io.open(name, "ab")
            self._part_handle_name = name
        return self._part_handle

    def _close_part_handle(self) -> None:
        if self._part_handle is not None:
            self._part_handle.close()
            self._part_handle = self._part_handle_name = None

    def pending_records(self, checkpoint: Checkpoint) -> int:
        """Records in the part being built (open part, or staged pages)."""
        if self.append_mode:
            return checkpoint.open_part.records if checkpoint.open_part else 0
        return sum(page.records for page in checkpoint.staged)

    def close_part(self, checkpoint: Checkpoint) -> list[StagedPage]:
        """Commit the part being built into ``checkpoint``; return the staged pages to drop after it."""
        if self.append_mode:
            if checkpoint.open_part is not None:
                self._close_part_handle()
                checkpoint.parts.append(checkpoint.open_part)
                checkpoint.open_part = None
            return []
        part = self.compact(checkpoint)
        if part is None:
            return []
        done = checkpoint.staged
        checkpoint.parts.append(part)
        checkpoint.staged = []
        return done

    def recover(self, checkpoint: Checkpoint) -> None:
        """Bring a resumed run's folder back to its checkpoint."""
        self.remove_stray_files(checkpoint)
        part = checkpoint.open_part
        if part is not None:
            path = self.io.path(part.name)
            size = os.path.getsize(path) if self.io.exists(part.name) else 0
            if size < part.bytes:
                raise RuntimeError(
                    f"{part.name} holds {size} bytes but the checkpoint committed {part.bytes}: "
                    "the folder was changed outside this run; delete it (or use overwrite=True)"
                )
            if size > part.bytes:
                os.truncate(path, part.bytes)  # bytes a dead try appended after its last commit

    def stage_page(self, seq: int, payload: bytes, request_id: str, records: int) -> StagedPage:
        """Write a fetched page's records (JSON lines) before the checkpoint names it."""
        if not self._staging_ready:
            self.io.makedirs(STAGING_DIR)
            self._staging_ready = True
        name = f"page-{seq:06d}.jsonl"
        self.io.write(f"{STAGING_DIR}/{name}", payload)
        return StagedPage(name=name, records=records, request_id=request_id)

    def compact(self, checkpoint: Checkpoint) -> PartInfo | None:
        """Write the staged pages as the next part; the caller commits the checkpoint, then drops them."""
        if not checkpoint.staged:
            return None
        name = part_name(len(checkpoint.parts), self.output_format)
        staged = [f"{STAGING_DIR}/{page.name}" for page in checkpoint.staged]
        write_part(self.io, name, staged, self.output_format, gzip_level=self.gzip_level)
        return PartInfo(
            name=name,
            records=sum(page.records for page in checkpoint.staged),
            pages=len(checkpoint.staged),
            first_request_id=checkpoint.staged[0].request_id,
            last_request_id=checkpoint.staged[-1].request_id,
        )

    def drop_staged(self, pages: list[StagedPage]) -> None:
        for page in pages:
            self.io.delete(f"{STAGING_DIR}/{page.name}")

    def load_ids(self, checkpoint: Checkpoint) -> IdSet:
        """Rebuild the dedupe set of a resumed run from its committed parts and staged pages."""
        ids = IdSet()
        parts = checkpoint.parts + ([checkpoint.open_part] if checkpoint.open_part else [])
        for name, fmt in [(part.name, self.output_format) for part in parts] + [
            (f"{STAGING_DIR}/{page.name}", "jsonl") for page in checkpoint.staged
        ]:
            with self.io.open(name, "rb") as handle:
                for video_id in read_ids(handle, fmt):
                    ids.add(video_id)
        return ids

    def remove_stray_files(self, checkpoint: Checkpoint | None) -> None:
        """Delete parts a crash wrote past ``checkpoint`` (``None``: no part), and temporary checkpoints."""
        committed = set() if checkpoint is None else {part.name for part in checkpoint.parts}
        if checkpoint is not None and checkpoint.open_part is not None:
            committed.add(checkpoint.open_part.name)
        for name in self.io.listdir():
            if (name.startswith("part-") and name not in committed) or (
                name.startswith(f"{CHECKPOINT_NAME}.") and name.endswith(".tmp")
            ):
                self.io.delete(name)

    def check_parts(self, checkpoint: Checkpoint) -> None:
        """Raise :class:`UnifAPIOutputMismatchError` when the parts hold other than the committed records."""
        held = sum(self._records_held(part) for part in checkpoint.parts)
        if held != checkpoint.records:
            raise UnifAPIOutputMismatchError(
                f"{self.folder}: the parts hold {held:,} records but this run committed {checkpoint.records:,}; "
                "the folder was written by another writer or changed by hand. Nothing was deleted and no "
                "manifest written: inspect it, then rerun with overwrite=True (or delete it)"
            )

    def _records_held(self, part: PartInfo) -> int:
        if part.bytes and self.io.local and os.path.getsize(self.io.path(part.name)) == part.bytes:
            # Exactly its committed length: a stat, not a read (another writer's appends change it).
            return part.records
        with self.io.open(part.name, "rb") as handle:
            return count_records(handle, self.output_format)

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        self.io.write(MANIFEST_NAME, json.dumps(manifest, indent=2).encode())

    def finish(self) -> None:
        """After the manifest: remove the checkpoint, names and staging: only parts and manifest remain."""
        self._close_part_handle()
        for name in self.io.listdir():
            if name.startswith((CHECKPOINT_NAME, NAMES_FILE)):
                self.io.delete(name)
        self._remove_staging()

    def remove_if_empty(self) -> None:
        """Remove a local folder when nothing is in it (object stores have no empty folders)."""
        if self.io.local and not self.io.listdir():
            self.io.rmdir("")

    def start_fresh(self) -> None:
        """Before a run with no checkpoint: remove parts and staged pages that no checkpoint names."""
        self.remove_stray_files(None)
        self._remove_staging()

    def _remove_staging(self) -> None:
        for name in self.io.listdir(STAGING_DIR):
            self.io.delete(f"{STAGING_DIR}/{name}")
        self.io.rmdir(STAGING_DIR)
        self._staging_ready = False


def iter_run_records(folder: Any) -> Any:
    """Yield every record of a complete run folder, part by part (one part in memory at most).

    :param folder: the run's folder as an ``ObjectStoragePath``.
    :raises FileNotFoundError: when the folder has no ``_manifest.json`` (the run is incomplete).
    """
    manifest = RunFolder(folder, "jsonl").read_manifest()
    if manifest is None:
        raise FileNotFoundError(f"{folder} has no {MANIFEST_NAME}: the run is incomplete, do not read it yet")
    for part in manifest["parts"]:
        yield from iter_part_records(folder / part["name"], manifest["output_format"])
