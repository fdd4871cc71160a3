"""Chaos through the real operator: Airflow task runs with a fault plan, balance squeezes and
SIGKILL of the task process, until the run completes; then the same promises as the collector runs,
plus the task log's money line and the XCom summary."""

from __future__ import annotations

import json
import random

import pytest

from tests.chaos import report, settings
from tests.chaos.analysis import fault_counts, folder_texts, key_hits, output_figures
from tests.chaos.cases import CLIENT, fault_plan
from tests.chaos.harness import assert_promises
from tests.chaos.operator_runs import coarse_money, done_line_credits, kill_task_process, next_date
from tests.conftest import API_KEY, conn_uri_json
from tests.test_operator import op_dag, read_output

pytestmark = [pytest.mark.chaos, pytest.mark.airflow]

MAX_DAG_RUNS = 12


@pytest.mark.timeout(900)
@pytest.mark.parametrize("seed", [5000 + i for i in range(settings.operator_runs())])
# A SIGKILLed operator run starts Airflow in a fresh process (~25 s on 2 cores): only under
# make chaos. The default run still kills the real task process in test_operator_kill_and_s3.py,
# and kills collector child processes here.
@pytest.mark.parametrize(
    "sigkill",
    [False, True] if settings.long_mode() else [False],
    ids=lambda k: "faults+sigkill" if k else "faults",
)
def test_operator_chaos_run(
    seed: int, sigkill: bool, sandbox, dag_runner, tmp_path, capfd, monkeypatch
) -> None:
    seed += 500 * sigkill
    rng = random.Random(seed)
    video_count = rng.randint(300, 700)
    hashtag_id = str(700_000 + seed)
    squeezed = rng.random() < 0.5
    max_credits = rng.randint(video_count // 2, video_count + 100) if rng.random() < 0.4 else None
    sandbox.reset(
        seed=seed,
        balance=rng.randint(video_count // 4, video_count // 2) if squeezed else 10_000_000,
        hashtags=[{"id": hashtag_id, "name": f"opchaos{seed}", "video_count": video_count}],
    )
    faults, _ = fault_plan(rng, intensity=1.0)
    sandbox.faults(*faults)
    monkeypatch.setenv("AIRFLOW_CONN_UNIFAPI_DEFAULT", conn_uri_json(sandbox.url, **CLIENT))
    out = tmp_path / "out"
    kwargs = {
        "hashtag_id": hashtag_id,
        "output_path": f"file://{out}",
        "page_size": rng.choice([20, 50]),
        "records_per_part": rng.choice([60, 150, 10_000]),
    }
    if max_credits is not None:
        kwargs["max_credits"] = max_credits
    dag_id = f"chaos_op_{seed}"
    # a handful of Airflow retries per run: enough to ride out the faults, few enough that a run
    # failing for lack of credits ends quickly and the loop below tops up and starts the next
    path = op_dag(dag_runner, dag_id, retries=5, **kwargs)
    logs: list[str] = []
    kill_seqs: list[int] = []
    result = None
    for n in range(MAX_DAG_RUNS):
        if sigkill and len(kill_seqs) < 2 and n < 4:
            killed_log = tmp_path / f"killed{n}.log"
            # its own logical date: Airflow 2.11's dag.test() cannot reuse the date of an existing run
            seq = kill_task_process(sandbox, path, rng.randint(1, 8), next_date(1000 + n), rng, killed_log)
            logs.append(killed_log.read_text(errors="replace"))
            if seq is not None:
                kill_seqs.append(seq)
                continue
        result = dag_runner.run(path, logical_date=next_date(n), capsys=capfd)
        logs.append(result.log_text)
        if result.state == "success":
            break
        if sandbox.balance() < 50:  # the run failed for lack of credits: top up, then "clear" the task
            sandbox.add_balance(10_000_000)
    assert result is not None and result.state == "success", (
        f"seed {seed}: no successful run in {MAX_DAG_RUNS}"
    )
    summary = result.xcoms["collect"]
    calls = sandbox.ledger()["calls"]
    view = sandbox.admin.get("/_sandbox/faults").raise_for_status().json()
    manifest, records = read_output(out)
    figures = {
        "seed": seed,
        "video_count": video_count,
        "max_credits": max_credits,
        "stop_reason": summary["stop_reason"],
        "tries": int(summary["tries"]),
        "kills_sigkill": len(kill_seqs),
        "calls": sum(1 for c in calls if c["endpoint"] == "videos"),
        "faults": fault_counts(view, calls),
        "untyped_errors": 0,
        "unfinished": 0,
    }
    figures.update(
        output_figures([str(r["id"]) for r in records], sandbox.truth(hashtag_id), summary["stop_reason"])
    )
    figures.update(coarse_money(calls, summary, max_credits, kill_seqs))
    # the last "Done" line of the task logs reports the same money as the summary (a killed task
    # process may have written it just before dying; the next run then reuses the complete folder)
    logged = done_line_credits("\n".join(logs))
    figures["log_mismatch"] = int(logged != (summary["credits_charged"], summary["possibly_billed_credits"]))
    texts = [*logs, summary, manifest, json.dumps(calls), *folder_texts(out)]
    figures["key_hits"] = key_hits(API_KEY, texts)
    report.record("operator", figures)
    assert_promises(figures)
    assert figures["log_mismatch"] == 0, f"log line {logged} vs summary {summary}"
    # A run that found the folder complete (a killed try wrote the manifest just before dying)
    # returns the manifest's summary plus ``reused``, which the manifest itself does not hold.
    expected = {k: v for k, v in summary.items() if k != "reused"}
    assert {k: v for k, v in manifest.items() if k in expected} == expected
