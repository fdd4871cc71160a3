"""The sandbox in a process of its own, and the admin calls the harness needs (parent side)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

#: Enough credits for every run of the largest matrix: a reset restores it before each run.
BALANCE = 10**12
#: Far past any ledger sequence number: asks the ledger for its totals only.
_TOTALS_ONLY = 10**15


def hashtag_id_for(size: int) -> str:
    """A catalogue id per size, so all sizes live in one sandbox (``9`` + the size on 12 digits)."""
    return f"9{size:012d}"


class SandboxProcess:
    """``python -m airflow_provider_unifapi.sandbox`` serving one hashtag per size."""

    def __init__(self, sizes: list[int], env: dict[str, str], log_path: Path) -> None:
        self.sizes = sizes
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self._admin: httpx.Client | None = None
        self._truth: dict[int, list[str]] = {}
        self._log: Any | None = None

    def start(self, port: int = 0) -> SandboxProcess:
        cmd = [
            sys.executable,
            "-m",
            "airflow_provider_unifapi.sandbox",
            "--port",
            str(port),
            "--balance",
            str(BALANCE),
        ]
        for size in self.sizes:
            cmd += ["--hashtag", f"{hashtag_id_for(size)}:bench{size}:{size}"]
        self._log = open(self.log_path, "w")  # noqa: SIM115 - the sandbox writes to it until stop()
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=self._log, text=True, env=self.env, start_new_session=True
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.startswith("UnifAPI sandbox listening on "):
            self.stop()
            raise RuntimeError(f"the sandbox did not start: {line!r} (see {self.log_path})")
        self.url = line.rsplit(" ", 1)[1]
        self._admin = httpx.Client(base_url=self.url, timeout=120)
        return self

    @property
    def pid(self) -> int:
        """The sandbox process's id (0 when not running)."""
        return self.proc.pid if self.proc is not None else 0

    @property
    def admin(self) -> httpx.Client:
        assert self._admin is not None, "start() first"
        return self._admin

    def reset(self, latency_ms: float, **settings: Any) -> None:
        """A clean workspace (balance, empty ledger) with ``latency_ms`` per API call (and ``settings``)."""
        self.admin.post("/_sandbox/reset", json={"latency_ms": latency_ms, **settings}).raise_for_status()

    def totals(self) -> dict[str, Any]:
        """Ledger totals: ``calls``, ``credits_charged``, ``records_served``, ``by_status``."""
        response = self.admin.get("/_sandbox/ledger", params={"since": _TOTALS_ONLY})
        return dict(response.raise_for_status().json()["totals"])

    def truth(self, size: int) -> list[str]:
        """Every unique video id of the size's hashtag, in order of first appearance (cached)."""
        if size not in self._truth:
            response = self.admin.get(f"/_sandbox/hashtags/{hashtag_id_for(size)}/truth")
            ids = [str(i) for i in response.raise_for_status().json()["ids"]]
            if len(ids) != size:
                raise RuntimeError(f"the sandbox's truth for size {size} holds {len(ids)} ids")
            self._truth[size] = ids
        return self._truth[size]

    def settings(self) -> dict[str, Any]:
        return dict(self.admin.get("/_sandbox/settings").raise_for_status().json())

    def restart(self) -> None:
        """Stop the process and start a new one on the same port (Airflow connections name the URL)."""
        port = int(self.url.rsplit(":", 1)[1])
        self.stop()
        self.start(port)

    def stop(self) -> None:
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> SandboxProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
