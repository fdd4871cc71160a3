"""``python -m airflow_provider_unifapi.sandbox`` / ``unifapi-sandbox``: run the sandbox in the foreground.

Prints exactly one line, ``UnifAPI sandbox listening on http://HOST:PORT``, then serves until
SIGTERM or SIGINT and exits 0. Callers that pass ``--port 0`` parse that line to learn the port.
"""

from __future__ import annotations

import argparse
import errno
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from airflow_provider_unifapi.sandbox.server import SandboxServer
from airflow_provider_unifapi.sandbox.settings import (
    DEFAULT_HASHTAGS,
    FIELDS,
    SettingsError,
    parse_hashtag_spec,
)
from airflow_provider_unifapi.sandbox.timeline_settings import ENTRY_MODELS, parse_rate_spec


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface (every option maps to a sandbox setting)."""
    p = argparse.ArgumentParser(prog="unifapi-sandbox", description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, loopback only)")
    p.add_argument("--port", type=int, default=0, help="port (default 0: pick a free one and print it)")
    p.add_argument("--balance", type=int, help="workspace credits (default 1,000,000)")
    p.add_argument("--rate-limit-per-minute", type=int, help="token-bucket rate; 0 = unlimited (default)")
    p.add_argument("--rate-limit-burst", type=int, help="bucket size (default max(1, per_minute // 6))")
    p.add_argument("--latency-ms", type=float, help="sleep before answering each API call")
    p.add_argument("--latency-jitter-ms", type=float, help="each call sleeps latency +- up to this (uniform)")
    # action="extend" + nargs="+": both "--api-key A B" and "--api-key A --api-key B" work.
    p.add_argument(
        "--api-key",
        action="extend",
        nargs="+",
        dest="api_keys",
        metavar="KEY",
        help="accept only these keys (default: any non-empty key)",
    )
    p.add_argument(
        "--hashtag",
        action="extend",
        nargs="+",
        dest="hashtags",
        metavar="ID:NAME:COUNT",
        help="add catalogue hashtags (the defaults stay unless replaced by id)",
    )
    p.add_argument("--seed", type=int, help="data seed (default 0)")
    p.add_argument("--duplicate-rate", type=float, help="share of positions repeating an earlier video")
    p.add_argument("--short-page-rate", type=float, help="share of pages shorter than limit")
    p.add_argument("--no-extra-fields", action="store_true", help="do not add unknown fields to records")
    p.add_argument(
        "--not-found-id",
        action="extend",
        nargs="+",
        dest="not_found_ids",
        metavar="ID",
        help="these hashtag ids answer 404 not_found",
    )
    p.add_argument(
        "--invalid-id",
        action="extend",
        nargs="+",
        dest="invalid_ids",
        metavar="ID",
        help="these hashtag ids answer 400 invalid_id",
    )
    p.add_argument("--verbose", action="store_true", help="one access-log line per request on stderr")
    _add_timeline_options(p)
    return p


def _add_timeline_options(p: argparse.ArgumentParser) -> None:
    """Timeline mode's options (docs/sandbox.md, "Timeline mode")."""
    g = p.add_argument_group("timeline mode", "feeds that live in time (moved by POST /_sandbox/clock)")
    g.add_argument("--timeline", action="store_const", const=True, help="turn timeline mode on")
    g.add_argument(
        "--timeline-start", help="start clock: ISO 8601 or unix seconds (default 2025-06-01T00:00:00Z)"
    )
    g.add_argument("--daily-new-videos", type=float, help="mean new videos per hashtag per day (default 200)")
    g.add_argument(
        "--daily-new-videos-by-hashtag",
        action="extend",
        nargs="+",
        metavar="ID:RATE",
        help="per-hashtag daily rates",
    )
    g.add_argument("--entry-rank", choices=ENTRY_MODELS, help="most new videos enter low (default) or high")
    g.add_argument("--entry-ramp-hours", type=float, help="low entry: time scale of the ramp (default 24)")
    g.add_argument("--visible-cap", type=int, help="videos a feed shows at most (default 3,000)")
    g.add_argument("--decay-days", type=float, help="time scale of the score's decay (default 3)")
    g.add_argument("--shuffle-width", type=int, help="walks see videos moved by fewer places (default 10)")


def settings_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Turn parsed options into ``SandboxServer`` settings."""
    out: dict[str, Any] = {}
    # One option per setting, named alike; extra_fields, hashtags and the per-hashtag rates are
    # translated below, ledger_cap has none.
    translated = {"extra_fields", "hashtags", "ledger_cap", "daily_new_videos_by_hashtag"}
    for name in sorted(FIELDS - translated):
        value = getattr(args, name)
        if value is not None:
            out[name] = value
    if args.no_extra_fields:
        out["extra_fields"] = False
    if args.hashtags:
        added = [parse_hashtag_spec(spec) for spec in args.hashtags]
        ids = {h.id for h in added}
        out["hashtags"] = [h for h in DEFAULT_HASHTAGS if h.id not in ids] + added
    if args.daily_new_videos_by_hashtag:
        out["daily_new_videos_by_hashtag"] = dict(
            parse_rate_spec(s) for s in args.daily_new_videos_by_hashtag
        )
    return out


def bind_failure(host: str, port: int, exc: OSError) -> str:
    """The one-line message for a port the sandbox cannot listen on, naming the port and the fix."""
    if exc.errno == errno.EADDRINUSE:
        cause = f"port {port} on {host} is already in use"
    elif exc.errno == errno.EACCES:
        cause = f"port {port} on {host} needs privileges to bind"
    else:
        cause = f"cannot listen on {host}:{port} ({exc.strerror or exc})"
    return f"{cause}; pass another --port, or --port 0 to pick a free one (the sandbox prints its URL)"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sandbox until SIGTERM/SIGINT; returns the exit code (0).

    A port it cannot listen on ends it with exit code 1 and one line on stderr naming the port and the fix.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        server = SandboxServer(args.host, args.port, verbose=args.verbose, **settings_from_args(args))
    except SettingsError as exc:
        parser.error(str(exc))
    stop = threading.Event()

    def _on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    try:
        server.start()
    except OSError as exc:  # the port is taken (or not ours to bind): one line with the fix, no traceback
        parser.exit(1, f"{parser.prog}: {bind_failure(args.host, args.port, exc)}\n")
    print(f"UnifAPI sandbox listening on {server.url}", flush=True)
    try:
        # wait() with a timeout in a loop: a bare wait() would not let the signal handler run promptly.
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
