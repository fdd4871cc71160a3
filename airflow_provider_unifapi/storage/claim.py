"""One writer per folder: a create-only claim file with an expiry (docs/resume.md, "One writer per folder").

Object stores have no locks, so claims are numbered (``_writer.000000.json``...): the highest is the
writer, and of two takers of an expired claim only one can create the next number.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, cast

from airflow_provider_unifapi.exceptions import (
    UnifAPIClaimLostError,
    UnifAPIFolderBusyError,
    UnifAPIInputError,
)

CLAIM_PREFIX = "_writer."
_CLAIM_FILE = re.compile(rf"{re.escape(CLAIM_PREFIX)}(\d+)\.json")
#: how long a claim stands without renewal (seconds); a writer renews after a third of it
DEFAULT_CLAIM_TTL = 600.0


def _machine() -> str:
    """This machine: host name plus boot id, so containers sharing a kernel still differ by host name."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as handle:
            boot = handle.read().strip()
    except OSError:
        boot = ""
    return f"{socket.gethostname()}/{boot}"


def _process_started(pid: int) -> str | None:
    """The start time of ``pid`` in clock ticks since boot (tells a reused pid apart), if readable."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # fields[0] is the state (field 3 of stat); a zombie or dead process is gone for our purposes
    return None if fields[0] in ("Z", "X") else fields[19]


def _process_alive(pid: int, started: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: alive
    return started is None or _process_started(pid) == started


def _claim_name(number: int) -> str:
    return f"{CLAIM_PREFIX}{number:06d}.json"


def _now() -> datetime:
    return datetime.now(timezone.utc)


class FolderClaim:
    """The claim of one writer on one folder.

    :param io: the folder's :class:`~airflow_provider_unifapi.storage.fsio.FolderIO`.
    :param url: the folder as the user named it (messages).
    :param owner: who writes (e.g. ``dag_id/run_id/task_id[map_index] try 2``), shown to a refused writer.
    :param ttl: seconds a claim stands without renewal.
    """

    def __init__(self, io: Any, url: str, owner: str = "", *, ttl: float = DEFAULT_CLAIM_TTL) -> None:
        self.io = io
        self.url = url
        self.owner = owner
        self.ttl = ttl
        self.token = uuid.uuid4().hex
        self.number: int | None = None
        self._expires_at = _now()
        self._renew_after = 0.0

    def _numbers(self) -> list[int]:
        matches = (_CLAIM_FILE.fullmatch(name) for name in self.io.listdir())
        return sorted(int(match[1]) for match in matches if match)

    def _read(self, number: int) -> dict[str, Any] | None:
        try:
            return cast(dict[str, Any], json.loads(self.io.read(_claim_name(number))))
        except FileNotFoundError:
            return None
        except ValueError:
            return {}  # torn or foreign: treated as expired

    def _expired(self, claim: dict[str, Any]) -> bool:
        try:
            expires_at = datetime.fromisoformat(str(claim["expires_at"]))
        except (KeyError, ValueError):
            return True
        if expires_at <= _now():
            return True
        if claim.get("machine") == _machine() and isinstance(claim.get("pid"), int):
            return not _process_alive(claim["pid"], claim.get("pid_started"))
        return False

    def _body(self) -> bytes:
        self._expires_at = _now() + timedelta(seconds=self.ttl)
        self._renew_after = time.monotonic() + self.ttl / 3
        pid = os.getpid()
        return json.dumps(
            {
                "token": self.token,
                "owner": self.owner,
                "machine": _machine(),
                "pid": pid,
                "pid_started": _process_started(pid),
                "claimed_at": _now().isoformat(),
                "expires_at": self._expires_at.isoformat(),
            }
        ).encode()

    def acquire(self) -> None:
        """Create the folder and become its writer, or raise :class:`UnifAPIFolderBusyError`; as a run's
        first write, also :class:`UnifAPIInputError` for a folder that cannot be written, before paying."""
        try:
            self.io.makedirs()
            self._acquire()
        except OSError as exc:
            raise UnifAPIInputError(
                "output_path",
                f"{self.url} cannot be created or written: {exc.strerror or type(exc).__name__}",
            ) from None

    def _acquire(self) -> None:
        for _ in range(5):
            numbers = self._numbers()
            number = 0
            if numbers:
                top = self._read(numbers[-1])
                if top is None:
                    continue  # released meanwhile: look again
                if not self._expired(top):
                    raise self._busy(top)
                number = numbers[-1] + 1
            try:
                self.io.create(_claim_name(number), self._body())
            except FileExistsError:
                continue  # another writer won this number: look again (it is live now)
            self.number = number
            for older in numbers:
                self.io.delete(_claim_name(older))
            return
        raise UnifAPIFolderBusyError(f"{self.url}: the writer claim keeps changing hands; retry later")

    def _busy(self, claim: dict[str, Any]) -> UnifAPIFolderBusyError:
        owner = claim.get("owner") or "another writer"
        return UnifAPIFolderBusyError(
            f"{self.url} is being written by {owner} (pid {claim.get('pid')} on "
            f"{str(claim.get('machine', '?')).split('/')[0]}, claim valid until {claim.get('expires_at')}); "
            "two writers would corrupt it, so this one stops before paying for anything. A retry after "
            "that writer ends reuses or resumes its work; give each run its own output_path to run both"
        )

    def check(self) -> None:
        """Before a commit: renew the claim when due; raise if another writer took it over."""
        if self.number is None or time.monotonic() < self._renew_after:
            return
        numbers = self._numbers()
        top = self._read(numbers[-1]) if numbers else None
        if top is None or top.get("token") != self.token or self._expires_at <= _now():
            self.number = None
            raise UnifAPIClaimLostError(
                f"{self.url}: this writer's claim expired or was taken over by "
                f"{(top or {}).get('owner') or 'another writer'}; stopping before writing again "
                "(what this try committed stays valid for the new writer)"
            )
        self.io.write(_claim_name(numbers[-1]), self._body())

    def release(self) -> None:
        """Delete the claim (every number: older ones are leftovers of taken-over writers)."""
        if self.number is None:
            return
        self.number = None
        numbers = self._numbers()
        for number in numbers:
            if number < numbers[-1] or (self._read(number) or {}).get("token") == self.token:
                self.io.delete(_claim_name(number))
