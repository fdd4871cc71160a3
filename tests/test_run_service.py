"""One run per hashtag (collector/run.py) through real task runs on the sandbox: a limit stop is a
pause that a raised limit continues paying each page once, a name and its id run once, one writer
per folder (local files and S3), bad output paths and connections fail typed before any call."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections import Counter

import pytest

from airflow_provider_unifapi.exceptions import (
    UnifAPIClaimLostError,
    UnifAPIFolderBusyError,
    UnifAPIInputError,
    UnifAPIOutputMismatchError,
)
from airflow_provider_unifapi.storage.claim import FolderClaim
from airflow_provider_unifapi.storage.fsio import FolderIO
from tests.conftest import API_KEY, conn_uri_json
from tests.test_batch import assert_exact, batch_dag, batch_manifest
from tests.test_operator_kill_and_s3 import moto_s3  # noqa: F401 (fixture)

#: RUN_SERVICE_HASHTAGS=50 runs the stopped-and-raised batch at the size of issue 19's trial
TAGS = {f"72{i:02d}": 150 + (90 * i) % 650 for i in range(int(os.environ.get("RUN_SERVICE_HASHTAGS", "8")))}
CATALOGUE = [{"id": k, "name": f"run{k}", "video_count": v} for k, v in TAGS.items()]


def paid_twice(sb) -> int:
    """Pages answered 200 more than once for the same (hashtag, offset): pages paid again."""
    paid = Counter((c["hashtag_id"], c["offset"]) for c in sb.calls("videos") if c["status"] == 200)
    return sum(n - 1 for n in paid.values())


def test_a_stopped_batch_continues_with_a_raised_cap_paying_each_page_once(
    unifapi_conn, dag_runner, tmp_path
):
    sb = unifapi_conn
    sb.reset(hashtags=CATALOGUE, latency_ms=5)
    out = tmp_path / "stopped"
    # 2 chains: the cap is reached while the 5th and 6th hashtags are paged (stopped), so the 7th and
    # 8th start with no room (skipped) whatever the timing; with 4 chains the last four would share
    # the rest of the cap, each possibly getting a page.
    args = {"hashtags": list(TAGS), "output_path": f"file://{out}", "max_concurrency": 2}
    cap = sum(TAGS.values()) * 2 // 5
    first = dag_runner.run(batch_dag(dag_runner, "run_cap", max_credits=cap, **args))
    assert first.ti_state("batch") == "success"
    totals = batch_manifest(out)["totals"]
    counts = totals["by_status"]
    assert counts["stopped"] >= 1 and counts["skipped"] >= 1 and counts["failed"] == 0
    assert sb.credits_charged() <= cap
    first_credits, first_pages = sb.credits_charged(), len(sb.calls("videos"))
    rows = {r["hashtag"]: r for r in batch_manifest(out)["hashtags"]}
    for tag, row in rows.items():
        manifest = out / f"hashtag={tag}" / "_manifest.json"
        assert manifest.exists() == (row["status"] != "skipped")  # a skipped hashtag has no manifest
        if row["status"] == "stopped":
            assert json.loads(manifest.read_text())["status"] == "stopped"
            assert (out / f"hashtag={tag}" / "_checkpoint.json").exists()  # the cursor is kept

    calls = len(sb.calls())
    same = dag_runner.run(batch_dag(dag_runner, "run_cap_same", max_credits=cap, **args))
    assert same.ti_state("batch") == "success"
    assert len(sb.calls()) == calls  # the same cap: nothing to do, nothing paid
    assert batch_manifest(out)["totals"]["by_status"] == counts

    raised = dag_runner.run(
        batch_dag(dag_runner, "run_cap_raised", max_credits=3 * sum(TAGS.values()), **args)
    )
    assert raised.ti_state("batch") == "success"
    assert batch_manifest(out)["totals"]["by_status"]["done"] == len(TAGS)
    for tag in TAGS:
        assert_exact(sb, out, tag)
    assert paid_twice(sb) == 0
    assert batch_manifest(out)["totals"]["credits_spent"] == sb.credits_charged()
    print(
        f"{len(TAGS)} hashtags, {sum(TAGS.values()):,} videos; cap {cap:,}: {counts}, {first_credits:,} credits in "
        f"{first_pages:,} pages; same cap: 0 calls; raised: {sb.credits_charged():,} credits in "
        f"{len(sb.calls('videos')):,} pages in all, {paid_twice(sb)} paid twice, every hashtag exact"
    )


def test_a_stopped_single_run_names_the_limit_and_continues(unifapi_conn, dag_runner, tmp_path, capfd):
    sb = unifapi_conn
    sb.add_hashtag("7301", "single7301", 400)
    out = tmp_path / "single"

    def run(dag_id: str, limit: str):
        return dag_runner.run(
            dag_runner.write(
                dag_id,
                f'TikTokHashtagVideosOperator(task_id="collect", hashtag_id="7301", '
                f'output_path="file://{out}", retries=0{limit})',
            ),
            capsys=capfd,
        )

    first = run("single_pages", ", max_pages=3")
    assert first.xcoms["collect"]["status"] == "stopped" and first.xcoms["collect"]["pages"] == 3
    calls = len(sb.calls())
    again = run("single_pages_again", ", max_pages=3")
    assert len(sb.calls()) == calls and again.xcoms["collect"]["credits_spent_this_try"] == 0
    assert "raise max_pages and run again" in again.log_text
    done = run("single_pages_done", "")
    assert done.xcoms["collect"]["status"] == "done"
    records = [json.loads(line) for p in sorted(out.glob("part-*")) for line in _lines(p)]
    assert [r["id"] for r in records] == sb.truth("7301")
    assert paid_twice(sb) == 0


def _lines(path):
    import gzip

    return [line for line in gzip.open(path, "rt") if line.strip()]


def test_a_name_and_its_id_in_one_batch_run_once(unifapi_conn, dag_runner, tmp_path):
    sb = unifapi_conn
    sb.reset(hashtags=CATALOGUE)
    out = tmp_path / "alias"
    tag = next(iter(TAGS))
    result = dag_runner.run(
        batch_dag(dag_runner, "run_alias", hashtags=[f"run{tag}", tag], output_path=f"file://{out}")
    )
    assert result.ti_state("batch") == "success"
    rows = batch_manifest(out)["hashtags"]
    assert len(rows) == 1 and rows[0]["same_as"] == [tag] and rows[0]["hashtag_id"] == tag
    assert_exact(sb, out, tag)
    assert batch_manifest(out)["totals"]["records"] == len(sb.truth(tag))
    assert paid_twice(sb) == 0


# -- one writer per folder ----------------------------------------------------------------------------
def _io(path):
    from upath import UPath

    path.mkdir(parents=True, exist_ok=True)
    return FolderIO(UPath(f"file://{path}"))


def test_a_live_claim_refuses_a_second_writer_and_a_dead_ones_is_taken_at_once(tmp_path):
    io = _io(tmp_path / "f")
    first, second = FolderClaim(io, "f", "run A"), FolderClaim(io, "f", "run B")
    first.acquire()
    with pytest.raises(UnifAPIFolderBusyError, match="being written by run A"):
        second.acquire()
    first.release()
    second.acquire()  # free again
    second.release()
    # A claim of a process that is gone (a SIGKILLed try on this machine) is taken over at once.
    code = "from upath import UPath; from airflow_provider_unifapi.storage.fsio import FolderIO; "
    code += f"from airflow_provider_unifapi.storage.claim import FolderClaim; FolderClaim(FolderIO(UPath('file://{tmp_path}/f')), 'f', 'dead').acquire()"
    subprocess.run([sys.executable, "-c", code], check=True)
    assert any(n.startswith("_writer.") for n in io.listdir())
    third = FolderClaim(io, "f", "retry")
    third.acquire()
    assert third.number == 1 and [n for n in io.listdir() if n.startswith("_writer.")] == [
        "_writer.000001.json"
    ]


def test_an_expired_claim_is_taken_over_and_the_zombie_stops_before_writing(tmp_path):
    io = _io(tmp_path / "z")
    zombie = FolderClaim(io, "z", "zombie", ttl=0.3)
    zombie.acquire()
    taker = FolderClaim(io, "z", "retry elsewhere")
    with pytest.raises(UnifAPIFolderBusyError):
        taker.acquire()  # live (this process) and not expired: refused
    threading.Event().wait(0.4)  # the zombie missed its renewals for the whole time to live
    taker.acquire()
    with pytest.raises(UnifAPIClaimLostError, match=r"taken over by retry elsewhere|expired"):
        zombie.check()
    taker.check()


def test_claims_on_s3_use_conditional_writes(moto_s3):  # noqa: F811
    from upath import UPath

    endpoint = moto_s3.meta.endpoint_url
    io = FolderIO(UPath("s3://lake/claims/x", client_kwargs={"endpoint_url": endpoint}))
    first, second = FolderClaim(io, "s3", "A"), FolderClaim(io, "s3", "B")
    first.acquire()
    with pytest.raises(UnifAPIFolderBusyError):
        second.acquire()
    with pytest.raises(FileExistsError):  # the store itself refuses a second create
        io.create("_writer.000000.json", b"{}")
    first.release()
    second.acquire()
    assert [o["Key"] for o in moto_s3.list_objects_v2(Bucket="lake", Prefix="claims/")["Contents"]] == [
        "claims/x/_writer.000000.json"
    ]


def test_a_second_writer_on_a_busy_folder_fails_before_paying(unifapi_conn, dag_runner, tmp_path, capfd):
    sb = unifapi_conn
    sb.add_hashtag("7302", "busy7302", 120)
    folder = tmp_path / "busy"
    holder = FolderClaim(_io(folder), str(folder), "dag/run/collect try 1")
    holder.acquire()
    path = dag_runner.write(
        "busy",
        f'TikTokHashtagVideosOperator(task_id="collect", hashtag_id="7302", output_path="file://{folder}", retries=0)',
    )
    refused = dag_runner.run(path, capsys=capfd)
    assert refused.ti_state("collect") == "failed" and sb.calls() == []
    assert "is being written by dag/run/collect try 1" in refused.log_text
    holder.release()
    assert dag_runner.run(path).ti_state("collect") == "success"


def test_two_runs_at_once_on_one_folder_keep_it_exact(unifapi_conn, tmp_path):
    from airflow_provider_unifapi.collector import ObjectStorageOutput
    from airflow_provider_unifapi.collector.results import HashtagTarget
    from airflow_provider_unifapi.collector.run import HashtagRun
    from airflow_provider_unifapi.storage.run_folder import RunFolder
    from tests.conftest import sandbox_client

    sb = unifapi_conn
    sb.reset(hashtags=CATALOGUE, latency_ms=10)
    tag = "7203"
    results, errors = [], []

    def writer(name: str) -> None:
        from upath import UPath

        output = ObjectStorageOutput(RunFolder(UPath(f"file://{tmp_path}/two"), "jsonl"), url=name)
        with sandbox_client(sb) as client:
            try:
                results.append(HashtagRun(client, HashtagTarget(tag, tag), output, owner=name).run())
            except UnifAPIFolderBusyError as exc:
                errors.append(exc)

    threads = [threading.Thread(target=writer, args=(f"w{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    # Either one was refused while the other wrote, or the second came after and reused the folder.
    assert len(results) + len(errors) == 2 and results and results[0].status.value == "done"
    ids = [json.loads(line)["id"] for p in sorted((tmp_path / "two").glob("part-*")) for line in p.open()]
    assert ids == sb.truth(tag) and paid_twice(sb) == 0


# -- errors users make ----------------------------------------------------------------------------------
def test_an_unwritable_output_path_fails_at_once_naming_it(unifapi_conn, dag_runner, tmp_path, capfd):
    sb = unifapi_conn
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    path = dag_runner.write(
        "unwritable",
        f'TikTokHashtagVideosOperator(task_id="collect", hashtag_id="7303", output_path="file://{blocker}/x/", retries=3)',
    )
    result = dag_runner.run(path, capsys=capfd)
    assert result.ti_state("collect") == "failed"  # not up_for_retry: a retry cannot help
    assert sb.calls() == []
    assert "Invalid output_path" in result.log_text and "cannot be created or written" in result.log_text


def test_a_missing_connection_and_a_refused_key_name_the_connection(
    unifapi_conn, dag_runner, monkeypatch, capfd
):
    sb = unifapi_conn
    sb.add_hashtag("7304", "conn7304", 60)
    path = dag_runner.write(
        "no_conn",
        'TikTokHashtagVideosOperator(task_id="collect", hashtag_id="7304", unifapi_conn_id="nope", max_records=10)',
    )
    result = dag_runner.run(path, capsys=capfd)
    assert result.ti_state("collect") == "failed"
    assert "Connection 'nope' does not exist" in result.log_text and "AIRFLOW_CONN_NOPE" in result.log_text
    sb.reset(api_keys=[API_KEY])
    wrong = "sk_wrong_" + "0" * 32
    monkeypatch.setenv("AIRFLOW_CONN_BAD_KEY", conn_uri_json(sb.url, key=wrong))
    path = dag_runner.write(
        "bad_key",
        'TikTokHashtagVideosOperator(task_id="collect", hashtag_id="7304", unifapi_conn_id="bad_key", max_records=10)',
    )
    result = dag_runner.run(path, capsys=capfd)
    assert result.ti_state("collect") == "failed"
    assert "API key of connection 'bad_key'" in result.log_text and "API key field" in result.log_text
    assert [c["status"] for c in sb.calls()] == [401] and wrong[8:] not in result.log_text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("['cats', '7201', 7202]", ["cats", "7201", "7202"]),
        ('["cats", "#Dogs"]', ["cats", "Dogs"]),
        ("cats, 7201", ["cats", "7201"]),
    ],
)
def test_hashtags_rendered_as_text_are_read(text, expected):
    from airflow_provider_unifapi.operators._arguments import parse_hashtags

    assert [t.key for t in parse_hashtags(text)] == expected


def test_hashtags_text_that_is_no_list_names_the_argument():
    from airflow_provider_unifapi.operators._arguments import parse_hashtags

    with pytest.raises(UnifAPIInputError, match="hashtags"):
        parse_hashtags("['cats', ")


def test_a_manifest_is_never_written_over_parts_that_disagree(tmp_path):
    from upath import UPath

    from airflow_provider_unifapi.storage.checkpoint import Checkpoint, PartInfo
    from airflow_provider_unifapi.storage.run_folder import RunFolder

    folder = RunFolder(UPath(f"file://{tmp_path}"), "jsonl")
    (tmp_path / "part-00000.jsonl").write_text('{"id": "1"}\n{"id": "2"}\n{"id": "2"}\n')
    cp = Checkpoint(
        hashtag_id="1", output_format="jsonl", records=2, parts=[PartInfo(name="part-00000.jsonl")]
    )
    with pytest.raises(UnifAPIOutputMismatchError, match="hold 3 records but this run committed 2"):
        folder.check_parts(cp)
    assert (tmp_path / "part-00000.jsonl").exists()


def test_an_old_remembered_balance_does_not_stand_in(unifapi_conn, dag_runner, tmp_path):
    from tests.test_balance_sensor import forget_remembered, get_remembered, set_remembered

    sb = unifapi_conn
    sb.reset(hashtags=CATALOGUE)
    sb.set_balance(2_020)
    forget_remembered()
    set_remembered(900_000, age_seconds=3 * 3600)
    assert get_remembered()["balance"] == 900_000
    out = tmp_path / "aged"
    path = batch_dag(
        dag_runner,
        "run_aged",
        hashtags=list(TAGS)[:4],
        output_path=f"file://{out}",
        max_concurrency=4,
        min_balance=2_000,
    )
    assert dag_runner.run(path).ti_state("batch") == "success"
    assert sb.balance() >= 2_000
    assert (
        min(c["balance_after"] for c in sb.ledger()["calls"] if c.get("balance_after") is not None) >= 2_000
    )
    counts = batch_manifest(out)["totals"]["by_status"]
    assert counts["done"] == 0 and counts["stopped"] + counts["skipped"] == 4


def test_an_appended_part_longer_than_committed_is_counted_and_refused(tmp_path):
    from upath import UPath

    from airflow_provider_unifapi.storage.checkpoint import Checkpoint, PartInfo
    from airflow_provider_unifapi.storage.run_folder import RunFolder

    line = b'{"id": "1"}\n'
    (tmp_path / "part-00000.jsonl").write_bytes(line + b'{"id": "9"}\n')  # a second writer's append
    part = PartInfo(name="part-00000.jsonl", records=1, bytes=len(line))
    cp = Checkpoint(hashtag_id="1", output_format="jsonl", records=1, parts=[part])
    with pytest.raises(UnifAPIOutputMismatchError, match="hold 2 records"):
        RunFolder(UPath(f"file://{tmp_path}"), "jsonl").check_parts(cp)
    (tmp_path / "part-00000.jsonl").write_bytes(line)
    RunFolder(UPath(f"file://{tmp_path}"), "jsonl").check_parts(cp)  # exactly as committed


def test_of_two_writers_racing_for_a_free_folder_exactly_one_wins(tmp_path):
    """A reader must never see a claim before its bytes (it would read an empty claim as expired)."""
    for trial in range(300):
        io = _io(tmp_path / f"race{trial}")
        start, won, refused = threading.Barrier(2), [], []

        def racer(name: str, io=io, start=start, won=won, refused=refused) -> None:
            claim = FolderClaim(io, "race", name)
            start.wait()
            try:
                claim.acquire()
                won.append(name)
            except UnifAPIFolderBusyError:
                refused.append(name)

        threads = [threading.Thread(target=racer, args=(n,)) for n in ("a", "b")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert len(won) == 1 and len(refused) == 1, f"trial {trial}: won {won}, refused {refused}"


def test_a_run_stopped_at_min_balance_continues_once_a_newer_reading_shows_the_top_up(
    unifapi_conn, dag_runner, tmp_path
):
    from tests.test_balance_sensor import forget_remembered, set_remembered

    sb = unifapi_conn
    sb.add_hashtag("7305", "floor7305", 600)
    forget_remembered()
    sb.set_balance(1_300)
    out = tmp_path / "floor"
    path = dag_runner.write(
        "floor_single",
        f'TikTokHashtagVideosOperator(task_id="collect", hashtag_id="7305", output_path="file://{out}", '
        "min_balance=1000, retries=0)",
    )
    first = dag_runner.run(path)
    assert first.xcoms["collect"]["status"] == "stopped" and sb.balance() >= 1_000
    sb.add_balance(5_000)
    calls = len(sb.calls())
    assert dag_runner.run(path).xcoms["collect"]["status"] == "stopped"  # its own reading is fresh
    assert len(sb.calls()) == calls
    # what the balance sensor leaves after a live reading: newer than the run's, so it stands in
    set_remembered(sb.balance(), age_seconds=0)
    done = dag_runner.run(path).xcoms["collect"]
    assert done["status"] == "done" and done["records"] == len(sb.truth("7305")) and paid_twice(sb) == 0
    assert (
        min(c["balance_after"] for c in sb.ledger()["calls"] if c.get("balance_after") is not None) >= 1_000
    )
