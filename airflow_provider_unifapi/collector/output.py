"""Where a run's records go: a folder in object storage (resumable) or a list returned as XCom.

The collector speaks to both through :class:`RunOutput`, so its paging loop has no branch on the
output kind.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Protocol

from airflow_provider_unifapi.exceptions import UnifAPIInputError
from airflow_provider_unifapi.models import HashtagStatus, Video
from airflow_provider_unifapi.storage.checkpoint import Checkpoint, CheckpointStore
from airflow_provider_unifapi.storage.claim import FolderClaim
from airflow_provider_unifapi.storage.idset import IdSet
from airflow_provider_unifapi.storage.run_folder import NAMES_FILE, RunFolder

# The model's own serializer: the same bytes as ``model_dump_json`` (unknown fields included), without
# the per-call wrapper of TypeAdapter.dump_json.
_VIDEO_JSON = Video.__pydantic_serializer__.to_json


class RunOutput:
    """What the collector needs from where the records go; the defaults are those of an output that
    keeps nothing between tries, which :class:`ObjectStorageOutput` overrides."""

    #: the folder URL shown in summaries and messages (``None`` for XCom)
    url: str | None = None
    #: the part format (``None`` for XCom)
    output_format: str | None = None
    #: a retried try continues with the records of earlier tries (else it pages from the start)
    keeps_records = False
    #: a retried try counts what earlier tries spent against the budget
    keeps_budget = False

    def name_store(self) -> NameStore:
        """Where the hashtag's name resolution is kept between tries."""
        raise NotImplementedError

    def claim(self, owner: str) -> None:
        """Become the output's only writer (a folder's claim); raises if another live writer holds it.

        :param owner: who writes, shown to a writer that is refused.
        """

    def release(self) -> None:
        """Give the claim up (safe to call more than once)."""

    def stored_run(self) -> dict[str, Any] | None:
        """The manifest of a run that ended in this output (done or stopped), or ``None``."""
        return None

    def clear(self) -> None:
        """Delete everything an earlier run wrote (``overwrite=True``)."""

    def tidy(self) -> None:
        """Remove what only a resume needs from a finished output (a try killed before cleaning up)."""

    def earlier_checkpoint(self) -> Checkpoint | None:
        """The checkpoint an unfinished earlier try left, without changing anything."""
        return None

    def open(self, hashtag_id: str) -> Checkpoint | None:
        """Make the output ready; return the checkpoint to resume, or ``None`` to start afresh.

        :param hashtag_id: the hashtag this run pages (a stored run of another one is refused).
        """
        return None

    def load_ids(self, checkpoint: Checkpoint) -> IdSet:
        """The ids a resumed run already holds (for dedupe)."""
        return IdSet()

    def keep(self, checkpoint: Checkpoint, videos: list[Video], request_id: str) -> None:
        """Make a page's new records durable before the checkpoint names them."""
        raise NotImplementedError

    def page_done(self, checkpoint: Checkpoint) -> None:
        """The page's counters and cursor are final: close the part if it is full."""

    def save(self, checkpoint: Checkpoint) -> None:
        """Commit the checkpoint."""

    def finish(self, checkpoint: Checkpoint) -> None:
        """Close the last part and commit the finished checkpoint."""

    def complete(self, checkpoint: Checkpoint, summary: dict[str, Any]) -> None:
        """Write the manifest (``status`` done or stopped); a done run's checkpoint goes, a stopped
        run's stays with its cursor."""

    def skip(self, checkpoint: Checkpoint) -> None:
        """The run stopped before its first page: no manifest; keep only what counts its spend."""

    def close(self) -> None:
        """Release open files (safe to call more than once)."""


class TaskState(Protocol):
    """What XCom mode keeps across tries in: Airflow 3.3's ``context["task_state_store"]``."""

    def get(self, key: str, default: Any = None) -> Any: ...

    def set(self, key: str, value: Any) -> None: ...

    def delete(self, key: str) -> None: ...


#: the task state store key of XCom mode's checkpoint (money only)
XCOM_STATE_KEY = "unifapi_xcom_checkpoint"
#: the task state store key of XCom mode's name resolutions
NAMES_STATE_KEY = "unifapi_names"


class NameStore(Protocol):
    """Where a book of name resolutions (:mod:`.names`) is kept between tries."""

    def load(self) -> dict[str, dict[str, Any]]: ...

    def save(self, entries: dict[str, dict[str, Any]]) -> None: ...


class StateStore:
    """A book in XCom mode: the task state store (Airflow >= 3.3), else memory for the try.

    :param state: the task state store, or ``None``.
    """

    def __init__(self, state: TaskState | None) -> None:
        self.state = state
        self.entries: dict[str, dict[str, Any]] = {}

    def load(self) -> dict[str, dict[str, Any]]:
        if self.state is not None:
            self.entries = dict(self.state.get(NAMES_STATE_KEY) or {})
        return self.entries

    def save(self, entries: dict[str, dict[str, Any]]) -> None:
        self.entries = entries
        if self.state is not None:
            self.state.set(NAMES_STATE_KEY, entries)


class FileStore:
    """A book in a JSON file of a folder, replaced whole (written aside and renamed).

    :param io: the folder's :class:`~airflow_provider_unifapi.storage.fsio.FolderIO`.
    :param name: the file's name.
    """

    def __init__(self, io: Any, name: str) -> None:
        self.io = io
        self.name = name

    def load(self) -> dict[str, dict[str, Any]]:
        if not self.io.exists(self.name):
            return {}
        entries: dict[str, dict[str, Any]] = json.loads(self.io.read(self.name))
        return entries

    def save(self, entries: dict[str, dict[str, Any]]) -> None:
        write_json(self.io, self.name, entries)


def write_json(io: Any, name: str, data: dict[str, Any]) -> None:
    """Write ``data`` aside and rename it over ``name``: a try killed mid-write leaves the old one whole."""
    io.write(f"{name}.tmp", json.dumps(data, indent=1, sort_keys=True, default=str).encode())
    io.replace(f"{name}.tmp", name)


class XComOutput(RunOutput):
    """Records kept in memory and returned as XCom.

    Records never survive a try. With ``state`` (Airflow >= 3.3's task state store, shared by the
    tries of one task instance) the checkpoint is saved there after every page, so a retried try
    counts what earlier tries spent (and may have spent) against ``max_credits``, and reuses a
    hashtag name's resolution; it still pages from the start. Without ``state`` budgets hold per try.
    One task instance's tries run one at a time, so there is nothing to claim.

    :param state: the task state store, or ``None``.
    """

    #: what a retried try keeps of an earlier try's checkpoint: the money, not the records (and so
    #: not the cursor, pages or ids), which died with the try
    CARRIED_OVER = frozenset(
        {
            "hashtag_name",
            "credits_charged",
            "possibly_billed_credits",
            "in_flight_credits",
            "resolution_credits",
            "balance_remaining",
            "balance_seen_at",
            "possibly_billed_since_balance",
            "tries",
            "notable_request_ids",
        }
    )

    def __init__(self, state: TaskState | None = None) -> None:
        self.state = state
        self.keeps_budget = state is not None
        #: the kept records, as JSON-able dicts, in the API's order
        self.records: list[dict[str, Any]] = []

    def name_store(self) -> NameStore:
        return StateStore(self.state)

    def earlier_checkpoint(self) -> Checkpoint | None:
        if self.state is None:
            return None
        stored = self.state.get(XCOM_STATE_KEY)
        return None if stored is None else Checkpoint.model_validate(stored)

    def open(self, hashtag_id: str) -> Checkpoint | None:
        earlier = self.earlier_checkpoint()
        if earlier is None:
            return None
        money = earlier.model_dump(include=set(self.CARRIED_OVER))
        return Checkpoint(hashtag_id=hashtag_id, output_format="xcom", **money)

    def keep(self, checkpoint: Checkpoint, videos: list[Video], request_id: str) -> None:
        self.records.extend(video.model_dump(mode="json") for video in videos)

    def save(self, checkpoint: Checkpoint) -> None:
        if self.state is not None:
            self.state.set(XCOM_STATE_KEY, checkpoint.model_dump(mode="json"))

    def complete(self, checkpoint: Checkpoint, summary: dict[str, Any]) -> None:
        # A finished run's spend is settled: a later clear-and-rerun is new work with a new budget.
        if self.state is not None:
            self.state.delete(XCOM_STATE_KEY)
            self.state.delete(NAMES_STATE_KEY)

    def skip(self, checkpoint: Checkpoint) -> None:
        self.complete(checkpoint, {})


class ObjectStorageOutput(RunOutput):
    """Part files, a checkpoint after every page and a manifest in one run folder.

    :param folder: the run folder.
    :param records_per_part: records after which the part being built is closed.
    :param url: the folder's URL as the user gave it (summaries and messages).
    """

    def __init__(self, folder: RunFolder, *, records_per_part: int = 10_000, url: str | None = None) -> None:
        self.folder = folder
        self.records_per_part = records_per_part
        self.url = url
        self.output_format: str | None = folder.output_format
        self.keeps_records = self.keeps_budget = True
        self.store = CheckpointStore(folder.io)
        self.writer = FolderClaim(folder.io, url or str(folder.folder))

    def name_store(self) -> NameStore:
        return FileStore(self.folder.io, NAMES_FILE)

    def claim(self, owner: str) -> None:
        self.writer.owner = owner
        self.writer.acquire()

    def release(self) -> None:
        if self.writer.number is not None:
            self.writer.release()
            self.folder.remove_if_empty()  # a run that stopped before writing anything leaves nothing

    def stored_run(self) -> dict[str, Any] | None:
        return self.folder.read_manifest()

    def clear(self) -> None:
        self.folder.clear()

    def tidy(self) -> None:
        self.folder.finish()

    def earlier_checkpoint(self) -> Checkpoint | None:
        return self.store.load()

    def open(self, hashtag_id: str) -> Checkpoint | None:
        self.folder.prepare()
        checkpoint = self.store.load()
        if checkpoint is None:
            # Nothing to resume: parts left by a run whose checkpoint was lost or deleted must be
            # replaced, not added to.
            self.folder.start_fresh()
            return None
        if checkpoint.hashtag_id != hashtag_id or checkpoint.output_format != self.output_format:
            raise UnifAPIInputError(
                "output_path",
                f"already holds an unfinished run for hashtag {checkpoint.hashtag_id} in "
                f"{checkpoint.output_format}; use another output_path (e.g. one templated with the run's day, {{{{ (dag_run.logical_date or dag_run.run_after) | ds }}}}) "
                "or overwrite=True",
            )
        self.folder.recover(checkpoint)
        return checkpoint

    def load_ids(self, checkpoint: Checkpoint) -> IdSet:
        return self.folder.load_ids(checkpoint)

    def keep(self, checkpoint: Checkpoint, videos: list[Video], request_id: str) -> None:
        self.writer.check()
        payload = b"\n".join([_VIDEO_JSON(video) for video in videos]) + b"\n"
        self.folder.add_page(checkpoint, payload, request_id, len(videos))

    def page_done(self, checkpoint: Checkpoint) -> None:
        if self.folder.pending_records(checkpoint) >= self.records_per_part:
            self._close_part(checkpoint)

    def _close_part(self, checkpoint: Checkpoint) -> None:
        done = self.folder.close_part(checkpoint)
        self.store.compact(checkpoint)  # the part is committed before its staged pages go
        self.folder.drop_staged(done)

    def save(self, checkpoint: Checkpoint) -> None:
        self.writer.check()  # a writer whose claim was taken over stops here, before writing again
        self.store.save(checkpoint)

    def finish(self, checkpoint: Checkpoint) -> None:
        self._close_part(checkpoint)

    def complete(self, checkpoint: Checkpoint, summary: dict[str, Any]) -> None:
        manifest = {
            **summary,
            "parts": [part.model_dump() for part in checkpoint.parts],
            "request_ids": {
                "last": checkpoint.last_request_id,
                "notable": list(checkpoint.notable_request_ids),
            },
            "written_at": datetime.now(timezone.utc).isoformat(),
        }
        self.writer.check()
        # Written from what the parts hold, never from memory alone.
        self.folder.check_parts(checkpoint)
        self.folder.write_manifest(manifest)  # written last: the folder is done (or stopped) as it says
        self.store.close()
        if summary["status"] == HashtagStatus.DONE:
            self.folder.finish()

    def skip(self, checkpoint: Checkpoint) -> None:
        if checkpoint.credits_spent:
            self.store.compact(checkpoint)  # its spend (a name's resolution, a call of unknown outcome)
        else:
            self.store.delete()

    def close(self) -> None:
        self.store.close()
