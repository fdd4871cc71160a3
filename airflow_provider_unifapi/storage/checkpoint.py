"""The checkpoint of one run, committed after every page (docs/resume.md); small, so no dedupe ids."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from airflow_provider_unifapi.models import StopReason

CHECKPOINT_NAME = "_checkpoint.json"
#: 2: credit fields renamed (version 1 names are still read as aliases)
CHECKPOINT_VERSION = 2


class StagedPage(BaseModel):
    """A page written under ``_staging/`` and not yet compacted into a part."""

    name: str
    records: int
    request_id: str


class PartInfo(BaseModel):
    """A part file: committed, or (as ``Checkpoint.open_part``) still being appended to."""

    name: str
    records: int = 0
    pages: int = 0
    #: committed length of a part being appended to; bytes past it are from a try that died
    bytes: int = 0
    first_request_id: str | None = None
    last_request_id: str | None = None


class Checkpoint(BaseModel):
    """Everything a retried try needs to continue without paying again for what it already has."""

    model_config = ConfigDict(populate_by_name=True)  # version 1 names are the validation aliases

    version: int = CHECKPOINT_VERSION
    hashtag_id: str
    hashtag_name: str | None = None
    output_format: str
    #: cursor of the next page to fetch (``None`` with ``pages == 0`` means "from the start").
    cursor: str | None = None
    finished: bool = False
    stop_reason: StopReason | None = None
    pages: int = 0
    records: int = 0
    duplicates_dropped: int = 0
    empty_pages_in_row: int = 0
    #: credits the API confirmed in billing fields, all tries (resolution included).
    credits_charged: int = 0
    #: worst-case credits of calls whose billing is unknown (lost responses, killed tries), all tries.
    possibly_billed_credits: int = Field(default=0, validation_alias="credits_unconfirmed")
    #: worst-case cost of the call being made; possibly billed if the try dies in it.
    in_flight_credits: int = Field(default=0, validation_alias="pending_call_credits")
    resolution_credits: int = 0
    balance_remaining: int | None = None
    balance_seen_at: str | None = None
    #: possibly billed credits since ``balance_remaining`` was seen: the balance may be that much lower
    possibly_billed_since_balance: int = Field(default=0, validation_alias="unconfirmed_since_balance")
    tries: int = 0
    staged: list[StagedPage] = Field(default_factory=list)
    #: the part pages are appended to (append mode only), with its committed length
    open_part: PartInfo | None = None
    parts: list[PartInfo] = Field(default_factory=list)
    notable_request_ids: list[str] = Field(default_factory=list)
    last_request_id: str | None = None

    def add_possibly_billed(self, credits: int) -> None:
        """Count the worst case of calls that may have been billed without the API saying so."""
        self.possibly_billed_credits += credits
        self.possibly_billed_since_balance += credits

    def count_in_flight(self) -> None:
        """The try that wrote this checkpoint died in a call: count its worst case as possibly billed."""
        self.add_possibly_billed(self.in_flight_credits)
        self.in_flight_credits = 0

    @property
    def balance_worst_case(self) -> int | None:
        """The lowest the workspace balance may be now, given what may have been billed since."""
        if self.balance_remaining is None:
            return None
        return self.balance_remaining - self.possibly_billed_since_balance

    @property
    def credits_spent(self) -> int:
        """What budgets count: confirmed credits plus everything that may have been billed."""
        return self.credits_charged + self.possibly_billed_credits

    def note_request_id(self, request_id: str | None, limit: int = 50) -> None:
        """Remember a request id worth giving support (errors, truncation): the newest ``limit``."""
        if request_id and request_id not in self.notable_request_ids:
            self.notable_request_ids.append(request_id)
            del self.notable_request_ids[:-limit]


# Object stores whose single PUT replaces an object atomically: no temporary name needed.
_ATOMIC_PUT_PROTOCOLS = frozenset({"s3", "s3a", "gs", "gcs", "abfs", "abfss", "az"})


def _first_valid(lines: Any) -> Checkpoint | None:
    for line in lines:
        try:
            return Checkpoint.model_validate_json(line)
        except ValueError:
            continue
    return None


class CheckpointStore:
    """Keeps ``_checkpoint.json`` of a run folder; the last complete line of the file wins.

    Local disks: an append-only journal, rewritten whole only by :meth:`compact` (why: README, "Output
    layout and the summary"). Object stores with atomic PUT: one PUT a commit; others: temporary + rename.

    :param io: the run folder's :class:`~airflow_provider_unifapi.storage.fsio.FolderIO`.
    """

    def __init__(self, io: Any) -> None:
        self.io = io
        self.journal = io.local
        protocols = getattr(io.fs, "protocol", ())
        protocols = {protocols} if isinstance(protocols, str) else set(protocols)
        self.atomic_put = bool(protocols & _ATOMIC_PUT_PROTOCOLS)
        self.tmp_name = f"{CHECKPOINT_NAME}.{uuid.uuid4().hex}.tmp"
        self._handle: Any = None

    def load(self) -> Checkpoint | None:
        """The last complete commit (an earlier version's read as the current one), or ``None``."""
        if not self.io.exists(CHECKPOINT_NAME):
            return None
        # Every commit ends with a newline, so whatever follows the last one is a torn append: skip it.
        complete = self.io.read(CHECKPOINT_NAME).split(b"\n")[:-1]
        latest = _first_valid(reversed(complete))
        if latest is None:
            return None
        if "parts" not in latest.model_fields_set:
            # A journal line leaves the committed parts out (see save); they are in the journal's
            # first line, which compact() wrote, and cannot have changed since.
            base = _first_valid(line for line in complete if b'"parts":' in line)
            latest.parts = base.parts if base is not None else []
        latest.version = CHECKPOINT_VERSION
        return latest

    def save(self, checkpoint: Checkpoint) -> None:
        """Commit ``checkpoint``: one journal line (parts left out) on local disks, the whole file elsewhere."""
        if self.journal:
            # Parts change only when a part is closed, which compacts the journal with them; leaving
            # them out of the per-page lines keeps a commit small at a million records (~100 parts).
            line = checkpoint.model_dump_json(exclude={"parts"}).encode() + b"\n"
            if self._handle is None:
                self._handle = self.io.open(CHECKPOINT_NAME, "ab")
            self._handle.write(line)
            self._handle.flush()  # into the OS: survives the death of this process
        else:
            self._write_whole(checkpoint.model_dump_json().encode() + b"\n")

    def compact(self, checkpoint: Checkpoint) -> None:
        """Commit ``checkpoint`` and drop the journal's history (called when a part is closed)."""
        self.close()
        self._write_whole(checkpoint.model_dump_json().encode() + b"\n")

    def _write_whole(self, line: bytes) -> None:
        if self.atomic_put:
            self.io.write(CHECKPOINT_NAME, line)
        else:
            self.io.write(self.tmp_name, line)
            self.io.replace(self.tmp_name, CHECKPOINT_NAME)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def delete(self) -> None:
        self.close()
        self.io.delete(CHECKPOINT_NAME)
