"""The operator survives SIGKILL of the process running its task, and writes to S3 (moto) as to files."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from tests.conftest import assert_no_key, run_dag_then_kill
from tests.test_operator import op_dag, read_checkpoint, read_output

TAG = "5151"
VIDEOS = 2000


def test_resume_after_sigkill_of_the_task_process(unifapi_conn, dag_runner, tmp_path, capfd):
    sb = unifapi_conn
    sb.reset(latency_ms=25, hashtags=[{"id": TAG, "name": "killtest", "video_count": VIDEOS}])
    out = tmp_path / "kill"
    path = op_dag(
        dag_runner, "op_sigkill", retries=0, hashtag_id=TAG, output_path=f"file://{out}", records_per_part=100
    )
    run_dag_then_kill(sb, path, page_calls=15)
    killed_at = len(sb.calls("videos"))
    assert killed_at < VIDEOS / 50, "the kill must land mid-run"
    assert not (out / "_manifest.json").exists()
    checkpoint = read_checkpoint(out)
    assert checkpoint["pages"] >= 1

    sb.reset(
        latency_ms=0, hashtags=[{"id": TAG, "name": "killtest", "video_count": VIDEOS}], balance=sb.balance()
    )
    before = {(c["offset"] or 0) for c in sb.calls("videos")}  # ledger restarted by reset: empty
    assert before == set()
    result = dag_runner.run(path, capsys=capfd)
    assert result.state == "success"
    summary = result.xcoms["collect"]
    assert summary["resumed"] is True
    manifest, records = read_output(out)
    assert [r["id"] for r in records] == sb.truth(TAG)  # every id exactly once
    # the resumed try started at the checkpoint: it never asked for a page before the committed ones
    offsets = [(c["offset"] or 0) for c in sb.calls("videos") if c["status"] == 200]
    assert min(offsets) > 0
    assert max(Counter(offsets).values()) == 1
    # what the killed try was doing is counted at its worst case, never forgotten
    assert summary["possibly_billed_credits"] >= 0
    assert summary["credits_charged"] + summary["possibly_billed_credits"] >= summary["records"]
    assert_no_key(result.log_text, manifest)


@pytest.fixture
def moto_s3(monkeypatch):
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_UNIFAPI_TEST",
        json.dumps(
            {
                "conn_type": "aws",
                "login": "testing",
                "password": "testing",
                "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"},
            }
        ),
    )
    import boto3

    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket="lake")
    try:
        yield s3
    finally:
        server.stop()


def test_writes_to_s3_like_to_files(unifapi_conn, dag_runner, moto_s3):
    sb = unifapi_conn
    sb.add_hashtag(TAG, "s3test", 300)
    sb.faults({"kind": "error", "status": 503, "type": "upstream_unavailable", "at": list(range(3, 10))})
    path = op_dag(
        dag_runner,
        "op_s3",
        retries=1,
        hashtag_id=TAG,
        output_path="s3://lake/tiktok/{{ ds }}/",
        output_conn_id="aws_unifapi_test",
        records_per_part=100,
    )
    result = dag_runner.run(path)
    assert result.state == "success"
    summary = result.xcoms["collect"]
    assert summary["resumed"] is True  # the first try failed mid-run and the retry resumed on S3
    listing = moto_s3.list_objects_v2(Bucket="lake", Prefix="tiktok/2024-01-01/")
    keys = sorted(obj["Key"].rsplit("/", 1)[-1] for obj in listing.get("Contents", []))
    assert keys == sorted([*summary["files"], "_manifest.json"])  # nothing else left behind
    import gzip

    ids = []
    for name in summary["files"]:
        body = moto_s3.get_object(Bucket="lake", Key=f"tiktok/2024-01-01/{name}")["Body"].read()
        ids += [json.loads(line)["id"] for line in gzip.decompress(body).splitlines()]
    assert ids == sb.truth(TAG)
