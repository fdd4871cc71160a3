"""TikTokHashtagVideosOperator through real Airflow task runs (``dag.test()``) against the sb."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

import pytest

from airflow_provider_unifapi.exceptions import UnifAPIInputError
from airflow_provider_unifapi.operators._arguments import check_arguments
from airflow_provider_unifapi.operators.hashtag_videos import TikTokHashtagVideosOperator
from airflow_provider_unifapi.storage.parts import iter_part_records
from tests.conftest import API_KEY, assert_no_key, read_variable

TAG = "4242"
VIDEOS = 430


@pytest.fixture
def sb(unifapi_conn):
    """The sandbox, with ``unifapi_default`` pointing at it and the test hashtag registered."""
    unifapi_conn.add_hashtag(TAG, "operatortest", VIDEOS)
    return unifapi_conn


def read_output(folder: Path) -> tuple[dict, list[dict]]:
    manifest = json.loads((folder / "_manifest.json").read_text())
    records = []
    from upath import UPath

    for part in manifest["parts"]:
        records += list(iter_part_records(UPath(str(folder / part["name"])), manifest["output_format"]))
    return manifest, records


def read_checkpoint(folder: Path) -> dict:
    """The last committed checkpoint of an unfinished run (the file is a journal of commits)."""
    from upath import UPath

    from airflow_provider_unifapi.storage.checkpoint import CheckpointStore
    from airflow_provider_unifapi.storage.fsio import FolderIO

    checkpoint = CheckpointStore(FolderIO(UPath(f"file://{folder}"))).load()
    assert checkpoint is not None, f"no checkpoint in {folder}"
    return checkpoint.model_dump()


def video_calls(sb):
    return [c for c in sb.calls("videos")]


def assert_no_page_paid_twice(sb, allow_refetch_offsets=()):
    """No successful page (by start offset) was fetched twice, except the ones named."""
    offsets = Counter((c["offset"] or 0) for c in video_calls(sb) if c["status"] == 200)
    twice = {o for o, n in offsets.items() if n > 1}
    assert twice <= set(allow_refetch_offsets), f"pages paid twice: {sorted(twice)}"


def op_dag(dag_runner, dag_id: str, retries: int = 0, **kwargs) -> Path:
    args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    return dag_runner.write(
        dag_id,
        f"""
        TikTokHashtagVideosOperator(task_id="collect", retries={retries}, retry_delay=0, {args})
        """,
    )


def test_full_run_writes_parts_manifest_and_summary(sb, dag_runner, tmp_path, capfd):
    out = tmp_path / "out"
    path = op_dag(
        dag_runner, "op_full", hashtag_id=TAG, output_path=f"file://{out}/{{{{ ds }}}}/", records_per_part=100
    )
    result = dag_runner.run(path, capsys=capfd)
    assert result.state == "success"
    folder = out / "2024-01-01"  # templated with {{ ds }}
    manifest, records = read_output(folder)
    ids = [r["id"] for r in records]
    assert ids == sb.truth(TAG)  # every id of the hashtag exactly once, in order
    # nothing else left behind: parts and the manifest only
    assert sorted(p.name for p in folder.iterdir()) == sorted([*manifest["files"], "_manifest.json"])
    # a part closes once it holds records_per_part (100) records: at most one page (50) more
    assert all(100 <= p["records"] < 150 for p in manifest["parts"][:-1])
    assert sum(p["records"] for p in manifest["parts"]) == VIDEOS
    summary = result.xcoms["collect"]
    for key in (
        "output_path",
        "files",
        "records",
        "pages",
        "credits_charged",
        "balance_remaining",
        "duplicates_dropped",
        "stop_reason",
        "next_cursor",
        "resumed",
    ):
        assert key in summary
    assert summary["stop_reason"] == "exhausted" and summary["resumed"] is False
    assert summary["records"] == VIDEOS and summary["next_cursor"] is None
    # money is data: the summary's credits are exactly what the sandbox charged
    assert summary["credits_charged"] == sb.credits_charged()
    assert summary["duplicates_dropped"] == sum(c["records"] for c in video_calls(sb)) - VIDEOS
    assert summary["balance_remaining"] == sb.balance()
    assert {k: v for k, v in manifest.items() if k in summary} == summary
    # per-page lines and a final summary line in the task log
    assert result.log_text.count("page ") >= summary["pages"]
    assert "Done with hashtag" in result.log_text
    assert_no_key(result.log_text, summary, manifest)


@pytest.mark.parametrize(
    ("kwargs", "reason", "records"),
    [
        ({"max_records": 123}, "max_records", 123),
        ({"max_pages": 3, "page_size": 20}, "max_pages", None),
        ({"max_credits": 77}, "max_credits", None),
    ],
)
def test_budget_stop_reasons_are_exact(sb, dag_runner, tmp_path, kwargs, reason, records):
    out = tmp_path / "out"
    path = op_dag(dag_runner, f"op_{reason}", hashtag_id=TAG, output_path=f"file://{out}", **kwargs)
    result = dag_runner.run(path)
    assert result.state == "success"
    summary = result.xcoms["collect"]
    assert summary["stop_reason"] == reason
    _manifest, written = read_output(out)
    assert len(written) == summary["records"] == len({r["id"] for r in written})
    if records is not None:
        assert summary["records"] == records
    if reason == "max_pages":
        assert summary["pages"] == 3 == len(video_calls(sb))
    if reason == "max_credits":
        assert sb.credits_charged() == summary["credits_charged"] == 77  # shrinks the last page to fit
        assert all(int(c["max_credits"]) <= 77 for c in video_calls(sb))
    assert summary["next_cursor"]  # a budget stop can be continued from here
    assert [r["id"] for r in written] == sb.truth(TAG)[: len(written)]


def test_min_balance_is_never_crossed(sb, dag_runner, tmp_path):
    sb.set_balance(1000)
    path = op_dag(
        dag_runner, "op_min_balance", hashtag_id=TAG, output_path=f"file://{tmp_path}/o", min_balance=900
    )
    result = dag_runner.run(path)
    assert result.state == "success"
    summary = result.xcoms["collect"]
    assert summary["stop_reason"] == "min_balance"
    assert sb.balance() == 900 == summary["balance_remaining"]
    assert summary["credits_charged"] == 100


def test_xcom_mode_returns_records_and_its_cap_is_checked_before_paying(sb, dag_runner):
    path = op_dag(dag_runner, "op_xcom", hashtag_id=TAG, max_records=120, page_size=50)
    result = dag_runner.run(path)
    assert result.state == "success"
    records = result.xcoms["collect"]
    assert isinstance(records, list) and len(records) == 120
    assert [r["id"] for r in records] == sb.truth(TAG)[:120]
    assert_no_key(records)
    for bad in ({}, {"max_records": 5000}):
        operator = TikTokHashtagVideosOperator(task_id="x", hashtag_id=TAG, **bad)  # only stores
        with pytest.raises(UnifAPIInputError) as caught:
            check_arguments(operator)
        assert "output_path" in str(caught.value) and "max_records" in str(caught.value)


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_other_formats_are_readable(sb, dag_runner, tmp_path, fmt):
    out = tmp_path / fmt
    path = op_dag(
        dag_runner,
        f"op_fmt_{fmt.replace('.', '_')}",
        hashtag_id=TAG,
        output_path=f"file://{out}",
        output_format=fmt,
        records_per_part=200,
    )
    result = dag_runner.run(path)
    assert result.state == "success"
    manifest = json.loads((out / "_manifest.json").read_text())
    ids = []
    for name in manifest["files"]:
        assert name.endswith("." + fmt)
        if fmt == "parquet":
            import pyarrow.parquet as pq

            table = pq.read_table(out / name)
            assert {"id", "author", "music", "view_count"} <= set(table.column_names)
            ids += [str(i) for i in table.column("id").to_pylist()]
        else:
            ids += [json.loads(line)["id"] for line in (out / name).read_text().splitlines()]
    assert ids == sb.truth(TAG)


def test_gzip_parts_are_standard_gzip(sb, dag_runner, tmp_path):
    path = op_dag(dag_runner, "op_gz", hashtag_id=TAG, output_path=f"file://{tmp_path}/gz", max_records=60)
    assert dag_runner.run(path).state == "success"
    lines = gzip.decompress((tmp_path / "gz" / "part-00000.jsonl.gz").read_bytes()).decode().splitlines()
    assert len(lines) == 60
    record = json.loads(lines[0])
    assert set(record) >= {"id", "author", "music", "region", "play_url"}


def test_resume_after_an_exception_mid_run(sb, dag_runner, tmp_path, monkeypatch):
    # page 4 fails for good within one try (client retries exhausted), then works again
    sb.faults({"kind": "error", "status": 503, "type": "upstream_unavailable", "at": list(range(4, 11))})
    path = op_dag(
        dag_runner,
        "op_resume_exc",
        retries=1,
        hashtag_id=TAG,
        output_path=f"file://{tmp_path}/r",
        records_per_part=100,
    )
    result = dag_runner.run(path)
    assert result.state == "success"
    summary = result.xcoms["collect"]
    assert summary["resumed"] is True and summary["tries"] == 2
    _manifest, records = read_output(tmp_path / "r")
    assert [r["id"] for r in records] == sb.truth(TAG)
    assert_no_page_paid_twice(sb)
    assert summary["credits_charged"] == sb.credits_charged()


def test_truncation_then_top_up_then_retry_completes(sb, dag_runner, tmp_path, capfd):
    sb.set_balance(130)  # page 3 (of 50) is truncated to 30 records
    out = tmp_path / "t"
    path = op_dag(dag_runner, "op_trunc", hashtag_id=TAG, output_path=f"file://{out}")
    first = dag_runner.run(path, capsys=capfd)
    assert first.state == "failed"
    assert "balance" in first.log_text and "Top up" in first.log_text
    # the truth about the retry: the cut-short page is asked again and billed again (its records
    # come back as duplicates), nothing before it is
    assert "asks the cut-short page again from its cursor and pays for it again" in first.log_text
    assert "up to 50 credits" in first.log_text and "no page before it is paid again" in first.log_text
    assert "without paying again" not in first.log_text
    checkpoint = read_checkpoint(out)
    assert checkpoint["records"] >= 100 and checkpoint["balance_remaining"] == 0
    assert not (out / "_manifest.json").exists()  # incomplete folders carry no manifest
    truncated = [c for c in video_calls(sb) if c["status"] == 200][-1]
    sb.add_balance(100_000)
    second = dag_runner.run(path, capsys=capfd)
    assert second.state == "success"
    summary = second.xcoms["collect"]
    assert summary["resumed"] and summary["stop_reason"] == "exhausted"
    manifest, records = read_output(out)
    assert [r["id"] for r in records] == sb.truth(TAG)
    # only the truncated page was asked again (from the same cursor); nothing before it
    assert_no_page_paid_twice(sb, allow_refetch_offsets={truncated["offset"] or 0})
    assert summary["credits_charged"] == sb.credits_charged()
    # the re-asked page was paid in full again (at most one page), as the message said
    again = [c for c in video_calls(sb) if c["status"] == 200 and c["offset"] == truncated["offset"]]
    assert len(again) == 2 and 0 < again[1]["credits_charged"] <= 50
    assert_no_key(first.log_text, second.log_text, checkpoint, manifest)


def test_balance_truncated_can_succeed_when_asked(sb, dag_runner, tmp_path):
    sb.set_balance(0)
    path = op_dag(
        dag_runner,
        "op_trunc_ok",
        hashtag_id=TAG,
        output_path=f"file://{tmp_path}/t",
        fail_on_low_balance=False,
    )
    result = dag_runner.run(path)
    assert result.state == "success"
    assert result.xcoms["collect"]["stop_reason"] == "balance_truncated"
    assert result.xcoms["collect"]["credits_charged"] == 0 == sb.credits_charged()


def test_budget_holds_under_retries_and_faults(sb, dag_runner, tmp_path):
    sb.faults(
        {"kind": "reset", "at": [2]},  # possibly billed: counted at its worst case
        {"kind": "truncated", "at": [4]},  # billed and unreadable: fails the try
        {"kind": "malformed", "at": [6]},
        {"kind": "error", "status": 500, "type": "internal_error", "at": [7]},
    )
    path = op_dag(
        dag_runner,
        "op_budget_faults",
        retries=3,
        hashtag_id=TAG,
        output_path=f"file://{tmp_path}/b",
        max_credits=260,
    )
    result = dag_runner.run(path)
    assert result.state == "success"
    summary = result.xcoms["collect"]
    assert summary["stop_reason"] == "max_credits"
    charged = sb.credits_charged()
    assert charged <= 260
    assert summary["credits_charged"] + summary["possibly_billed_credits"] <= 260
    # the ledger sits between what was confirmed and the worst case
    assert (
        summary["credits_charged"]
        <= charged
        <= summary["credits_charged"] + summary["possibly_billed_credits"]
    )
    _manifest, records = read_output(tmp_path / "b")
    assert [r["id"] for r in records] == sb.truth(TAG)[: len(records)]


def test_hashtag_name_is_resolved_and_its_cost_counted(sb, dag_runner, tmp_path):
    path = op_dag(
        dag_runner,
        "op_by_name",
        hashtag_name="operatortest",
        output_path=f"file://{tmp_path}/n",
        max_records=50,
    )
    result = dag_runner.run(path)
    assert result.state == "success"
    summary = result.xcoms["collect"]
    search_credits = sum(c["credits_charged"] for c in sb.calls("search"))
    assert search_credits >= 1 and summary["resolution_credits"] == search_credits
    assert summary["credits_charged"] == sb.credits_charged() == search_credits + 50
    assert summary["hashtag_id"] == TAG


def test_complete_folder_is_reused_for_free_and_overwrite_refetches(sb, dag_runner, tmp_path):
    out = f"file://{tmp_path}/reuse"
    path = op_dag(dag_runner, "op_reuse", hashtag_id=TAG, output_path=out, max_records=100)
    first = dag_runner.run(path)
    calls = len(sb.calls())
    # what a try killed between the manifest and its clean-up leaves: the reuse removes it
    folder = tmp_path / "reuse"
    (folder / "_checkpoint.json").write_text(json.dumps({"left": "by a killed try"}))
    (folder / "_staging").mkdir(exist_ok=True)
    (folder / "_staging" / "page-000003.jsonl").write_text("{}\n")
    second = dag_runner.run(path)
    assert second.state == "success" and len(sb.calls()) == calls  # no call, no credit
    assert second.xcoms["collect"]["records"] == first.xcoms["collect"]["records"] == 100
    assert not (folder / "_checkpoint.json").exists() and not (folder / "_staging").exists()
    path = op_dag(
        dag_runner, "op_overwrite", hashtag_id=TAG, output_path=out, max_records=100, overwrite=True
    )
    assert dag_runner.run(path).state == "success"
    assert len(sb.calls()) > calls


def test_operator_remembers_the_balance_for_the_sensor(sb, dag_runner, tmp_path):
    from datetime import datetime

    path = op_dag(
        dag_runner, "op_balance_var", hashtag_id=TAG, output_path=f"file://{tmp_path}/v", max_records=10
    )
    assert dag_runner.run(path).state == "success"
    from airflow_provider_unifapi.hooks.balance_reading import variable_name

    # keyed by a digest of the key, never by the key itself
    assert API_KEY not in variable_name(API_KEY) and API_KEY[8:] not in variable_name(API_KEY)
    stored = json.loads(read_variable(variable_name(API_KEY)))
    assert stored["balance"] == sb.balance()
    assert stored["request_id"] == sb.calls()[-1]["request_id"]
    assert datetime.fromisoformat(stored["seen_at"]).tzinfo is not None


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"hashtag_id": "12/3"}, "hashtag_id"),
        ({"hashtag_id": "1", "hashtag_name": "cats"}, "hashtag_name"),
        ({}, "hashtag_id"),
        ({"hashtag_id": "1", "page_size": 51}, "page_size"),
        ({"hashtag_id": "1", "max_credits": 0}, "max_credits"),
        ({"hashtag_id": "1", "min_balance": -5}, "min_balance"),
        ({"hashtag_id": "1", "output_format": "csv"}, "output_format"),
        ({"hashtag_id": "1", "records_per_part": 0}, "records_per_part"),
        ({"hashtag_id": "1", "max_empty_pages": "x"}, "max_empty_pages"),
        ({"hashtag_id": "1", "gzip_level": 10}, "gzip_level"),
    ],
)
def test_invalid_arguments_are_stored_then_refused_naming_the_argument(kwargs, argument):
    # Constructors only assign (a value may still be a template or an XComArg at parse time); the
    # check runs at the start of execute, which turns it into AirflowFailException (tested below).
    operator = TikTokHashtagVideosOperator(task_id="bad", output_path="file:///tmp/x", **kwargs)
    for name, value in kwargs.items():
        assert getattr(operator, name) == value
    with pytest.raises(UnifAPIInputError) as caught:
        check_arguments(operator)
    assert argument in str(caught.value)


def test_templated_invalid_value_fails_the_task_without_retry(sb, dag_runner, tmp_path, capfd):
    path = dag_runner.write(
        "op_bad_template",
        f"""
        TikTokHashtagVideosOperator(task_id="collect", retries=3, retry_delay=0, hashtag_id="{{{{ 'not-a-number' }}}}",
                                    output_path="file://{tmp_path}/x")
        """,
    )
    result = dag_runner.run(path, capsys=capfd)
    assert result.state == "failed"
    assert result.tis["collect"].try_number == 1  # AirflowFailException: no retry of a bad argument
    assert "hashtag_id" in result.log_text
    assert sb.calls() == []


def test_fatal_api_errors_do_not_retry(sb, dag_runner, tmp_path, capfd):
    sb.reset(not_found_ids=["999"])
    path = op_dag(dag_runner, "op_404", retries=3, hashtag_id="999", output_path=f"file://{tmp_path}/nf")
    result = dag_runner.run(path, capsys=capfd)
    assert result.state == "failed" and result.tis["collect"].try_number == 1
    assert "not_found" in result.log_text and "request_id=unif_" in result.log_text
    assert len(sb.calls()) == 1


def test_key_absent_from_logs_checkpoint_manifest_and_xcom(sb, dag_runner, tmp_path, capfd):
    sb.faults({"kind": "error", "status": 401, "type": "unauthorized", "at": [3]})
    out = tmp_path / "k"
    path = op_dag(dag_runner, "op_key", hashtag_id=TAG, output_path=f"file://{out}")
    failed = dag_runner.run(path, capsys=capfd)
    assert failed.state == "failed"
    checkpoint = (out / "_checkpoint.json").read_text()
    sb.clear_faults()
    ok = dag_runner.run(path, capsys=capfd)
    assert ok.state == "success"
    everything = [failed.log_text, ok.log_text, checkpoint, ok.xcoms, (out / "_manifest.json").read_text()]
    everything += [p.read_bytes() for p in out.rglob("*") if p.is_file()]
    assert_no_key(*everything)
    assert API_KEY not in json.dumps(sb.ledger())


def test_bytes_a_dead_try_appended_after_its_last_commit_are_cut_on_resume(sb, dag_runner, tmp_path):
    sb.faults({"kind": "error", "status": 401, "type": "unauthorized", "at": [4]})
    out = tmp_path / "torn"
    path = op_dag(dag_runner, "op_torn", hashtag_id=TAG, output_path=f"file://{out}")
    assert dag_runner.run(path).state == "failed"
    checkpoint = read_checkpoint(out)
    open_part = checkpoint["open_part"]
    assert open_part and open_part["records"] > 0
    with open(out / open_part["name"], "ab") as handle:  # what a try killed mid-append leaves behind
        handle.write(b"\x1f\x8b\x08\x00garbage-from-a-dead-try")
    with open(out / "_checkpoint.json", "ab") as handle:
        handle.write(b'{"torn": ')
    sb.clear_faults()
    result = dag_runner.run(path)
    assert result.state == "success" and result.xcoms["collect"]["resumed"]
    _manifest, records = read_output(out)
    assert [r["id"] for r in records] == sb.truth(TAG)
    assert_no_page_paid_twice(sb)
