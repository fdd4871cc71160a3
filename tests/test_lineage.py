"""OpenLineage events of real task runs, captured through the provider's file transport.

The DAG runs in a child ``airflow dags test`` process (the OpenLineage provider reads its transport
once per process), with a producer (``hashtag_name``: the id is resolved during execute) and a
downstream task that reads the first part through ``ObjectStoragePath``, which Airflow's hook-level
lineage reports. The two must name that file identically, or lineage graphs do not join.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import API_KEY, assert_no_key

TAG, NAME, VIDEOS = "4646", "lineagetest", 230


@pytest.fixture
def sb(unifapi_conn):
    unifapi_conn.add_hashtag(TAG, NAME, VIDEOS)
    return unifapi_conn


def run_with_lineage(
    dag_runner: Any, dag_id: str, body: str, events_file: Path, *, succeeds: bool = True
) -> list[dict[str, Any]]:
    dag_runner.write(dag_id, body)
    env = {
        **os.environ,
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
            {"type": "file", "log_file_path": str(events_file), "append": True}
        ),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "unifapi-tests",
    }
    done = subprocess.run(
        [sys.executable, "-m", "airflow", "dags", "test", dag_id, "2024-01-01"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if succeeds:
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert_no_key(done.stdout, done.stderr)
    text = events_file.read_text()
    assert API_KEY not in text and API_KEY[8:] not in text
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def task_events(events: list[dict[str, Any]], dag_id: str, task_id: str) -> dict[str, dict[str, Any]]:
    """The task's last event of each type (START, COMPLETE, FAIL)."""
    found = {}
    for event in events:
        if event["job"]["name"] == f"{dag_id}.{task_id}":
            found[event["eventType"]] = event
    return found


def test_events_name_the_resolved_input_and_the_parts_as_airflow_does(sb, dag_runner, tmp_path):
    out = tmp_path / "out"
    events = run_with_lineage(
        dag_runner,
        "lineage_pipeline",
        f"""
        from airflow_provider_unifapi._compat import ObjectStoragePath

        collect = TikTokHashtagVideosOperator(
            task_id="collect", hashtag_name={NAME!r}, output_path="file://{out}/", records_per_part=100,
            max_credits=5000,
        )

        @task
        def read_first_part(summary: dict) -> int:
            # a plain ObjectStoragePath read: Airflow's hook-level lineage reports this file
            with ObjectStoragePath(summary["output_path"] + summary["files"][0]).open("rb") as handle:
                return len(handle.read())

        read_first_part(collect.output)
        """,
        tmp_path / "events.jsonl",
    )
    collect = task_events(events, "lineage_pipeline", "collect")
    start, complete = collect["START"], collect["COMPLETE"]
    endpoint = {"namespace": sb.url, "name": f"/tiktok/hashtags/{TAG}/videos"}
    # START cannot know the id of a name (it is resolved during execute): no input rather than a wrong one
    assert start["inputs"] == [] and start["outputs"] == []
    assert [{k: d[k] for k in ("namespace", "name")} for d in complete["inputs"]] == [endpoint]
    # one output per part, named as Airflow names the file: namespace "file", the absolute path
    manifest = json.loads((out / "_manifest.json").read_text())
    expected = [("file", str(out / part["name"])) for part in manifest["parts"]]
    assert [(d["namespace"], d["name"]) for d in complete["outputs"]] == expected
    assert len(expected) >= 2  # 230 records, a part closes once it holds 100
    for dataset, part in zip(complete["outputs"], manifest["parts"], strict=True):
        stats = dataset["outputFacets"]["outputStatistics"]
        assert stats["rowCount"] == part["records"]
        assert stats["size"] == (out / part["name"]).stat().st_size
    assert sum(d["outputFacets"]["outputStatistics"]["rowCount"] for d in complete["outputs"]) == VIDEOS
    credits = complete["run"]["facets"]["unifapi_credits"]
    assert credits["hashtagId"] == TAG and credits["records"] == VIDEOS
    assert credits["creditsCharged"] == sb.credits_charged() == manifest["credits_charged"]
    assert credits["possiblyBilledCredits"] == 0 and credits["creditsSpent"] == credits["creditsCharged"]
    assert credits["maxCredits"] == 5000 and credits["stopReason"] == "exhausted"
    assert credits["dollarsSpent"].startswith("$") and credits["tries"] == 1
    assert "unifapi_credits" not in start["run"]["facets"]  # COMPLETE says more than START
    # the downstream read of part-00000 is the same dataset: the graph joins
    reader = task_events(events, "lineage_pipeline", "read_first_part")["COMPLETE"]
    assert ("file", str(out / manifest["parts"][0]["name"])) in {
        (d["namespace"], d["name"]) for d in reader["inputs"]
    }


def test_a_failed_try_reports_what_it_spent(sb, dag_runner, tmp_path):
    sb.set_balance(120)  # page 3 is cut short by the balance: the task fails
    events = run_with_lineage(
        dag_runner,
        "lineage_truncated",
        f"""
        TikTokHashtagVideosOperator(task_id="collect", hashtag_id={TAG!r}, output_path="file://{tmp_path}/t/")
        """,
        tmp_path / "events.jsonl",
        succeeds=False,
    )
    collect = task_events(events, "lineage_truncated", "collect")
    assert [d["name"] for d in collect["START"]["inputs"]] == [f"/tiktok/hashtags/{TAG}/videos"]
    fail = collect["FAIL"]
    credits = fail["run"]["facets"]["unifapi_credits"]
    assert (
        credits["stopReason"] == "balance_truncated"
        and credits["creditsCharged"] == 120 == sb.credits_charged()
    )
    assert fail["outputs"] == []  # an incomplete folder is nothing a reader may use


def test_a_batch_reports_one_input_per_hashtag_and_every_part(sb, dag_runner, tmp_path):
    sb.add_hashtag("4647", "lineagetwo", 130)
    out = tmp_path / "batch"
    events = run_with_lineage(
        dag_runner,
        "lineage_batch",
        f"""
        from airflow_provider_unifapi.operators.hashtag_batch import TikTokHashtagBatchOperator

        TikTokHashtagBatchOperator(
            task_id="batch", hashtags=[{TAG!r}, "lineagetwo"], output_path="file://{out}",
            records_per_part=100, max_credits=5000,
        )
        """,
        tmp_path / "events.jsonl",
    )
    batch = task_events(events, "lineage_batch", "batch")
    start, complete = batch["START"], batch["COMPLETE"]
    assert [d["name"] for d in start["inputs"]] == [f"/tiktok/hashtags/{TAG}/videos"]  # the name: later
    assert sorted(d["name"] for d in complete["inputs"]) == [
        f"/tiktok/hashtags/{TAG}/videos",
        "/tiktok/hashtags/4647/videos",
    ]
    expected = []
    for tag in (TAG, "4647"):
        folder = out / f"hashtag={tag}"
        manifest = json.loads((folder / "_manifest.json").read_text())
        expected += [("file", str(folder / part["name"]), part["records"]) for part in manifest["parts"]]
    found = [
        (d["namespace"], d["name"], d["outputFacets"]["outputStatistics"]["rowCount"])
        for d in complete["outputs"]
    ]
    assert sorted(found) == sorted(expected) and sum(r for *_, r in found) == VIDEOS + 130
    credits = complete["run"]["facets"]["unifapi_credits"]
    assert credits["records"] == VIDEOS + 130 and credits["maxCredits"] == 5000
    assert credits["creditsSpent"] == sb.credits_charged()  # the name's search included
