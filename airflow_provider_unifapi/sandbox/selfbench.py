"""How fast does the sandbox serve pages? ``python -m airflow_provider_unifapi.sandbox.selfbench``

Starts the sandbox in a subprocess (its own GIL, like in real benchmarks), then pages through a
100,000-video hashtag at ``limit=50`` with one keep-alive ``httpx.Client`` and prints pages/s and
records/s, three ways per round:

* ``scan``: the client only finds ``next_cursor`` near the end of the body (no JSON parse), so the
  figure is what the sandbox plus httpx's own per-request cost allow: the ceiling any httpx-based
  client benchmark can reach against this sandbox on this machine;
* ``json``: the client also ``json.loads`` every page, as a real client must; on a slow CPU the
  ~51 KB page parse alone costs about as much as the sandbox's whole answer;
* ``raw``: stdlib ``http.client`` and the same scan, a much cheaper client: this is closest to
  the sandbox's own capacity for one sequential keep-alive client.

Needs ``httpx`` (installed with the provider).
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import subprocess
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

HASHTAG_ID = "9000001"
_CURSOR = re.compile(rb'"next_cursor":(?:"([^"]*)"|null)')


def _cursor_by_scan(body: bytes) -> tuple[int, str | None]:
    """(records, next_cursor) without a JSON parse: pagination sits near the end of the body."""
    match = _CURSOR.search(body, max(0, len(body) - 512))
    if match is None:
        raise RuntimeError("no pagination in the page")
    cursor = match.group(1)
    return body.count(b'"video_description":'), cursor.decode() if cursor else None


def _raw_round(base: str, limit: int) -> tuple[int, int, float]:
    host, port = base.rsplit("/", 1)[1].rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    headers = {"Authorization": "Bearer selfbench"}
    cursor: str | None = None
    pages = records = 0
    started = time.perf_counter()
    try:
        while True:
            target = f"/tiktok/hashtags/{HASHTAG_ID}/videos?limit={limit}" + (
                f"&cursor={cursor}" if cursor else ""
            )
            conn.request("GET", target, headers=headers)
            resp = conn.getresponse()
            body = resp.read()
            if resp.status != 200:
                raise RuntimeError(f"HTTP {resp.status}: {body[:200]!r}")
            pages += 1
            count, cursor = _cursor_by_scan(body)
            records += count
            if cursor is None:
                return pages, records, time.perf_counter() - started
    finally:
        conn.close()


def _httpx_round(client: httpx.Client, limit: int, mode: str) -> tuple[int, int, float]:
    """Page through the hashtag once with ``client``; returns ``(pages, records, seconds)``.

    :param client: a keep-alive client on the sandbox.
    :param limit: page size.
    :param mode: ``"json"`` parses every page, ``"scan"`` only finds the cursor.
    """
    cursor: str | None = None
    pages = records = 0
    started = time.perf_counter()
    while True:
        params: dict[str, str | int] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        resp = client.get(f"/tiktok/hashtags/{HASHTAG_ID}/videos", params=params)
        resp.raise_for_status()
        pages += 1
        if mode == "json":
            doc = json.loads(resp.content)
            records += len(doc["data"])
            cursor = doc["pagination"]["next_cursor"] if doc["pagination"]["has_more"] else None
        else:
            count, cursor = _cursor_by_scan(resp.content)
            records += count
        if cursor is None:
            return pages, records, time.perf_counter() - started


def _start_sandbox(videos: int, rounds: int) -> tuple[subprocess.Popen[str], str]:
    """A sandbox process serving one hashtag of ``videos`` videos, and its base URL."""
    cmd = [
        sys.executable,
        "-m",
        "airflow_provider_unifapi.sandbox",
        "--port",
        "0",
        "--hashtag",
        f"{HASHTAG_ID}:selfbench:{videos}",
        "--balance",
        str(videos * 6 * rounds + 1000),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline() if proc.stdout else ""
    if not line.startswith("UnifAPI sandbox listening on "):
        proc.terminate()
        proc.wait(timeout=10)
        raise RuntimeError(f"sandbox did not start: {line!r}")
    return proc, line.rsplit(" ", 1)[1].strip()


def run(videos: int, limit: int, rounds: int) -> list[tuple[str, int, int, float]]:
    """Page through the hashtag ``rounds`` times in each mode; returns ``(mode, pages, records, seconds)``.

    :param videos: size of the hashtag served.
    :param limit: page size.
    :param rounds: rounds of the three modes (``scan``, ``json``, ``raw``).
    """
    import httpx  # local import: the sandbox package itself must not need httpx

    proc, base = _start_sandbox(videos, rounds)
    try:
        results = []
        with httpx.Client(base_url=base, headers={"Authorization": "Bearer selfbench"}, timeout=30) as client:
            for _ in range(rounds):
                for mode in ("scan", "json"):
                    results.append((mode, *_httpx_round(client, limit, mode)))
                results.append(("raw", *_raw_round(base, limit)))
        return results
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main(argv: list[str] | None = None) -> int:
    """Print pages/s and records/s for each round and the best one."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=100_000)
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    results = run(args.videos, args.limit, args.rounds)
    summary: dict[str, object] = {"videos": args.videos, "limit": args.limit}
    for mode, pages, records, seconds in results:
        print(
            f"{mode:4s}: {pages} pages, {records} records in {seconds:.2f}s = "
            f"{pages / seconds:,.0f} pages/s, {records / seconds:,.0f} records/s"
        )
    for mode in ("scan", "json", "raw"):
        _, pages, records, seconds = min((r for r in results if r[0] == mode), key=lambda r: r[3])
        summary[f"{mode}_pages_per_s"] = round(pages / seconds)
        summary[f"{mode}_records_per_s"] = round(records / seconds)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
