"""The layout of one run's output folder, and every write to it.

::

    <output_path>/
        part-00000.jsonl.gz      committed parts (deterministic names)
        _manifest.json           written last: its presence means the folder is complete
        _checkpoint.json         while the run is unfinished only
        _staging/page-000042.jsonl   pages fetched and paid for, not yet compacted into a part

A page is staged before the checkpoint that names it, and a part is written before the checkpoint
that names it, so a crash between the two only rewrites the same file on the next try.
"""

from __future__ import annotations

import json
from typing import Any, Optional

from airflow_provider_unifapi.storage.checkpoint import CHECKPOINT_NAME, Checkpoint, PartInfo, StagedPage
from airflow_provider_unifapi.storage.idset import IdSet
from airflow_provider_unifapi.storage.parts import DEFAULT_GZIP_LEVEL, iter_part_ids, part_name, write_part

MANIFEST_NAME = "_manifest.json"
STAGING_DIR = "_staging"


class RunFolder:
    """Writes staged pages, parts and the manifest of one run under ``folder``.

    :param folder: an ``ObjectStoragePath`` (or any universal-pathlib path) to the run's folder.
    :param output_format: ``jsonl``, ``jsonl.gz`` or ``parquet``.
    """

    def __init__(self, folder: Any, output_format: str, *, gzip_level: int = DEFAULT_GZIP_LEVEL) -> None:
        self.folder = folder
        self.output_format = output_format
        self.gzip_level = gzip_level
        self.staging = folder / STAGING_DIR

    # -- state of the folder ----------------------------------------------------------------------
    @property
    def manifest_path(self) -> Any:
        return self.folder / MANIFEST_NAME

    def read_manifest(self) -> Optional[dict[str, Any]]:
        if not self.manifest_path.exists():
            return None
        return json.loads(self.manifest_path.read_bytes())

    def prepare(self) -> None:
        """Create the folder (a no-op on object stores without directories)."""
        self.folder.mkdir(parents=True, exist_ok=True)

    def clear(self) -> None:
        """Delete everything this package writes in the folder (for ``overwrite=True``)."""
        if not self.folder.exists():
            return
        for child in list(self.folder.iterdir()):
            name = child.name
            if name.startswith("part-") or name in (MANIFEST_NAME, CHECKPOINT_NAME) or name.startswith(CHECKPOINT_NAME):
                child.unlink()
        self._remove_staging()

    # -- pages and parts --------------------------------------------------------------------------
    def stage_page(self, seq: int, payload: bytes, request_id: str, records: int) -> StagedPage:
        """Write a fetched page's records (JSON lines) before the checkpoint names it."""
        name = f"page-{seq:06d}.jsonl"
        if seq == 0 or not self.staging.exists():
            self.staging.mkdir(parents=True, exist_ok=True)
        (self.staging / name).write_bytes(payload)
        return StagedPage(name=name, records=records, request_id=request_id)

    def compact(self, checkpoint: Checkpoint) -> Optional[PartInfo]:
        """Write the staged pages as the next part; the caller commits the checkpoint, then drops them."""
        if not checkpoint.staged:
            return None
        name = part_name(len(checkpoint.parts), self.output_format)
        staged_paths = [self.staging / page.name for page in checkpoint.staged]
        write_part(self.folder / name, staged_paths, self.output_format, gzip_level=self.gzip_level)
        return PartInfo(
            name=name,
            records=sum(page.records for page in checkpoint.staged),
            pages=len(checkpoint.staged),
            first_request_id=checkpoint.staged[0].request_id,
            last_request_id=checkpoint.staged[-1].request_id,
        )

    def drop_staged(self, pages: list[StagedPage]) -> None:
        for page in pages:
            path = self.staging / page.name
            if path.exists():
                path.unlink()

    def load_ids(self, checkpoint: Checkpoint) -> IdSet:
        """Rebuild the dedupe set of a resumed run from its committed parts and staged pages."""
        ids = IdSet()
        for part in checkpoint.parts:
            for video_id in iter_part_ids(self.folder / part.name, self.output_format):
                ids.add(video_id)
        for page in checkpoint.staged:
            for video_id in iter_part_ids(self.staging / page.name, "jsonl"):
                ids.add(video_id)
        return ids

    def remove_stray_parts(self, checkpoint: Checkpoint) -> None:
        """Delete parts a crashed compaction wrote past the checkpoint (they will be rewritten)."""
        committed = {part.name for part in checkpoint.parts}
        if not self.folder.exists():
            return
        for child in list(self.folder.iterdir()):
            if child.name.startswith("part-") and child.name not in committed:
                child.unlink()
            elif child.name.startswith(f"{CHECKPOINT_NAME}.") and child.name.endswith(".tmp"):
                child.unlink()

    # -- the end ----------------------------------------------------------------------------------
    def write_manifest(self, manifest: dict[str, Any]) -> None:
        self.manifest_path.write_bytes(json.dumps(manifest, indent=2).encode())

    def finish(self) -> None:
        """After the manifest: remove the checkpoint and staging so only parts and manifest remain."""
        checkpoint = self.folder / CHECKPOINT_NAME
        if checkpoint.exists():
            checkpoint.unlink()
        self._remove_staging()

    def _remove_staging(self) -> None:
        if self.staging.exists():
            for child in list(self.staging.iterdir()):
                child.unlink()
            try:
                self.staging.rmdir()
            except (OSError, NotImplementedError):
                pass  # object stores have no directories to remove


def iter_run_records(folder: Any) -> Any:
    """Yield every record of a complete run folder, part by part (one part in memory at most).

    :param folder: the run's folder as an ``ObjectStoragePath``.
    :raises FileNotFoundError: when the folder has no ``_manifest.json`` (the run is incomplete).
    """
    from airflow_provider_unifapi.storage.parts import iter_part_records

    manifest_path = folder / MANIFEST_NAME
    if not manifest_path.exists():
        raise FileNotFoundError(f"{folder} has no {MANIFEST_NAME}: the run is incomplete, do not read it yet")
    manifest = json.loads(manifest_path.read_bytes())
    for part in manifest["parts"]:
        yield from iter_part_records(folder / part["name"], manifest["output_format"])
