"""Batch chaos kinds about the run service (collector/run.py): limits are pauses, names meet ids.

- ``raise``: a small shared ``max_credits`` stops some hashtags part-way (``stopped``, or
  ``skipped`` before their first page); the same cap run again must cost nothing; then the cap is
  raised one seeded step after each try that left hashtags stopped, until every hashtag is done.
  Some runs SIGKILL one try. Checked: every hashtag exact, a stopped folder keeps its manifest
  (``stopped``) and its checkpoint, a skipped one has no manifest, no page answered twice (except
  one in flight at a kill), the cap in force never crossed at the end of any try.
- ``alias``: the batch lists hashtags by id, by name (``bchaos<id>``), by both, and by a name
  spelled again in capitals with ``#``. Checked: one row and one folder per hashtag, the row named
  by the first input and its ``same_as`` the others, each name searched once over all tries (and its
  credits in the manifest), exact data, no page paid twice.
- ``aged``: a remembered balance far too high and hours old is written before every try, with
  ``min_balance`` near the real balance; after a try that left hashtags stopped on the floor the
  workspace is topped up (seeded) and the task run again. Checked: the ledger never goes below the
  floor, no hashtag ``done`` short of its records, and a top-up lets the run go on.

The figures of :func:`tests.chaos.batch_runs.check_batch` apply to each, plus those of
:func:`kind_figures`, every one of which must be 0.
"""

from __future__ import annotations

import contextlib
import json
import random
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from tests.chaos.batch_runs import BatchCase, BatchRun, BatchSpec, TryPlan, TryRecord

LIMIT_KINDS = ("raise", "alias", "aged")
#: what each kind must find 0 of, beyond the suite's figures (see kind_figures)
KIND_ZERO = {
    "raise": ("pages_paid_twice", "not_exact", "status_mismatches", "same_cap_calls", "same_cap_changed"),
    "alias": (
        "pages_paid_twice",
        "not_exact",
        "rows_wrong",
        "folders_wrong",
        "searches_beyond_one_per_name",
        "resolution_unaccounted",
    ),
    "aged": (
        "pages_paid_twice",
        "silent_done",
        "status_mismatches",
        "aged_reading_stood_in",
        "stuck_after_top_up",
    ),
}
#: seconds a balance reading stands in, on the ``aged`` kind's connection (``balance_max_age``)
AGED_MAX_AGE = 1.0
#: tries in a row that a top-up did not move before an ``aged`` run gives up
STUCK_TRIES = 2


def shape(case: BatchCase, rng: random.Random) -> None:
    """Make a case built by :meth:`BatchCase.from_seed` into one of :data:`LIMIT_KINDS`."""
    total = sum(case.tags.values())
    if case.kind == "raise":
        case.max_credits = rng.randint(total // 5, total // 2)
        cap = case.max_credits
        while cap < total:
            cap += rng.randint(total // 6, total // 3)
            case.caps.append(cap)
        if rng.random() < 0.4:  # one try SIGKILLed, early or after a raise
            case.kills = [rng.randint(2, 6)]
            case.kill_from_try = rng.randint(1, 3)
    elif case.kind == "alias":
        case.inputs = alias_inputs(list(case.tags), rng)
        names = sum(1 for entry in case.inputs if not entry.isdigit())
        slack = rng.randint(4, 8) * case.page_size * case.max_concurrency
        case.max_credits = (total * 5) // 4 + slack + 60 * names
    elif case.kind == "aged":
        case.max_credits = total * 2  # the floor, not the cap, stops them
        case.min_balance = rng.randint(1_000, 50_000)
        case.start_balance = case.min_balance + rng.randint(total // 4, total // 2)
        case.remembered = (rng.randint(20, 200) * (case.start_balance + total), rng.uniform(2, 72))
        case.top_ups = [rng.randint(total // 3, total) for _ in range(6)] + [10_000_000]


def alias_inputs(tags: list[str], rng: random.Random) -> list[str]:
    """The batch's ``hashtags``: each hashtag by id, by name, by both, or by its name twice
    (``#`` and capitals the second time, the id with it or not); at least one by name and id."""
    forms = [rng.choice(["id", "name", "both", "both", "twice", "twice+id"]) for _ in tags]
    if not any(form in ("both", "twice+id") for form in forms):
        forms[0] = "both"
    entries: list[str] = []
    for tag, form in zip(tags, forms, strict=True):
        name = f"bchaos{tag}"
        entries += {
            "id": [tag],
            "name": [name],
            "both": [tag, name],
            "twice": [name, f"#{name.upper()}"],
            "twice+id": [name, f"#{name.upper()}", tag],
        }[form]
    rng.shuffle(entries)
    return entries


def expected_rows(inputs: list[str]) -> dict[str, tuple[str, list[str]]]:
    """Per hashtag id: the input that names its row (the first), and its ``same_as`` (the others).

    Inputs equal once ``#`` and case are folded are one input (the first spelling kept)."""
    rows: dict[str, tuple[str, list[str]]] = {}
    seen: set[str] = set()
    for entry in inputs:
        text = entry.strip().lstrip("#")
        folded = text if text.isdigit() else text.lower()
        if folded in seen:
            continue
        seen.add(folded)
        hashtag_id = text if text.isdigit() else text.lower().removeprefix("bchaos")
        if hashtag_id in rows:
            rows[hashtag_id][1].append(text)
        else:
            rows[hashtag_id] = (text, [])
    return rows


# -- between tries ---------------------------------------------------------------------------------
def status_mismatches(out: Path, manifest: dict[str, Any]) -> int:
    """Rows whose folder does not say what the row says: ``done`` -> a done manifest and no
    checkpoint; ``stopped`` -> a stopped manifest with the row's records and the checkpoint (the
    cursor) kept; ``skipped`` -> no manifest."""
    bad = 0
    for row in manifest["hashtags"]:
        folder = out / f"hashtag={row['hashtag_id']}"
        path = folder / "_manifest.json"
        stored = json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
        has_checkpoint = (folder / "_checkpoint.json").exists()
        status = row["status"]
        if status == "done":
            ok = stored is not None and stored.get("status") == "done" and not has_checkpoint
        elif status == "stopped":
            ok = (
                stored is not None
                and stored.get("status") == "stopped"
                and stored.get("records") == row["records"]
                and has_checkpoint
            )
        elif status == "skipped":
            ok = stored is None
        else:
            ok = True
        bad += not ok
    return bad


class RaisePlan(TryPlan):
    """``raise``: after the first try that leaves hashtags stopped, the same cap once more (must cost
    nothing), then one seeded step up after each such try; failed tries are retried at the same cap."""

    def __init__(self, case: BatchCase, out: Path) -> None:
        self.case, self.out = case, out
        self.step = 0
        self.same_checked = self.same_pending = False
        self.last: dict[str, str] = {}

    def cap(self) -> int:
        caps = [self.case.max_credits, *self.case.caps]
        if self.step < len(caps):
            return caps[self.step]
        total = sum(self.case.tags.values())
        return caps[-1] + total * (self.step - len(caps) + 1)

    def before(self, attempt: int, spec: BatchSpec) -> None:
        spec.max_credits = self.cap()

    def after(self, record: TryRecord, run: BatchRun) -> str:
        if self.same_pending:
            run.notes["same_cap_calls"] += record.end_seq - record.start_seq
        if record.outcome.outcome != "done":
            return "retry"
        manifest = record.outcome.summary or {}
        run.notes["status_mismatches"] += status_mismatches(self.out, manifest)
        statuses = {str(r["hashtag_id"]): r["status"] for r in manifest["hashtags"]}
        if self.same_pending:
            run.notes["same_cap_changed"] += int(statuses != self.last)
            self.same_pending = False
        if all(status == "done" for status in statuses.values()):
            return "finished"
        run.notes["rows_stopped"] += sum(status == "stopped" for status in statuses.values())
        run.notes["rows_skipped"] += sum(status == "skipped" for status in statuses.values())
        if not self.same_checked:
            self.same_checked = self.same_pending = True
            self.last = statuses
        else:
            self.step += 1
            run.notes["raises"] += 1
        return "retry"


class AgedPlan(TryPlan):
    """``aged``: the stale Variable before every try; a top-up after a try that stopped on the floor."""

    def __init__(self, case: BatchCase, out: Path, sandbox: Any, api_key: str) -> None:
        self.case, self.out, self.sandbox, self.api_key = case, out, sandbox, api_key
        self.top_ups = list(case.top_ups)
        self.topped_up = False
        self.stuck = 0

    def before(self, attempt: int, spec: BatchSpec) -> None:
        assert self.case.remembered is not None
        balance, hours = self.case.remembered
        write_remembered(self.api_key, balance, datetime.now(timezone.utc) - timedelta(hours=hours))

    def after(self, record: TryRecord, run: BatchRun) -> str:
        calls = record.end_seq - record.start_seq
        # Only the try right after a top-up can be stuck on it (a later one may find it spent).
        after_top_up, self.topped_up = self.topped_up, False
        if record.outcome.outcome != "done":
            return "retry"
        manifest = record.outcome.summary or {}
        run.notes["status_mismatches"] += status_mismatches(self.out, manifest)
        rows = manifest["hashtags"]
        for row in rows:
            truth = len(self.sandbox.truth(str(row["hashtag_id"])))
            run.notes["silent_done"] += int(row["status"] == "done" and row["records"] != truth)
        if all(row["status"] == "done" for row in rows):
            return "finished"
        run.notes["rows_stopped_on_floor"] += sum(row["stop_reason"] == "min_balance" for row in rows)
        if after_top_up and calls == 0:
            # every hashtag left stopped, the balance topped up well above the floor, not one call
            run.notes["stuck_after_top_up"] += 1
            self.stuck += 1
            if self.stuck >= STUCK_TRIES:
                run.notes["balance_at_give_up"] = self.sandbox.balance()
                return "give_up"
        else:
            self.stuck = 0
        self.sandbox.add_balance(self.top_ups.pop(0) if self.top_ups else 10_000_000)
        time.sleep(AGED_MAX_AGE + 0.2)  # the rerun comes after the readings of the try before aged
        self.topped_up = True
        run.notes["top_ups"] += 1
        return "retry"


@contextlib.contextmanager
def variables_in_db() -> Iterator[None]:
    """Let in-process tries read and write Variables in the metadata DB, as a task's supervisor does.

    Outside a task, Airflow 3's ``airflow.sdk.Variable`` has no supervisor to ask: ``get`` answers
    ``None`` and ``set`` fails (the package logs and carries on), so an in-process try would never
    see a remembered balance. Only the transport is swapped; what the hook does with a reading
    (``recall_fresh_balance``: fresh and >= min_balance only) is the package's own.
    """
    from unittest import mock

    from airflow.models import Variable as DbVariable

    from airflow_provider_unifapi import _compat

    class Variable:
        @staticmethod
        def set(key: str, value: str, description: str | None = None) -> None:
            DbVariable.set(key, value, description=description)

    def get_variable(key: str) -> Any:
        return DbVariable.get(key, default_var=None)

    with (
        mock.patch.object(_compat, "get_variable", get_variable),
        mock.patch.object(_compat, "Variable", Variable),
    ):
        yield


def write_remembered(api_key: str, balance: int, seen_at: datetime) -> None:
    """Make the Variable remembering the balance of ``api_key`` hold ``balance`` seen at ``seen_at``."""
    from airflow_provider_unifapi.hooks.balance_reading import remember, variable_name
    from airflow_provider_unifapi.models import BalanceReading

    forget_remembered(api_key)
    with variables_in_db():
        remember(variable_name(api_key), BalanceReading(balance=balance, seen_at=seen_at))


def forget_remembered(api_key: str) -> None:
    from airflow.models import Variable

    from airflow_provider_unifapi.hooks.balance_reading import variable_name

    Variable.delete(variable_name(api_key))


def plan_for(case: BatchCase, sandbox: Any, workdir: Path, api_key: str) -> TryPlan:
    out = workdir / "out"
    if case.kind == "raise":
        return RaisePlan(case, out)
    if case.kind == "aged":
        return AgedPlan(case, out, sandbox, api_key)
    return TryPlan()


# -- the checks --------------------------------------------------------------------------------------
def pages_paid_twice(
    run: BatchRun, calls: list[dict[str, Any]], committed: set[str], truncated: set[str]
) -> tuple[int, list[Any]]:
    """Pages (hashtag, offset) answered 200 (no fault injected) more than once, beyond those the
    suite's rules allow: an earlier answer never committed because its try was SIGKILLed, or one
    cut short by the balance."""
    killed = [(t.start_seq, t.end_seq) for t in run.tries if t.killed]
    pages: dict[tuple[Any, Any], list[dict[str, Any]]] = defaultdict(list)
    for call in calls:
        if call["endpoint"] == "videos" and call["status"] == 200 and call["fault"] is None:
            pages[(call["hashtag_id"], call["offset"] or 0)].append(call)
    count, detail = 0, []
    for page, group in pages.items():
        for earlier in group[:-1]:
            in_flight_at_kill = earlier["request_id"] not in committed and any(
                start < earlier["seq"] <= end for start, end in killed
            )
            if not in_flight_at_kill and earlier["request_id"] not in truncated:
                count += 1
                detail.append({"page": page, "request_id": earlier["request_id"]})
    return count, detail[:5]


def kind_figures(
    case: BatchCase,
    sandbox: Any,
    out: Path,
    run: BatchRun,
    calls: list[dict[str, Any]],
    known: dict[str, tuple[set[str], set[str]]],
) -> dict[str, Any]:
    """The checks of ``case.kind`` on a finished run (all in :data:`KIND_ZERO` must be 0)."""
    from upath import UPath

    from airflow_provider_unifapi.storage.run_folder import iter_run_records

    committed = set().union(*(k[0] for k in known.values())) if known else set()
    truncated = set().union(*(k[1] for k in known.values())) if known else set()
    twice, detail = pages_paid_twice(run, calls, committed, truncated)
    figures: dict[str, Any] = {"pages_paid_twice": twice, "paid_twice_detail": detail}
    manifest = run.final.summary if run.final is not None and run.final.summary else {"hashtags": []}
    rows = {str(r["hashtag_id"]): r for r in manifest["hashtags"]}
    not_exact = 0
    for tag in case.tags:
        folder = out / f"hashtag={tag}"
        row = rows.get(tag)
        if row is None or row["status"] != "done" or not (folder / "_manifest.json").exists():
            not_exact += case.kind != "aged" or not run.gave_up
            continue
        ids = [str(r["id"]) for r in iter_run_records(UPath(f"file://{folder}"))]
        not_exact += ids != sandbox.truth(tag)
    figures["not_exact"] = not_exact
    for name in KIND_ZERO[case.kind]:
        figures.setdefault(name, 0)
    if case.kind == "raise":
        figures["caps"] = [t.max_credits for t in run.tries]
    elif case.kind == "aged":
        # the stale reading must not stand in: the batch learns the balance with a 1-record call first
        first = next((c for c in calls if c["endpoint"] == "videos"), None)
        figures["aged_reading_stood_in"] = int(first is not None and first["limit"] != 1)
    elif case.kind == "alias":
        figures.update(alias_figures(case, out, manifest, calls))
    return figures


def alias_figures(
    case: BatchCase, out: Path, manifest: dict[str, Any], calls: list[dict[str, Any]]
) -> dict[str, Any]:
    """One row and one folder per hashtag, ``same_as`` as listed, each name searched once and paid."""
    expected = expected_rows(case.inputs or [])
    rows = manifest["hashtags"]
    got = {str(r["hashtag_id"]): (r["hashtag"], list(r["same_as"])) for r in rows}
    rows_wrong = abs(len(rows) - len(expected)) + sum(got.get(tag) != want for tag, want in expected.items())
    folders = {p.name for p in out.iterdir() if p.is_dir()} if out.exists() else set()
    folders_wrong = len(folders ^ {f"hashtag={tag}" for tag in case.tags})
    names = {
        entry.strip().lstrip("#").lower() for entry in case.inputs or [] if not entry.lstrip("#").isdigit()
    }
    searches = [c for c in calls if c["endpoint"] == "search" and (c["credits_charged"] or 0) > 0]
    search_credits = sum(c["credits_charged"] for c in searches)
    return {
        "inputs": case.inputs,
        "rows_wrong": rows_wrong,
        "folders_wrong": folders_wrong,
        "names": len(names),
        "searches": len(searches),
        "searches_beyond_one_per_name": max(0, len(searches) - len(names)),
        "resolution_credits": manifest.get("totals", {}).get("resolution_credits"),
        "resolution_unaccounted": abs(
            int(manifest.get("totals", {}).get("resolution_credits") or 0) - search_credits
        ),
    }
