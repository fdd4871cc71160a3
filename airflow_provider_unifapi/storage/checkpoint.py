"""The checkpoint of one operator run, committed to object storage after every page.

It stays small on purpose (it is rewritten after each page): counters, the cursor to resume from,
the staged pages not yet compacted, and the list of committed parts. Ids for dedupe are not kept
here: a resumed try rebuilds them from the committed parts and staged pages, which hold every id.
"""

from __future__ import annotations

import json
import uuid
from typing import Any, Optional

from pydantic import BaseModel, Field

CHECKPOINT_NAME = "_checkpoint.json"
CHECKPOINT_VERSION = 1


class StagedPage(BaseModel):
    """A page written under ``_staging/`` and not yet compacted into a part."""

    name: str
    records: int
    request_id: str


class PartInfo(BaseModel):
    """A committed part file."""

    name: str
    records: int
    pages: int
    first_request_id: Optional[str] = None
    last_request_id: Optional[str] = None


class Checkpoint(BaseModel):
    """Everything a retried try needs to continue without paying again for what it already has."""

    version: int = CHECKPOINT_VERSION
    hashtag_id: str
    hashtag_name: Optional[str] = None
    output_format: str
    #: cursor of the next page to fetch (``None`` with ``pages == 0`` means "from the start").
    cursor: Optional[str] = None
    finished: bool = False
    stop_reason: Optional[str] = None
    pages: int = 0
    records: int = 0
    duplicates_dropped: int = 0
    empty_pages_in_row: int = 0
    #: credits the API confirmed in billing fields, all tries (resolution included).
    credits_charged: int = 0
    #: worst-case credits of calls whose billing is unknown (lost responses, killed tries), all tries.
    credits_unconfirmed: int = 0
    #: worst-case cost of the call about to be made; counted as unconfirmed if the try dies in it.
    pending_call_credits: int = 0
    resolution_credits: int = 0
    balance_remaining: Optional[int] = None
    balance_seen_at: Optional[str] = None
    tries: int = 0
    staged: list[StagedPage] = Field(default_factory=list)
    parts: list[PartInfo] = Field(default_factory=list)
    notable_request_ids: list[str] = Field(default_factory=list)
    last_request_id: Optional[str] = None

    @property
    def credits_spent_worst_case(self) -> int:
        """What budgets count: confirmed credits plus everything that may have been billed."""
        return self.credits_charged + self.credits_unconfirmed

    def note_request_id(self, request_id: Optional[str], limit: int = 50) -> None:
        """Remember a request id worth giving support (errors, truncation), bounded."""
        if request_id and request_id not in self.notable_request_ids:
            self.notable_request_ids.append(request_id)
            del self.notable_request_ids[:-limit]


class CheckpointStore:
    """Reads and atomically replaces ``_checkpoint.json`` in a run folder.

    Atomic: the new checkpoint is written under a unique temporary name and renamed over the old
    one, so a worker killed mid-write leaves the previous checkpoint intact.
    """

    def __init__(self, folder: Any) -> None:
        self.folder = folder
        self.path = folder / CHECKPOINT_NAME

    def load(self) -> Optional[Checkpoint]:
        if not self.path.exists():
            return None
        return Checkpoint.model_validate_json(self.path.read_bytes())

    def save(self, checkpoint: Checkpoint) -> None:
        data = checkpoint.model_dump_json().encode()
        tmp = self.folder / f"{CHECKPOINT_NAME}.{uuid.uuid4().hex}.tmp"
        tmp.write_bytes(data)
        tmp.rename(self.path)

    def delete(self) -> None:
        if self.path.exists():
            self.path.unlink()


def dump_json(value: Any) -> bytes:
    return json.dumps(value, indent=2, sort_keys=False, default=str).encode()
