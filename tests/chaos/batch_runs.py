"""Chaos runs of ``TikTokHashtagBatchOperator``: several hashtags paged by 2-3 concurrent chains under
one shared ``max_credits``, retried try after try (as Airflow would) through SIGKILLs of the task
process, injected faults and balance squeezes, then judged against the sandbox ledger and truth.

A try is ``operator.execute({})`` on the same output folder, the way a worker's task runner calls
it: in a child process (``python -m tests.chaos.batch_child``) when the try is to be SIGKILLed, else
in the test process (Airflow is already imported there, so a try costs no process start). Either way
the batch's collectors are swapped for a subclass that appends ``<hashtag> <request id> <truncated>``
to a file after every page a chain *committed* (its checkpoint saved), which is what the money
checks of :mod:`tests.chaos.analysis` need per chain; nothing else of the operator is touched.

Everything about a case derives from its seed and kind (``sigkill``, ``faults``, ``squeeze``,
``floor``, and the run-service kinds of :mod:`tests.chaos.batch_kinds`: ``raise``, ``alias``,
``aged``), so a failing run is replayed by ``pytest tests/chaos/test_chaos_batch.py -k <kind>-<seed>``.
What happens between tries (a raised cap, a top-up, a rewritten Variable) is a :class:`TryPlan`.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import threading
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tests.chaos.analysis import fault_counts, folder_texts, key_hits, money_figures, output_figures
from tests.chaos.cases import fault_plan
from tests.chaos.harness import read_checkpoint, start_child
from tests.chaos.runner import TryOutcome, _describe

#: the first four are this module's; the others (run-service limits) are shaped in tests.chaos.batch_kinds
KINDS = ("sigkill", "faults", "squeeze", "floor", "raise", "alias", "aged")
MAX_TRIES = 40
#: the settle time after a SIGKILL: calls the killed process had in the sandbox land in the ledger
SETTLE_S = 0.3
_KNOWN_LINE = re.compile(r"(\d+) (unif_[0-9a-f]+) ([01])")


@dataclass
class BatchCase:
    """One seeded batch run: its hashtags, the operator's settings, and what goes wrong."""

    seed: int
    kind: str
    tags: dict[str, int]  # hashtag id -> video count
    page_size: int
    max_concurrency: int
    records_per_part: int
    output_format: str
    max_credits: int
    faults: list[dict[str, Any]]
    labels: list[str]
    #: ``nth`` call (counted within a try) at which that try's process is SIGKILLed, one per try
    kills: list[int] = field(default_factory=list)
    #: ``(nth call of a try, balance)``: the balance is set that low mid-try, one squeeze per try
    squeezes: list[tuple[int, int]] = field(default_factory=list)
    #: top-ups after a try stopped for lack of credits (the last always suffices)
    top_ups: list[int] = field(default_factory=lambda: [10_000_000])
    #: ``floor`` runs: the batch's shared ``min_balance``, and the workspace balance at the start
    min_balance: int | None = None
    start_balance: int = 10_000_000
    #: what the task's ``hashtags`` lists (``None``: the ids of ``tags``); names are ``bchaos<id>``
    inputs: list[str] | None = None
    #: ``raise`` runs: the caps after the first one, raised one step after a try that left hashtags stopped
    caps: list[int] = field(default_factory=list)
    #: the first try that ``kills`` apply to
    kill_from_try: int = 1
    #: ``aged`` runs: the remembered balance written before every try, and how many hours old it is
    remembered: tuple[int, float] | None = None

    @classmethod
    def from_seed(cls, seed: int, kind: str, *, long: bool = False) -> BatchCase:
        assert kind in KINDS, kind
        rng = random.Random(f"{kind}:{seed}")
        count = rng.randint(3, 5) if long else rng.randint(3, 4)
        low, high = (300, 1500) if long else (200, 800)
        tags = {str(760_000 + seed * 10 + i): rng.randint(low, high) for i in range(count)}
        page_size = rng.choice([20, 33, 50, 50])
        concurrency = rng.choice([2, 3])
        total = sum(tags.values())
        pages = sum(-(-n // page_size) for n in tags.values())
        # the shared cap: tight (some chains stop on it) or with room for the pages paid twice
        if rng.random() < 0.5:
            max_credits = rng.randint(total // 2, (total * 9) // 10)
        else:
            max_credits = (total * 5) // 4 + rng.randint(4, 8) * page_size * concurrency
        intensity = rng.uniform(0.5, 1.0) if kind == "faults" else 0.15
        faults, labels = fault_plan(rng, intensity=intensity)
        case = cls(
            seed=seed,
            kind=kind,
            tags=tags,
            page_size=page_size,
            max_concurrency=concurrency,
            records_per_part=rng.choice([60, 150, 400, 10_000]),
            output_format=rng.choices(["jsonl.gz", "jsonl", "parquet"], weights=[6, 3, 1])[0],
            max_credits=max_credits,
            faults=faults,
            labels=labels,
        )
        if kind == "sigkill":
            case.kills = [rng.randint(2, max(3, pages // 3)) for _ in range(rng.randint(1, 3 if long else 2))]
        if kind == "floor":  # the floor stops some chains mid-way: room for about half the records
            case.max_credits = total * 2  # the floor, not the cap, is what stops them
            case.min_balance = rng.randint(1_000, 50_000)
            case.start_balance = case.min_balance + rng.randint(total // 4, (total * 3) // 4)
        if kind == "squeeze":
            n = rng.randint(1, 2)
            case.squeezes = [
                (rng.randint(2, max(3, pages // 3)), rng.randint(0, page_size * concurrency * 2))
                for _ in range(n)
            ]
            case.top_ups = [rng.randint(page_size, total // 3) for _ in range(rng.randint(0, 1))] + [
                10_000_000
            ]
        if kind in ("raise", "alias", "aged"):
            from tests.chaos.batch_kinds import shape

            shape(case, rng)
        return case

    def spec(self, sandbox_url: str, workdir: Path) -> BatchSpec:
        return BatchSpec(
            hashtags=list(self.inputs or self.tags),
            output_url=f"file://{workdir / 'out'}",
            max_concurrency=self.max_concurrency,
            max_credits=self.max_credits,
            page_size=self.page_size,
            records_per_part=self.records_per_part,
            output_format=self.output_format,
            known_path=str(workdir / "committed.txt"),
            min_balance=self.min_balance,
        )


@dataclass
class BatchSpec:
    """What one try of the batch task needs, JSON-serialisable for a child process."""

    hashtags: list[str]
    output_url: str
    max_concurrency: int
    max_credits: int | None
    page_size: int
    records_per_part: int
    output_format: str
    known_path: str
    min_balance: int | None = None
    #: the object store's connection (``None``: a local folder)
    output_conn_id: str | None = None
    #: the client's User-Agent: tells apart on the ledger the calls of writers sharing one key
    user_agent: str | None = None
    #: a single-hashtag task (``TikTokHashtagVideosOperator`` on ``output_url``) instead of the batch
    single: bool = False
    #: who writes, as the folder claim names it (``dag/run/task try N``)
    owner: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> BatchSpec:
        return cls(**json.loads(text))


def recording_collector(known_path: str) -> Any:
    """``HashtagVideoCollector`` that appends every committed page to ``known_path`` (thread-safe)."""
    from airflow_provider_unifapi.collector.loop import HashtagVideoCollector

    lock = threading.Lock()

    class RecordingCollector(HashtagVideoCollector):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            inner = self.on_page

            def on_page(page: Any, checkpoint: Any) -> None:
                truncated = int(bool(page.billing.truncated_due_to_balance))
                line = f"{self.hashtag_id} {page.request_id} {truncated}\n"
                with lock, open(known_path, "a", encoding="utf-8") as known:
                    known.write(line)  # one short write: whole, or absent after a SIGKILL
                if inner is not None:
                    inner(page, checkpoint)

            self.on_page = on_page

    return RecordingCollector


def recording(known_path: str) -> Any:
    """Context manager: the run service's collectors record their committed pages in ``known_path``."""
    from unittest import mock

    from airflow_provider_unifapi.collector import run as run_module

    return mock.patch.object(run_module, "HashtagVideoCollector", recording_collector(known_path))


def task_operator(spec: BatchSpec) -> Any:
    """The task of ``spec``: the batch operator, or (``single``) the single-hashtag one."""
    from airflow_provider_unifapi.operators.hashtag_batch import TikTokHashtagBatchOperator
    from airflow_provider_unifapi.operators.hashtag_videos import TikTokHashtagVideosOperator

    common = {
        "output_path": spec.output_url,
        "output_conn_id": spec.output_conn_id,
        "max_credits": spec.max_credits,
        "min_balance": spec.min_balance,
        "page_size": spec.page_size,
        "records_per_part": spec.records_per_part,
        "output_format": spec.output_format,
    }
    if spec.single:
        return TikTokHashtagVideosOperator(task_id="collect", hashtag_id=spec.hashtags[0], **common)
    return TikTokHashtagBatchOperator(
        task_id="batch", hashtags=spec.hashtags, max_concurrency=spec.max_concurrency, **common
    )


def task_context(spec: BatchSpec) -> dict[str, Any]:
    """What ``execute`` gets: a task instance naming the writer when ``spec.owner`` is set."""
    if not spec.owner:
        return {}
    from types import SimpleNamespace

    dag_id, run_id, rest = spec.owner.split("/", 2)
    task_id, _, number = rest.partition(" try ")
    ti = SimpleNamespace(
        dag_id=dag_id, run_id=run_id, task_id=task_id, map_index=-1, try_number=int(number or 1)
    )
    return {"ti": ti}


def batch_try(spec: BatchSpec, *, record: bool = True) -> TryOutcome:
    """One try of the batch task: ``execute`` on ``spec``; never raises. Outcomes: ``done``,
    ``failed`` (AirflowException: Airflow retries), ``fatal`` (AirflowFailException: a user clears
    the task), ``untyped`` (anything else).

    :param record: patch the collectors to record committed pages (``False``: the caller did, once
        for several tries running at the same time in this process).
    """
    import contextlib

    from airflow_provider_unifapi._compat import AirflowException, AirflowFailException

    try:
        operator = task_operator(spec)
        if spec.user_agent:
            hook = operator.hook
            kwargs = hook.client_kwargs
            # an instance attribute shadows the method: both operators build their client from it
            hook.client_kwargs = lambda conn=None: {**kwargs(conn), "user_agent": spec.user_agent}
        with recording(spec.known_path) if record else contextlib.nullcontext():
            manifest = operator.execute(task_context(spec))
        return TryOutcome("done", summary=json.loads(json.dumps(manifest, default=str)))
    except AirflowFailException as exc:
        return TryOutcome("fatal", error_type=type(exc).__name__, error_text=_describe(exc))
    except AirflowException as exc:
        return TryOutcome("failed", error_type=type(exc).__name__, error_text=_describe(exc))
    except Exception as exc:
        return TryOutcome("untyped", error_type=type(exc).__name__, error_text=_describe(exc))


# -- the parent side -------------------------------------------------------------------------------
@dataclass
class TryRecord:
    outcome: TryOutcome
    start_seq: int
    end_seq: int
    killed: bool = False
    squeezed: bool = False
    #: the batch's ``max_credits`` in this try (raised between tries by ``raise`` runs)
    max_credits: int | None = None


@dataclass
class BatchRun:
    tries: list[TryRecord] = field(default_factory=list)
    kills: int = 0
    squeezes: int = 0
    balance_stops: int = 0
    texts: list[Any] = field(default_factory=list)
    final: TryOutcome | None = None
    #: the plan ended the run before every hashtag was done (it could not go on)
    gave_up: bool = False
    #: figures a kind's plan gathers between tries (see tests.chaos.batch_kinds)
    notes: Counter[str] = field(default_factory=Counter)


class TryPlan:
    """What happens around tries. This one retries like Airflow until the batch task succeeds;
    the run-service kinds (:mod:`tests.chaos.batch_kinds`) raise caps, top up and rewrite Variables.
    """

    def before(self, attempt: int, spec: BatchSpec) -> None:
        """Adjust ``spec`` (or the world) before try ``attempt``."""

    def after(self, record: TryRecord, run: BatchRun) -> str:
        """After a try: ``finished`` (the run is complete), ``retry``, or ``give_up``."""
        return "finished" if record.outcome.outcome == "done" else "retry"


def ledger_seq(sandbox: Any) -> int:
    return int(sandbox.ledger(since=10**12)["totals"]["calls"])


def settle(sandbox: Any) -> int:
    """Wait until the ledger stops growing for ``SETTLE_S``; returns its last seq."""
    seq, quiet_since = ledger_seq(sandbox), time.monotonic()
    while time.monotonic() - quiet_since < SETTLE_S:
        time.sleep(0.05)
        now = ledger_seq(sandbox)
        if now != seq:
            seq, quiet_since = now, time.monotonic()
    return seq


def sigkill_try(
    sandbox: Any, spec: BatchSpec, workdir: Path, name: str, api_key: str, nth: int, rng: random.Random
) -> tuple[TryOutcome, bool]:
    """Run a try in a child process; SIGKILL its process group once the sandbox saw ``nth`` calls of it."""
    start = ledger_seq(sandbox)
    proc, result_path, log_path = start_child(spec, workdir, name, api_key, module="tests.chaos.batch_child")
    killed = False
    deadline = time.monotonic() + 600
    try:
        while proc.poll() is None:
            made = ledger_seq(sandbox) - start
            if made >= nth:
                time.sleep(rng.uniform(0, 0.02))  # anywhere in the pages being processed
                os.killpg(proc.pid, signal.SIGKILL)
                killed = True
                break
            assert time.monotonic() < deadline, f"child {name} neither finished nor reached call {nth}"
            time.sleep(0.002 if nth - made < 10 else 0.02)
    finally:
        if proc.poll() is None and not killed:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    log_text = log_path.read_text(errors="replace")
    if killed and proc.returncode == -signal.SIGKILL:
        return TryOutcome("killed", error_text=log_text), True
    if result_path.exists():
        outcome = TryOutcome.from_json(result_path.read_text(encoding="utf-8"))
    else:
        outcome = TryOutcome("untyped", error_type=f"child exit {proc.returncode}")
    outcome.error_text += "\n" + log_text
    return outcome, False


def in_process_try(sandbox: Any, spec: BatchSpec, squeeze: tuple[int, int] | None) -> tuple[TryOutcome, bool]:
    """Run a try in this process; with ``squeeze`` a watcher sets the balance low at its ``nth`` call."""
    fired = threading.Event()
    done = threading.Event()

    def watch() -> None:
        assert squeeze is not None
        nth, balance = squeeze
        start = ledger_seq(sandbox)
        while not done.is_set():
            if ledger_seq(sandbox) - start >= nth:
                sandbox.set_balance(balance)
                fired.set()
                return
            time.sleep(0.005)

    watcher = threading.Thread(target=watch, daemon=True) if squeeze else None
    if watcher is not None:
        watcher.start()
    try:
        outcome = batch_try(spec)
    finally:
        done.set()
        if watcher is not None:
            watcher.join(timeout=30)
    return outcome, fired.is_set()


def run_batch(
    case: BatchCase, sandbox: Any, workdir: Path, api_key: str, capture: Any, plan: TryPlan | None = None
) -> BatchRun:
    """Reset the sandbox for ``case`` and run tries until ``plan`` says the run is finished (by
    default: the batch task succeeded), or ``MAX_TRIES``.

    :param capture: returns what the test process printed since the last call (its task logs).
    """
    sandbox.reset(
        seed=case.seed,
        balance=case.start_balance,
        hashtags=[{"id": h, "name": f"bchaos{h}", "video_count": n} for h, n in case.tags.items()],
    )
    sandbox.faults(*case.faults)
    spec = case.spec(sandbox.url, workdir)
    out = workdir / "out"
    rng = random.Random(case.seed * 7919)
    kills, squeezes, top_ups = list(case.kills), list(case.squeezes), list(case.top_ups)
    plan = plan or TryPlan()
    run = BatchRun()
    for attempt in range(1, MAX_TRIES + 1):
        plan.before(attempt, spec)
        start = ledger_seq(sandbox)
        killed = squeezed = False
        if kills and attempt >= case.kill_from_try:
            outcome, killed = sigkill_try(sandbox, spec, workdir, f"try{attempt}", api_key, kills[0], rng)
        else:
            outcome, squeezed = in_process_try(sandbox, spec, squeezes[0] if squeezes else None)
            run.texts.append(capture())
        if killed:
            kills.pop(0)
            run.kills += 1
            end = settle(sandbox)
            note_checkpoints(sandbox, case, out, Path(spec.known_path))
        else:
            end = ledger_seq(sandbox)
        if squeezed:
            squeezes.pop(0)
            run.squeezes += 1
        record = TryRecord(outcome, start, end, killed, squeezed, spec.max_credits)
        run.tries.append(record)
        run.texts.append(outcome.error_text)
        verdict = plan.after(record, run)
        if verdict != "retry":
            run.final, run.gave_up = outcome, verdict == "give_up"
            break
        if sandbox.balance() < case.page_size * case.max_concurrency:
            # the try stopped for lack of credits: top up before the retry
            run.balance_stops += 1
            sandbox.add_balance(top_ups.pop(0) if top_ups else 10_000_000)
    return run


def note_checkpoints(sandbox: Any, case: BatchCase, out: Path, known: Path) -> None:
    """After a kill: the page each chain committed last may have missed its line in ``known``."""
    calls = {c["request_id"]: c for c in sandbox.ledger()["calls"] if c.get("request_id")}
    for hashtag_id in case.tags:
        checkpoint = read_checkpoint(out / f"hashtag={hashtag_id}")
        last = None if checkpoint is None else checkpoint.get("last_request_id")
        if last:
            truncated = int((calls.get(last) or {}).get("balance_after") == 0)
            with open(known, "a", encoding="utf-8") as handle:
                handle.write(f"{hashtag_id} {last} {truncated}\n")


def read_batch_known(path: Path) -> dict[str, tuple[set[str], set[str]]]:
    """Per hashtag: request ids of committed pages, and of those truncated by balance."""
    known: dict[str, tuple[set[str], set[str]]] = defaultdict(lambda: (set(), set()))
    if not path.exists():
        return known
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        match = _KNOWN_LINE.fullmatch(line.strip())
        if match is None:
            continue
        hashtag_id, request_id, truncated = match.groups()
        known[hashtag_id][0].add(request_id)
        if truncated == "1":
            known[hashtag_id][1].add(request_id)
    return known


def dangling_pages(
    run: BatchRun, paid: list[dict[str, Any]], committed: set[str]
) -> tuple[int, list[dict[str, Any]]]:
    """Pages left in flight at the end of a try beyond one per chain.

    A clean page (200, no fault) that was paid but never committed, and not asked again within the
    same try (a retry inside the call, after a lost answer), was in flight when the try ended; a
    chain has at most one call in flight, so each (try, hashtag) may leave at most one.
    """
    excess, detail = 0, []
    for number, record in enumerate(run.tries, 1):
        in_try = [c for c in paid if record.start_seq < c["seq"] <= record.end_seq]
        later: Counter[tuple[Any, Any]] = Counter()
        left: dict[Any, int] = defaultdict(int)
        for call in reversed(in_try):
            key = (call["hashtag_id"], call["offset"])
            clean = call["status"] == 200 and call["fault"] is None
            if clean and call["request_id"] not in committed and not later[key]:
                left[call["hashtag_id"]] += 1
            later[key] += 1
        for hashtag_id, n in left.items():
            if n > 1:
                excess += n - 1
                detail.append({"try": number, "hashtag_id": hashtag_id, "in_flight": n})
    return excess, detail


def check_batch(case: BatchCase, sandbox: Any, workdir: Path, run: BatchRun, api_key: str) -> dict[str, Any]:
    """The chaos suite's figures for a finished batch run (see :mod:`tests.chaos.analysis`)."""
    from upath import UPath

    from airflow_provider_unifapi.storage.run_folder import iter_run_records

    ledger = sandbox.ledger()
    calls = ledger["calls"]
    view = sandbox.admin.get("/_sandbox/faults").raise_for_status().json()
    outcomes = Counter(t.outcome.outcome for t in run.tries)
    figures: dict[str, Any] = {
        "seed": case.seed,
        "kind": case.kind,
        "hashtags": len(case.tags),
        "video_counts": list(case.tags.values()),
        "page_size": case.page_size,
        "max_concurrency": case.max_concurrency,
        "output_format": case.output_format,
        "max_credits": case.max_credits,
        "tries": len(run.tries),
        "outcomes": dict(outcomes),
        "kills_sigkill": run.kills,
        "kills_simulated": 0,
        "squeezes": run.squeezes,
        "balance_stops": run.balance_stops,
        "calls": sum(1 for c in calls if c["endpoint"] == "videos"),
        "faults": fault_counts(view, calls),
        "untyped_errors": outcomes.get("untyped", 0),
        "untyped_detail": [t.outcome.error_text[-2000:] for t in run.tries if t.outcome.outcome == "untyped"][
            :2
        ],
        "unfinished": int(run.final is None or run.gave_up),
    }
    out = workdir / "out"
    texts = [*run.texts, json.dumps(ledger)]
    if run.final is None or run.final.summary is None:
        figures.update({"records_lost": 0, "duplicates": 0, "key_hits": key_hits(api_key, texts)})
        return figures
    manifest = run.final.summary
    rows = {str(r["hashtag_id"]): r for r in manifest["hashtags"]}
    known = read_batch_known(Path(case.spec(sandbox.url, workdir).known_path))
    paid = [c for c in calls if c["endpoint"] == "videos" and (c["credits_charged"] or 0) > 0]
    totals: Counter[str] = Counter()
    details: list[Any] = []
    stop_reasons: Counter[str] = Counter()
    for hashtag_id in case.tags:
        row = rows.get(hashtag_id)
        if row is None:
            totals["records_lost"] += case.tags[hashtag_id]
            details.append({"hashtag_id": hashtag_id, "missing": "no row in the batch manifest"})
            continue
        stop_reasons[str(row["stop_reason"])] += 1
        folder = out / f"hashtag={hashtag_id}"
        ids = (
            [str(r["id"]) for r in iter_run_records(UPath(f"file://{folder}"))]
            if (folder / "_manifest.json").exists()
            else []
        )
        for name, value in output_figures(ids, sandbox.truth(hashtag_id), row["stop_reason"]).items():
            totals[name] += value
        committed, truncated = known[hashtag_id]
        mine = [c for c in calls if c.get("hashtag_id") == hashtag_id]
        money = money_figures(mine, row, committed, truncated, None)
        for name in (
            "ledger_credits",
            "credits_charged",
            "possibly_billed_credits",
            "unknown_billed_credits",
            "credits_miscounted",
            "credits_beyond_worst_case",
            "credits_unaccounted",
            "refetched_pages",
            "unjustified_refetches",
            "paid_calls",
        ):
            totals[name] += money[name]
        if money["credits_unaccounted"] or money["unjustified_refetches"]:
            details.append({"hashtag_id": hashtag_id, **money})
    figures.update(totals)
    all_committed = set().union(*(k[0] for k in known.values())) if known else set()
    dangling, dangling_detail = dangling_pages(run, paid, all_committed)
    figures["pages_in_flight_beyond_one_per_chain"] = dangling
    figures["unjustified_refetches"] = totals["unjustified_refetches"] + dangling
    figures["stop_reasons"] = dict(stop_reasons)
    # the shared cap over every hashtag and every try: the ledger (name searches included) at the
    # end of each try against that try's cap, and the batch's own worst case against the last cap
    every_paid = [c for c in calls if (c["credits_charged"] or 0) > 0]
    ledger_credits = sum(c["credits_charged"] for c in every_paid)
    spent = int(manifest["totals"]["credits_spent"])
    cap = run.tries[-1].max_credits or case.max_credits
    figures["ledger_credits"] = ledger_credits
    figures["credits_spent"] = spent
    figures["budget_breaches"] = int(spent > cap) + sum(
        1
        for t in run.tries
        if sum(c["credits_charged"] for c in every_paid if c["seq"] <= t.end_seq) > (t.max_credits or cap)
    )
    if case.min_balance is not None:  # the shared floor, on every balance the sandbox reported
        lowest = min((c["balance_after"] for c in paid if c.get("balance_after") is not None), default=None)
        figures["min_balance"] = case.min_balance
        figures["lowest_balance"] = lowest
        figures["budget_breaches"] += int(lowest is not None and lowest < case.min_balance)
    # the batch manifest's totals are its rows' sums, and the file says what the task returned
    on_disk = json.loads((out / "_batch_manifest.json").read_text(encoding="utf-8"))
    figures["manifest_mismatch"] = int(
        on_disk["totals"] != manifest["totals"]
        or manifest["totals"]["records"] != figures["records"]
        or manifest["totals"]["credits_charged"] != figures["credits_charged"]
    )
    figures["detail"] = (details + dangling_detail)[:5]
    if case.kind in ("raise", "alias", "aged"):
        from tests.chaos.batch_kinds import kind_figures

        figures.update(kind_figures(case, sandbox, out, run, calls, known))
    figures.update(run.notes)
    texts += [manifest, on_disk, *folder_texts(out), *(p.read_bytes() for p in workdir.glob("*.log"))]
    figures["key_hits"] = key_hits(api_key, texts)
    return figures
