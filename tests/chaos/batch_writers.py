"""The ``writers`` batch chaos kind: two or three writers on one folder, on local files or S3 (moto).

Two rounds per run, each on its own base folder and its own hashtags:

- ``together``: two batch tries and a single-hashtag task (``TikTokHashtagVideosOperator`` on one
  hashtag folder of the batch) start at the same instant (a barrier);
- ``staggered``: a batch try starts; a second batch try starts once the first has made a seeded
  number of calls, the single-hashtag task a few calls later (both mid-run).

The writers run in this process (threads), each with its own client whose User-Agent names the
writer and its try, so the ledger tells their calls apart. Every writer that did not succeed is
then retried, one try after another as Airflow would, until each has succeeded. The folder claims
(storage/claim.py) are watched: every acquire, refusal, loss and release is logged with its folder
and time.

Checked, beyond the suite's figures: a refused writer failed typed (folder busy, retryable) and
paid nothing (its try made no call, or none for the refused hashtag); no two writers held one
folder at once; no claim left behind; every ``_manifest.json`` holds what its parts hold; every
hashtag exact (its records are the sandbox truth, in order); no page answered 200 twice; the
ledger's credits of each hashtag are what its folder reports.
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

from tests.chaos.analysis import folder_texts, key_hits, money_figures, output_figures
from tests.chaos.batch_kinds import pages_paid_twice
from tests.chaos.batch_runs import BatchRun, BatchSpec, batch_try, read_batch_known, recording
from tests.chaos.runner import TryOutcome

ROUNDS = ("together", "staggered")
MAX_TRIES = 12
BUCKET = "lake"
#: what every writers run must find 0 of, beyond the suite's figures
WRITERS_ZERO = (
    "refused_untyped",
    "refused_paid_calls",
    "unexpected_failures",
    "overlapping_claims",
    "claims_left",
    "manifests_wrong",
    "pages_paid_twice",
    "not_exact",
)


@dataclass
class WritersCase:
    seed: int
    storage: str  # "local" or "s3"
    page_size: int
    max_concurrency: int
    records_per_part: int
    output_format: str
    latency_ms: int
    rounds: dict[str, dict[str, int]]  # round -> hashtag id -> video count
    #: the hashtag the single-hashtag task writes, per round
    single: dict[str, str]
    #: ``staggered``: calls of the first writer after which the second batch, then the single task start
    stagger: tuple[int, int]
    #: local disks: a claim file stays empty this long after its create-only open (a writer
    #: descheduled between its two system calls, a slow or network disk); 0 on S3 (one request)
    claim_write_delay_ms: int = 0

    @classmethod
    def from_seed(cls, seed: int, *, long: bool = False) -> WritersCase:
        rng = random.Random(f"writers:{seed}")
        storage = rng.choice(["local", "s3"]) if long else ("local", "s3")[seed % 2]
        rounds = {
            name: {
                str(780_000 + seed * 10 + 5 * r + i): rng.randint(200, 900 if long else 600)
                for i in range(rng.randint(2, 3))
            }
            for r, name in enumerate(ROUNDS)
        }
        first = rng.randint(2, 6)
        return cls(
            seed=seed,
            storage=storage,
            page_size=rng.choice([20, 33, 50]),
            max_concurrency=rng.choice([1, 2, 3]),
            records_per_part=rng.choice([60, 150, 10_000]),
            output_format=rng.choices(["jsonl.gz", "jsonl", "parquet"], weights=[5, 3, 2])[0],
            latency_ms=rng.randint(5, 15),
            rounds=rounds,
            single={name: rng.choice(list(tags)) for name, tags in rounds.items()},
            stagger=(first, first + rng.randint(1, 4)),
            claim_write_delay_ms=rng.randint(2, 20) if storage == "local" else 0,
        )

    def total(self, round_name: str) -> int:
        return sum(self.rounds[round_name].values())

    def max_credits(self, round_name: str) -> int:
        return (self.total(round_name) * 5) // 4 + 10 * self.page_size


@dataclass
class WriterTry:
    writer: str
    attempt: int
    spec: BatchSpec
    outcome: TryOutcome | None = None
    start_seq: int = 0
    end_seq: int = 0
    #: ``staggered``: it started while the first batch try was still running
    mid_run: bool = False

    @property
    def done(self) -> bool:
        return self.outcome is not None and self.outcome.outcome == "done"

    @property
    def fatal(self) -> bool:
        return self.outcome is not None and self.outcome.outcome in ("fatal", "untyped")


@dataclass
class WritersRun:
    tries: list[WriterTry] = field(default_factory=list)
    claims: list[dict[str, Any]] = field(default_factory=list)
    texts: list[Any] = field(default_factory=list)
    #: round -> writers that started while the first was still running (``staggered``)
    mid_run: Counter[str] = field(default_factory=Counter)
    unfinished: int = 0


# -- storage -------------------------------------------------------------------------------------
class Storage:
    """Where the rounds write: ``file://`` under the test's folder, or a moto S3 bucket."""

    def __init__(self, case: WritersCase, workdir: Path) -> None:
        self.case, self.workdir = case, workdir
        self.s3: Any = None  # a boto3 client of the moto server
        self.conn_id: str | None = None  # the aws connection the tasks write through

    def url(self, round_name: str) -> str:
        if self.case.storage == "s3":
            return f"s3://{BUCKET}/chaos{self.case.seed}/{round_name}"
        return f"file://{self.workdir / round_name}"

    def local(self, round_name: str) -> Path:
        """The round's folder on disk (for S3, a copy of the bucket's objects made now)."""
        if self.case.storage == "local":
            return self.workdir / round_name
        target = self.workdir / f"s3-{round_name}"
        prefix = f"chaos{self.case.seed}/{round_name}/"
        for key in self.keys(prefix):
            path = target / key[len(prefix) :]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
        return target

    def keys(self, prefix: str) -> list[str]:
        keys, token = [], None
        while True:
            extra = {"ContinuationToken": token} if token else {}
            page = self.s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix, **extra)
            keys += [obj["Key"] for obj in page.get("Contents", [])]
            token = page.get("NextContinuationToken")
            if not token:
                return keys

    def claims_left(self, round_name: str) -> int:
        if self.case.storage == "s3":
            names = self.keys(f"chaos{self.case.seed}/{round_name}/")
        else:
            names = [str(p) for p in (self.workdir / round_name).rglob("*")]
        return sum(1 for name in names if name.rsplit("/", 1)[-1].startswith("_writer."))


@contextlib.contextmanager
def moto_s3(monkeypatch: Any) -> Any:
    """A moto S3 server on 127.0.0.1 and an aws connection pointing at it (as in
    tests/test_operator_kill_and_s3.py); yields ``(boto3 client, connection id)``.

    The connection is named after the server's port: Airflow keeps one filesystem per connection id
    for the whole process, so a second server under the first one's id would be looked for at the
    first one's (stopped) endpoint."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    for name, value in (
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ):
        monkeypatch.setenv(name, value)
    extra = {"endpoint_url": endpoint, "region_name": "us-east-1"}
    conn = {"conn_type": "aws", "login": "testing", "password": "testing", "extra": extra}
    conn_id = f"aws_chaos_{port}"
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    try:
        yield s3, conn_id
    finally:
        server.stop()


# -- the claims, watched -------------------------------------------------------------------------
@contextlib.contextmanager
def slow_claim_files(delay_ms: int) -> Any:
    """Local claim files created ``delay_ms`` late (``FolderIO.create`` after a pause): what a busy
    or slow disk does to them. (The pause once sat between an ``O_EXCL`` open and its write, where
    another writer read the empty claim as expired; the claim is now written aside and linked.)"""
    from airflow_provider_unifapi.storage.fsio import FolderIO

    real_create = FolderIO.create

    def create(io: Any, name: str, data: bytes) -> None:
        if io.local and name.startswith("_writer.") and delay_ms:
            time.sleep(delay_ms / 1000)
        real_create(io, name, data)

    with mock.patch.object(FolderIO, "create", create):
        yield


@contextlib.contextmanager
def watched_claims(events: list[dict[str, Any]]) -> Any:
    """Log every claim acquired, refused, lost and released (folder, owner, token, time)."""
    from airflow_provider_unifapi.exceptions import UnifAPIClaimLostError, UnifAPIFolderBusyError
    from airflow_provider_unifapi.storage.claim import FolderClaim

    lock = threading.Lock()
    real_acquire, real_check, real_release = FolderClaim.acquire, FolderClaim.check, FolderClaim.release

    def note(what: str, claim: Any) -> None:
        with lock:
            events.append(
                {
                    "what": what,
                    "root": claim.io.root,
                    "owner": claim.owner,
                    "token": claim.token,
                    "t": time.monotonic(),
                }
            )

    def acquire(claim: Any) -> None:
        try:
            real_acquire(claim)
        except UnifAPIFolderBusyError:
            note("refused", claim)
            raise
        note("acquired", claim)  # after the claim file was created

    def check(claim: Any) -> None:
        try:
            real_check(claim)
        except UnifAPIClaimLostError:
            note("lost", claim)
            raise

    def release(claim: Any) -> None:
        if claim.number is not None:
            note("released", claim)  # before the claim file is deleted
        real_release(claim)

    with (
        mock.patch.object(FolderClaim, "acquire", acquire),
        mock.patch.object(FolderClaim, "check", check),
        mock.patch.object(FolderClaim, "release", release),
    ):
        yield


def overlapping_claims(events: list[dict[str, Any]]) -> tuple[int, list[Any]]:
    """Folders held by two writers at once: a hold runs from its acquire to its release (or loss)."""
    holds: dict[str, list[list[Any]]] = defaultdict(list)
    open_holds: dict[str, list[Any]] = {}
    for event in sorted(events, key=lambda e: e["t"]):
        if event["what"] == "acquired":
            hold = [event["t"], float("inf"), event["owner"]]
            holds[event["root"]].append(hold)
            open_holds[event["token"]] = hold
        elif event["what"] in ("released", "lost") and event["token"] in open_holds:
            open_holds.pop(event["token"])[1] = event["t"]
    count, detail = 0, []
    for root, group in holds.items():
        group.sort()
        latest = group[0]  # the hold that ends last among those started so far
        for hold in group[1:]:
            if hold[0] < latest[1]:
                count += 1
                detail.append({"folder": root, "first": latest[2], "second": hold[2]})
            if hold[1] > latest[1]:
                latest = hold
    return count, detail[:5]


# -- the rounds ----------------------------------------------------------------------------------
def thread_ready_for_execute() -> None:
    """Airflow 2's ``ExecutorSafeguard`` keeps a thread-local dict that only the thread importing it
    has: give this thread its own (a task's ``execute`` runs in its process's main thread)."""
    try:
        from airflow.models import baseoperator
    except ImportError:
        return
    sentinel = getattr(getattr(baseoperator, "ExecutorSafeguard", None), "_sentinel", None)
    if sentinel is not None and not hasattr(sentinel, "callers"):
        sentinel.callers = {}


def writer_spec(
    case: WritersCase, storage: Storage, round_name: str, writer: str, attempt: int, known: Path
) -> BatchSpec:
    """``batch1``/``batch2``: the batch on the round's folder; ``single``: one hashtag's folder of it."""
    base = storage.url(round_name)
    tags = case.rounds[round_name]
    single = writer == "single"
    return BatchSpec(
        hashtags=[case.single[round_name]] if single else list(tags),
        output_url=f"{base}/hashtag={case.single[round_name]}/" if single else base,
        max_concurrency=case.max_concurrency,
        max_credits=None if single else case.max_credits(round_name),
        page_size=case.page_size,
        records_per_part=case.records_per_part,
        output_format=case.output_format,
        known_path=str(known),
        output_conn_id=storage.conn_id,
        user_agent=f"chaos-{round_name}-{writer}-try{attempt}",
        single=single,
        owner=f"chaos/{round_name}/{writer} try {attempt}",
    )


def calls_by(sandbox: Any, since: int, user_agent: str) -> int:
    return sum(1 for c in sandbox.ledger(since)["calls"] if c["headers"].get("user-agent") == user_agent)


def run_round(
    case: WritersCase, storage: Storage, round_name: str, sandbox: Any, workdir: Path
) -> list[WriterTry]:
    """The round's writers at once (``together``) or one after another mid-run (``staggered``), then
    each writer that did not succeed retried until it does (or ``MAX_TRIES``)."""
    known = workdir / "committed.txt"
    writers = ["batch1", "batch2", "single"]
    tries = {w: WriterTry(w, 1, writer_spec(case, storage, round_name, w, 1, known)) for w in writers}
    barrier = threading.Barrier(len(writers)) if round_name == "together" else None
    seq0 = int(sandbox.ledger(since=10**12)["totals"]["calls"])

    def go(item: WriterTry) -> None:
        thread_ready_for_execute()
        if barrier is not None:
            barrier.wait(timeout=60)
        item.outcome = batch_try(item.spec, record=False)

    threads = {w: threading.Thread(target=go, args=(tries[w],), name=f"writer-{w}") for w in writers}
    if barrier is not None:
        for thread in threads.values():
            thread.start()
    else:
        threads["batch1"].start()
        for writer, after_calls in zip(writers[1:], case.stagger, strict=True):
            while (
                threads["batch1"].is_alive()
                and calls_by(sandbox, seq0, tries["batch1"].spec.user_agent or "") < after_calls
            ):
                time.sleep(0.005)
            tries[writer].mid_run = threads["batch1"].is_alive()
            threads[writer].start()
    for thread in threads.values():
        thread.join(timeout=600)
    done = list(tries.values())
    for item in done:
        item.start_seq, item.end_seq = seq0, int(sandbox.ledger(since=10**12)["totals"]["calls"])
    for attempt in range(2, MAX_TRIES + 1):
        # as Airflow: a retryable failure is retried; a fatal one (AirflowFailException) is not
        waiting = [w for w in writers if not tries[w].done and not tries[w].fatal]
        if not waiting:
            break
        for writer in waiting:
            item = WriterTry(writer, attempt, writer_spec(case, storage, round_name, writer, attempt, known))
            item.start_seq = int(sandbox.ledger(since=10**12)["totals"]["calls"])
            item.outcome = batch_try(item.spec, record=False)
            item.end_seq = int(sandbox.ledger(since=10**12)["totals"]["calls"])
            tries[writer] = item
            done.append(item)
    return done


def run_writers(case: WritersCase, sandbox: Any, workdir: Path, storage: Storage, capture: Any) -> WritersRun:
    """Reset the sandbox with both rounds' hashtags and run the rounds."""
    catalogue = [
        {"id": tag, "name": f"wchaos{tag}", "video_count": n}
        for tags in case.rounds.values()
        for tag, n in tags.items()
    ]
    sandbox.reset(seed=case.seed, balance=10_000_000, hashtags=catalogue, latency_ms=case.latency_ms)
    thread_ready_for_execute()  # this thread retries writers; the writer threads call it themselves
    run = WritersRun()
    with (
        recording(str(workdir / "committed.txt")),
        watched_claims(run.claims),
        slow_claim_files(case.claim_write_delay_ms),
    ):
        for round_name in ROUNDS:
            tries = run_round(case, storage, round_name, sandbox, workdir)
            run.tries += tries
            run.mid_run[round_name] = sum(t.mid_run for t in tries)
            # a writer that failed for good, or still failed after MAX_TRIES: its last try is not done
            last = {t.writer: t for t in tries}
            run.unfinished += sum(not t.done for t in last.values())
            run.texts.append(capture())
    run.texts += [t.outcome.error_text for t in run.tries if t.outcome is not None]
    return run


# -- the checks ----------------------------------------------------------------------------------
def refusals(run: WritersRun, sandbox: Any, calls: list[dict[str, Any]]) -> dict[str, Any]:
    """How refused writers ended, and what they paid."""
    by_owner = {t.spec.owner: t for t in run.tries}
    refused = [e for e in run.claims if e["what"] == "refused"]
    untyped = paid = 0
    detail = []
    for event in refused:
        item = by_owner.get(event["owner"])
        if item is None or item.outcome is None:
            continue
        # a refused try fails (or its batch lists the refused hashtag as failed): retryable, never fatal
        if item.outcome.outcome != "failed" or "is being written by" not in item.outcome.error_text:
            untyped += 1
            detail.append(
                {
                    "owner": event["owner"],
                    "outcome": item.outcome.outcome,
                    "error": item.outcome.error_text[:300],
                }
            )
        folder = event["root"].rsplit("/", 1)[-1]
        tag = folder.split("=", 1)[1] if folder.startswith("hashtag=") else None
        mine = [
            c
            for c in calls
            if c["headers"].get("user-agent") == item.spec.user_agent
            and (tag is None or c["hashtag_id"] == tag)
            and (c["credits_charged"] or 0) > 0
        ]
        paid += len(mine)  # refused at the batch's folder: no call at all; at a hashtag's: none for it
        if mine:
            detail.append({"owner": event["owner"], "paid_calls": len(mine)})
    failed_owners = {e["owner"] for e in refused}
    unexpected = [
        t
        for t in run.tries
        if t.outcome is not None and t.outcome.outcome != "done" and t.spec.owner not in failed_owners
    ]
    return {
        "refused": len(refused),
        "refused_at_batch_folder": sum(
            1 for e in refused if not e["root"].rsplit("/", 1)[-1].startswith("hashtag=")
        ),
        "refused_untyped": untyped,
        "refused_paid_calls": paid,
        "unexpected_failures": len(unexpected),
        "refusal_detail": (
            detail + [{"owner": t.spec.owner, "error": t.outcome.error_text[:300]} for t in unexpected]
        )[:5],  # type: ignore[union-attr]
    }


def manifests_wrong(folder: Path) -> int:
    """``_manifest.json`` files whose records differ from what their parts hold (or whose parts are gone)."""
    from upath import UPath

    from airflow_provider_unifapi.storage.run_folder import iter_run_records

    wrong = 0
    for path in folder.rglob("_manifest.json"):
        manifest = json.loads(path.read_text(encoding="utf-8"))
        try:
            held = sum(1 for _ in iter_run_records(UPath(f"file://{path.parent}")))
        except (OSError, ValueError):
            held = -1
        wrong += held != manifest.get("records")
    return wrong


def check_writers(
    case: WritersCase, sandbox: Any, workdir: Path, storage: Storage, run: WritersRun, api_key: str
) -> dict[str, Any]:
    from upath import UPath

    from airflow_provider_unifapi.storage.run_folder import iter_run_records

    ledger = sandbox.ledger()
    calls = ledger["calls"]
    outcomes = Counter(t.outcome.outcome if t.outcome else "none" for t in run.tries)
    figures: dict[str, Any] = {
        "seed": case.seed,
        "kind": "writers",
        "storage": case.storage,
        "claim_write_delay_ms": case.claim_write_delay_ms,
        "latency_ms": case.latency_ms,
        "hashtags": sum(len(tags) for tags in case.rounds.values()),
        "video_counts": [n for tags in case.rounds.values() for n in tags.values()],
        "page_size": case.page_size,
        "max_concurrency": case.max_concurrency,
        "output_format": case.output_format,
        "tries": len(run.tries),
        "outcomes": dict(outcomes),
        "kills_sigkill": 0,
        "kills_simulated": 0,
        "calls": sum(1 for c in calls if c["endpoint"] == "videos"),
        "faults": {},
        "untyped_errors": outcomes.get("untyped", 0),
        "started_mid_run": sum(run.mid_run.values()),
    }
    figures.update(refusals(run, sandbox, calls))
    figures["overlapping_claims"], figures["overlap_detail"] = overlapping_claims(run.claims)
    known = read_batch_known(workdir / "committed.txt")
    committed = set().union(*(k[0] for k in known.values())) if known else set()
    truncated = set().union(*(k[1] for k in known.values())) if known else set()
    figures["pages_paid_twice"], figures["paid_twice_detail"] = pages_paid_twice(
        BatchRun(), calls, committed, truncated
    )
    totals: Counter[str] = Counter()
    texts: list[Any] = [*run.texts, json.dumps(ledger)]
    for round_name, tags in case.rounds.items():
        totals["claims_left"] += storage.claims_left(round_name)
        folder = storage.local(round_name)
        totals["manifests_wrong"] += manifests_wrong(folder)
        texts += folder_texts(folder)
        batches = [t for t in run.tries if t.spec.output_url == storage.url(round_name) and t.done]
        final = batches[-1].outcome.summary if batches and batches[-1].outcome else None
        rows = {str(r["hashtag_id"]): r for r in (final or {"hashtags": []})["hashtags"]}
        round_paid = 0
        for tag in tags:
            mine = [c for c in calls if c.get("hashtag_id") == tag]
            round_paid += sum(c["credits_charged"] or 0 for c in mine)
            stored = folder / f"hashtag={tag}"
            if tag not in rows or not (stored / "_manifest.json").exists():
                totals["not_exact"] += 1  # the run did not finish it (unfinished says which writer)
                continue
            row = rows[tag]
            ids = [str(r["id"]) for r in iter_run_records(UPath(f"file://{stored}"))]
            truth = sandbox.truth(tag)
            totals["not_exact"] += ids != truth
            for name, value in output_figures(ids, truth, row["stop_reason"]).items():
                totals[name] += value
            money = money_figures(mine, row, *known[tag], None)
            for name in (
                "ledger_credits",
                "credits_charged",
                "credits_unaccounted",
                "refetched_pages",
                "unjustified_refetches",
            ):
                totals[name] += money[name]
        totals["budget_breaches"] += int(round_paid > case.max_credits(round_name))
    figures.update(totals)
    # the suite's figure for pages paid again: a page two writers both paid is one
    figures["unjustified_refetches"] = max(totals["unjustified_refetches"], figures["pages_paid_twice"])
    figures["unfinished"] = run.unfinished
    texts += [p.read_bytes() for p in workdir.glob("*.log")]
    figures["key_hits"] = key_hits(api_key, texts)
    for name in WRITERS_ZERO:
        figures.setdefault(name, 0)
    return figures
