"""The batch operator with real task runs against the sandbox: exact records per hashtag, one shared
budget, failures that do not stop the others, and resume after SIGKILL (judged on the ledger)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from tests.conftest import assert_no_key, run_dag_then_kill
from tests.test_operator import read_output

TAGS = {"7101": 900, "7102": 1300, "7103": 400, "7104": 1100}
CATALOGUE = [{"id": k, "name": f"batch{k}", "video_count": v} for k, v in TAGS.items()]


def batch_dag(dag_runner, dag_id: str, **kwargs) -> Path:
    args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    return dag_runner.write(
        dag_id,
        f"""
        from airflow_provider_unifapi.operators.hashtag_batch import TikTokHashtagBatchOperator
        TikTokHashtagBatchOperator(task_id="batch", retries=0, {args})
        """,
    )


def assert_exact(sb, out: Path, hashtag_id: str) -> None:
    _manifest, records = read_output(out / f"hashtag={hashtag_id}")
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids)), "duplicates"
    assert ids == sb.truth(hashtag_id)


def batch_manifest(out: Path) -> dict:
    return json.loads((out / "_batch_manifest.json").read_text())


def test_batch_pages_ids_and_names_exactly_with_chains_paced(unifapi_conn, dag_runner, tmp_path, capfd):
    sb = unifapi_conn
    sb.reset(hashtags=CATALOGUE, rate_limit_per_minute=1200, latency_ms=20)
    out = tmp_path / "b"
    hashtags = ["7101", 7102, "#batch7103", "batch7104", "7101"]
    path = batch_dag(
        dag_runner, "batch_ok", hashtags=hashtags, output_path=f"file://{out}", max_concurrency=3
    )
    result = dag_runner.run(path)
    assert result.ti_state("batch") == "success"
    for tag in TAGS:
        assert_exact(sb, out, tag)
    manifest = batch_manifest(out)
    assert result.xcoms["batch"]["totals"] == manifest["totals"]
    totals = manifest["totals"]
    assert totals["records"] == sum(TAGS.values()) and totals["by_status"] == {
        "done": 4,
        "stopped": 0,
        "skipped": 0,
        "failed": 0,
    }
    ledger = sb.ledger()["totals"]
    assert totals["credits_spent"] == ledger["credits_charged"]
    assert ledger["by_status"].get("429", 0) == 0  # paced, not throttled
    assert_no_key(manifest, capfd.readouterr().out)


def test_shared_max_credits_is_never_crossed(unifapi_conn, dag_runner, tmp_path):
    sb = unifapi_conn
    sb.reset(hashtags=CATALOGUE)
    out = tmp_path / "cap"
    path = batch_dag(
        dag_runner,
        "batch_cap",
        hashtags=list(TAGS),
        output_path=f"file://{out}",
        max_concurrency=4,
        max_credits=777,
    )
    result = dag_runner.run(path)
    assert result.ti_state("batch") == "success"
    assert sb.credits_charged() <= 777
    assert sb.credits_charged() >= 777 - 4 * 50  # the cap was used, not left idle
    totals = batch_manifest(out)["totals"]
    assert totals["credits_spent"] == sb.credits_charged()
    assert totals["stop_reasons"].get("max_credits", 0) >= 1


def test_a_404_hashtag_fails_the_task_by_name_and_a_retry_redoes_nothing(unifapi_conn, dag_runner, tmp_path):
    sb = unifapi_conn
    sb.reset(hashtags=CATALOGUE, not_found_ids=["7199"])
    out = tmp_path / "404"
    kwargs = {"hashtags": ["7101", "7199", "7103"], "output_path": f"file://{out}", "max_concurrency": 3}
    result = dag_runner.run(batch_dag(dag_runner, "batch_404", **kwargs))
    assert result.ti_state("batch") == "failed"
    manifest = batch_manifest(out)
    assert [f["hashtag"] for f in manifest["failures"]] == ["7199"]
    assert manifest["failures"][0]["type"] == "UnifAPINotFoundError"
    assert_exact(sb, out, "7101")
    assert_exact(sb, out, "7103")
    before = sb.credits_charged()
    seen = len(sb.calls("videos"))
    # what a try killed between a manifest and its clean-up leaves: the reuse removes it
    (out / "hashtag=7101" / "_checkpoint.json").write_text("{}")
    (out / "hashtag=7101" / "_staging").mkdir(exist_ok=True)
    (out / "hashtag=7101" / "_staging" / "page-000003.jsonl").write_text("{}\n")
    # The retry (a new try on the same folder): finished hashtags cost nothing and are not called.
    result = dag_runner.run(batch_dag(dag_runner, "batch_404_retry", **kwargs))
    assert result.ti_state("batch") == "failed"
    assert sorted(p.name for p in (out / "hashtag=7101").iterdir() if p.name.startswith("_")) == [
        "_manifest.json"
    ]
    again = sb.calls("videos")[seen:]
    assert {c["hashtag_id"] for c in again} == {"7199"}
    assert sb.credits_charged() == before
    statuses = {r["hashtag"]: (r["status"], r["reused"]) for r in batch_manifest(out)["hashtags"]}
    assert statuses == {"7101": ("done", True), "7199": ("failed", False), "7103": ("done", True)}
    # fail_on_hashtag_error=False: the same batch succeeds, failures reported.
    result = dag_runner.run(batch_dag(dag_runner, "batch_404_ok", fail_on_hashtag_error=False, **kwargs))
    assert result.ti_state("batch") == "success"
    assert result.xcoms["batch"]["failures"][0]["hashtag"] == "7199"


def test_bad_input_fails_before_any_call(unifapi_conn, dag_runner, tmp_path):
    sb = unifapi_conn
    for dag_id, kwargs in {
        "batch_bad_list": {"hashtags": [], "output_path": f"file://{tmp_path}/x"},
        "batch_bad_conc": {"hashtags": ["7101"], "output_path": f"file://{tmp_path}/x", "max_concurrency": 0},
        "batch_bad_path": {"hashtags": ["7101"], "output_path": ""},
    }.items():
        result = dag_runner.run(batch_dag(dag_runner, dag_id, **kwargs))
        assert result.ti_state("batch") == "failed"
    assert sb.calls() == []


def test_sigkilled_batch_resumes_every_chain_and_pays_at_most_one_page_per_chain(
    unifapi_conn, dag_runner, tmp_path
):
    sb = unifapi_conn
    sb.reset(hashtags=CATALOGUE, latency_ms=30)
    out = tmp_path / "kill"
    cap = 4400  # the whole batch costs ~3,800 (duplicates and the repaid pages included)
    kwargs = {
        "hashtags": list(TAGS),
        "output_path": f"file://{out}",
        "max_concurrency": 3,
        "max_credits": cap,
        "records_per_part": 200,
    }
    run_dag_then_kill(sb, batch_dag(dag_runner, "batch_kill", **kwargs), page_calls=30)
    killed = sb.calls("videos")
    assert len(killed) < sum(TAGS.values()) / 50, "the kill must land mid-run"
    result = dag_runner.run(batch_dag(dag_runner, "batch_kill_retry", **kwargs))
    assert result.ti_state("batch") == "success"
    for tag in TAGS:
        assert_exact(sb, out, tag)
    calls = sb.calls("videos")
    # Pages paid twice: the same (hashtag, offset) answered 200 in both tries; at most one per chain.
    paid = Counter((c["hashtag_id"], c["offset"]) for c in calls if c["status"] == 200)
    again = sum(n - 1 for n in paid.values())
    assert again <= 3
    charged = sb.credits_charged()
    assert charged <= cap
    totals = batch_manifest(out)["totals"]
    assert totals["credits_charged"] + totals["possibly_billed_credits"] >= charged  # nothing unaccounted
    print(f"kill: {len(killed)} pages before the kill, {again} paid twice, {charged} credits of cap {cap}")


def test_shared_min_balance_holds_across_chains(unifapi_conn, dag_runner, tmp_path):
    """Four chains share one floor: the workspace balance never drops below ``min_balance``,
    with each chain's call in flight reserved at its worst case."""
    sb = unifapi_conn
    sb.reset(hashtags=CATALOGUE, latency_ms=20)
    start, floor = 3_000, 1_700
    sb.set_balance(start)
    out = tmp_path / "floor"
    path = batch_dag(
        dag_runner,
        "batch_floor",
        hashtags=list(TAGS),
        output_path=f"file://{out}",
        max_concurrency=4,
        min_balance=floor,
    )
    result = dag_runner.run(path)
    assert result.ti_state("batch") == "success"
    calls = sb.ledger()["calls"]
    assert min(c["balance_after"] for c in calls if c.get("balance_after") is not None) >= floor
    assert sb.balance() >= floor
    charged = sb.credits_charged()
    assert start - floor - 4 * 50 <= charged <= start - floor  # the room was used, not left idle
    totals = batch_manifest(out)["totals"]
    assert totals["credits_spent"] == charged
    assert totals["stop_reasons"].get("min_balance", 0) >= 1
    for tag in TAGS:  # what was paid for is on disk, exactly once
        _manifest, records = read_output(out / f"hashtag={tag}")
        ids = [r["id"] for r in records]
        assert len(ids) == len(set(ids)) and set(ids) <= set(sb.truth(tag))


def test_name_searches_under_min_balance_learn_the_balance_first_and_count_it(
    unifapi_conn, dag_runner, tmp_path
):
    """With no balance known, the batch probes it (1 credit) before a name search could cross the
    floor; the probe and the searches are in the manifest's credits, and the floor holds."""
    from tests.test_balance_sensor import forget_remembered

    sb = unifapi_conn
    sb.reset(hashtags=CATALOGUE)
    forget_remembered()
    start, floor = 2_000, 1_500
    sb.set_balance(start)
    out = tmp_path / "names"
    path = batch_dag(
        dag_runner,
        "batch_names_floor",
        hashtags=["batch7101", "#batch7103"],
        output_path=f"file://{out}",
        max_concurrency=2,
        min_balance=floor,
    )
    result = dag_runner.run(path)
    assert result.ti_state("batch") == "success"
    calls = sb.ledger()["calls"]
    first = calls[0]
    assert first["endpoint"] != "videos" and first["limit"] == 1 and first["credits_charged"] == 1
    assert min(c["balance_after"] for c in calls if c.get("balance_after") is not None) >= floor
    totals = batch_manifest(out)["totals"]
    assert totals["credits_spent"] == sb.credits_charged() == start - sb.balance()
    assert totals["resolution_credits"] == sum(
        c["credits_charged"] for c in calls if c["endpoint"] != "videos"
    )
    assert totals["stop_reasons"].get("min_balance", 0) >= 1
