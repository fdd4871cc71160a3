"""One try of a collector run: what a task process does, shared by in-process tries and child processes.

Imports nothing from Airflow or pytest, so a child process starts in well under a second. A try
builds a fresh client and collector (as a new task process would), runs until the collector
returns or raises, and reports what happened without ever letting an exception escape: an
exception that is not part of the package's typed contract is reported as ``untyped``.

Two hooks feed the chaos checks:
- every page the collector *committed* (its checkpoint saved) has its request id appended to
  ``known_path`` from ``on_page``, which the collector calls after saving; the ledger's charge for
  those calls must add up to the summary's ``credits_charged`` exactly;
- a :class:`KillAt` raises :class:`SimulatedKill` (a ``BaseException`` the package never catches,
  so no ``except``/save runs, as with SIGKILL) just before a call, just after a call returned (billed
  but not committed), or just after a page was committed.
"""

from __future__ import annotations

import json
import logging
import os
import traceback
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

KILL_POINTS = ("before_call", "after_call", "on_page")


class SimulatedKill(BaseException):
    """Stands for SIGKILL inside one process: nothing in the package catches a ``BaseException``."""


@dataclass(frozen=True)
class KillAt:
    """Die at the ``nth`` occurrence (1-based, counted within the try) of ``point``."""

    point: str
    nth: int


@dataclass
class TrySpec:
    """Everything a try needs, JSON-serialisable so a child process can run the same try."""

    base_url: str
    hashtag_id: str
    folder_url: str
    output_format: str = "jsonl.gz"
    page_size: int = 50
    records_per_part: int = 10_000
    max_credits: int | None = None
    max_records: int | None = None
    min_balance: int | None = None
    fail_on_low_balance: bool = True
    client: dict[str, Any] = field(default_factory=dict)
    known_path: str | None = None
    rss_path: str | None = None
    rss_every: int = 100

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> TrySpec:
        return cls(**json.loads(text))


@dataclass
class TryOutcome:
    """How a try ended: ``done``, ``stopped`` (RunStopped: balance), ``api_error``, ``killed`` or ``untyped``."""

    outcome: str
    summary: dict[str, Any] | None = None
    error_type: str | None = None
    #: str(), repr() and the traceback of the exception, kept for the key scan.
    error_text: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), default=str)

    @classmethod
    def from_json(cls, text: str) -> TryOutcome:
        return cls(**json.loads(text))


def _describe(exc: BaseException) -> str:
    text = [str(exc), repr(exc), "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))]
    to_dict = getattr(exc, "to_dict", None)
    if callable(to_dict):
        text.append(json.dumps(to_dict(), default=str))
    return "\n".join(text)


def _rss_kb() -> tuple[int, int]:
    """(VmRSS, VmHWM) of this process in kB, from /proc (Linux)."""
    rss = hwm = 0
    with open("/proc/self/status", encoding="ascii", errors="replace") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    return rss, hwm


def run_try(
    spec: TrySpec, api_key: str, kill: KillAt | None = None, logger: logging.Logger | None = None
) -> TryOutcome:
    """Run one try of the collector on ``spec`` and say how it ended; never raises (a
    :class:`SimulatedKill` ends the try as ``killed``)."""
    from upath import UPath

    from airflow_provider_unifapi.client import UnifAPIClient
    from airflow_provider_unifapi.collector import (
        Budget,
        HashtagVideoCollector,
        ObjectStorageOutput,
        PagingSettings,
        RunStopped,
    )
    from airflow_provider_unifapi.exceptions import UnifAPIError
    from airflow_provider_unifapi.storage.run_folder import RunFolder

    counts: Counter[str] = Counter()

    def checkpoint_of_death(point: str) -> None:
        counts[point] += 1
        if kill is not None and kill.point == point and counts[point] == kill.nth:
            raise SimulatedKill(point)

    known = open(spec.known_path, "a", encoding="utf-8") if spec.known_path else None  # noqa: SIM115
    rss_out = open(spec.rss_path, "a", encoding="utf-8") if spec.rss_path else None  # noqa: SIM115
    pages = 0
    try:
        client = UnifAPIClient(api_key, spec.base_url, **spec.client)
        real_get = client.get_video_page

        def get_video_page(*args: Any, **kwargs: Any) -> Any:
            checkpoint_of_death("before_call")
            page = real_get(*args, **kwargs)
            checkpoint_of_death("after_call")
            return page

        # An instance attribute shadows the method: the collector calls this wrapper.
        client.get_video_page = get_video_page  # type: ignore[method-assign]

        def on_page(page: Any, checkpoint: Any) -> None:
            nonlocal pages
            pages += 1
            if known is not None:
                known.write(f"{page.request_id} {int(page.billing.truncated_due_to_balance)}\n")
                known.flush()
            if rss_out is not None and pages % spec.rss_every == 0:
                rss, hwm = _rss_kb()
                rss_out.write(f"{checkpoint.records} {rss} {hwm}\n")
                rss_out.flush()
            checkpoint_of_death("on_page")

        folder = RunFolder(UPath(spec.folder_url), spec.output_format)
        manifest = folder.read_manifest()
        if manifest is not None:
            # What the operator does first: a folder with _manifest.json is complete (a try killed
            # after writing it, before Airflow heard of the success) and is returned as it is.
            for key in ("parts", "request_ids", "written_at"):
                manifest.pop(key, None)
            return TryOutcome("done", summary=manifest)
        collector = HashtagVideoCollector(
            client,
            spec.hashtag_id,
            output=ObjectStorageOutput(folder, records_per_part=spec.records_per_part, url=spec.folder_url),
            budget=Budget(
                max_records=spec.max_records, max_credits=spec.max_credits, min_balance=spec.min_balance
            ),
            paging=PagingSettings(page_size=spec.page_size, fail_on_low_balance=spec.fail_on_low_balance),
            logger=logger,
            on_page=on_page,
        )
        summary = collector.run()
        client.close()
        return TryOutcome("done", summary=summary)
    except SimulatedKill:
        return TryOutcome("killed")
    except RunStopped as stop:
        cause = getattr(stop.cause, "error_type", None) or "balance_truncated"
        return TryOutcome("stopped", summary=stop.summary, error_type=cause, error_text=_describe(stop))
    except UnifAPIError as exc:
        return TryOutcome("api_error", error_type=exc.error_type, error_text=_describe(exc))
    except Exception as exc:
        return TryOutcome("untyped", error_type=type(exc).__name__, error_text=_describe(exc))
    finally:
        for handle in (known, rss_out):
            if handle is not None:
                handle.close()


def env_api_key() -> str:
    """The key a child process uses (passed by environment, never on the command line)."""
    return os.environ["UNIFAPI_CHAOS_API_KEY"]
