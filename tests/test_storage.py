"""Storage pieces that real runs exercise only partly: the id set, the checkpoint journal, recovery."""

from __future__ import annotations

import gzip
import random

import pytest
from upath import UPath

from airflow_provider_unifapi.storage import parts
from airflow_provider_unifapi.storage.checkpoint import Checkpoint, CheckpointStore, PartInfo
from airflow_provider_unifapi.storage.fsio import FolderIO, local_folder
from airflow_provider_unifapi.storage.idset import IdSet


def test_idset_is_exact_across_flushes_and_odd_ids():
    rng = random.Random(7)
    ids = [str(rng.randrange(10**18, 2**64)) for _ in range(120_000)]
    odd = ["0", "007", "abc", "1" * 25, "١٢٣", str(2**64)]
    idset = IdSet()
    seen = set()
    for value in ids + odd + ids[:5000] + odd:
        assert idset.add(value) is (value not in seen)
        seen.add(value)
    assert len(idset) == len(seen)
    assert all(v in idset for v in rng.sample(ids, 1000))
    assert "12345" not in idset and 12345 not in idset


def test_checkpoint_journal_survives_a_torn_last_line(tmp_path):
    io = FolderIO(UPath(f"file://{tmp_path}"))
    store = CheckpointStore(io)
    assert store.journal  # local disk: append-only journal
    for pages in range(1, 4):
        store.save(Checkpoint(hashtag_id="1", output_format="jsonl", pages=pages))
    store.close()
    with open(tmp_path / "_checkpoint.json", "ab") as handle:
        handle.write(
            b'{"version": 1, "hashtag_id": "1", "output_format": "jsonl", "pages": 99'
        )  # killed mid-append
    assert CheckpointStore(io).load().pages == 3
    store = CheckpointStore(io)
    store.compact(Checkpoint(hashtag_id="1", output_format="jsonl", pages=4))
    assert (tmp_path / "_checkpoint.json").read_bytes().count(b"\n") == 1  # history dropped
    assert CheckpointStore(io).load().pages == 4


def test_journal_lines_leave_committed_parts_out_and_load_restores_them(tmp_path):
    io = FolderIO(UPath(f"file://{tmp_path}"))
    parts = [PartInfo(name=f"part-{i:05d}.jsonl.gz", records=10, pages=1, bytes=99) for i in range(3)]
    store = CheckpointStore(io)
    store.compact(Checkpoint(hashtag_id="1", output_format="jsonl.gz", pages=3, parts=parts))
    for pages in (4, 5):
        store.save(Checkpoint(hashtag_id="1", output_format="jsonl.gz", pages=pages, parts=parts))
    store.close()
    lines = (tmp_path / "_checkpoint.json").read_bytes().splitlines()
    assert [b'"parts":' in line for line in lines] == [True, False, False]
    loaded = CheckpointStore(io).load()
    assert loaded.pages == 5 and loaded.parts == parts
    # A fresh run's journal has no compacted first line yet: no parts, and none are invented.
    (tmp_path / "_checkpoint.json").unlink()
    store = CheckpointStore(io)
    store.save(Checkpoint(hashtag_id="1", output_format="jsonl.gz", pages=1))
    store.close()
    assert CheckpointStore(io).load().parts == []


@pytest.mark.parametrize("level", [0, 1, 5, 9])
def test_gzip_members_of_isal_and_zlib_hold_the_same_bytes(level):
    data = b"".join(b'{"id": "%d", "title": "video %d"}\n' % (i, i * 7) for i in range(2000))
    assert parts.isal_available()  # the test environments install the `fast` extra
    for use_isal in (True, False):
        member = parts.compressor(level, use_isal=use_isal)
        packed = member.compress(data) + member.flush()
        assert gzip.decompress(packed + packed) == data + data  # members concatenate into valid gzip
    assert gzip.decompress(parts.gzip_member(data, level)) == data


def test_local_folder_skips_object_storage_only_for_file_urls(tmp_path):
    local = local_folder(f"file://{tmp_path}/out")
    assert local is not None and FolderIO(local).local and FolderIO(local).root == f"{tmp_path}/out"
    assert local_folder("s3://bucket/key/") is None and local_folder(None) is None


def _collect(sandbox, folder_url: str, **budget):
    from airflow_provider_unifapi.collector import Budget, HashtagVideoCollector, ObjectStorageOutput
    from airflow_provider_unifapi.storage.run_folder import RunFolder
    from tests.conftest import sandbox_client

    client = sandbox_client(sandbox)
    output = ObjectStorageOutput(RunFolder(UPath(folder_url), "jsonl.gz"), records_per_part=100)
    try:
        return HashtagVideoCollector(client, "6161", output=output, budget=Budget(**budget)).run()
    finally:
        client.close()


def test_a_version_1_checkpoint_resumes_with_its_credits_counted(sandbox, tmp_path):
    import json

    from airflow_provider_unifapi.exceptions import UnifAPIError

    sandbox.add_hashtag("6161", "oldcheckpoint", 400)
    sandbox.faults({"kind": "error", "status": 401, "type": "unauthorized", "at": [5]})
    url = f"file://{tmp_path}/run"
    with pytest.raises(UnifAPIError):
        _collect(sandbox, url, max_credits=10_000)
    # Rewrite every commit of the journal as the previous version wrote it: old names, version 1,
    # and a call in flight when the try died.
    path = tmp_path / "run" / "_checkpoint.json"
    renames = {
        "possibly_billed_credits": "credits_unconfirmed",
        "in_flight_credits": "pending_call_credits",
        "possibly_billed_since_balance": "unconfirmed_since_balance",
    }
    old_lines = []
    for line in path.read_bytes().splitlines():
        commit = {renames.get(key, key): value for key, value in json.loads(line).items()}
        assert set(renames.values()) <= set(commit)
        commit.update(version=1, credits_unconfirmed=7, pending_call_credits=50, unconfirmed_since_balance=7)
        old_lines.append(json.dumps(commit).encode())
    path.write_bytes(b"\n".join(old_lines) + b"\n")
    loaded = CheckpointStore(FolderIO(UPath(url))).load()
    assert (loaded.possibly_billed_credits, loaded.in_flight_credits) == (7, 50)
    assert loaded.possibly_billed_since_balance == 7 and loaded.credits_spent == loaded.credits_charged + 7
    pages_before = loaded.pages

    sandbox.clear_faults()
    summary = _collect(sandbox, url, max_credits=10_000)
    assert summary["resumed"] is True and summary["stop_reason"] == "exhausted"
    # the old worst cases are kept, and the call in flight is now counted as possibly billed
    assert summary["possibly_billed_credits"] == 7 + 50
    assert "credits_unconfirmed" not in summary
    offsets = [c["offset"] or 0 for c in sandbox.calls("videos") if c["status"] == 200]
    assert len(offsets) == len(set(offsets)) and summary["pages"] == len(offsets)  # no page paid twice
    assert pages_before == 4
    from airflow_provider_unifapi.storage.run_folder import iter_run_records

    ids = [record["id"] for record in iter_run_records(UPath(url))]
    assert ids == sandbox.truth("6161")
    assert summary["credits_charged"] == sandbox.credits_charged()


def test_an_old_checkpoint_is_written_back_in_the_current_version_with_the_new_names(tmp_path):
    from airflow_provider_unifapi.storage.checkpoint import CHECKPOINT_VERSION

    old = b'{"version": 1, "hashtag_id": "1", "output_format": "jsonl", "credits_unconfirmed": 3}\n'
    (tmp_path / "_checkpoint.json").write_bytes(old)
    io = FolderIO(UPath(f"file://{tmp_path}"))
    loaded = CheckpointStore(io).load()
    assert loaded.version == CHECKPOINT_VERSION == 2 and loaded.possibly_billed_credits == 3
    CheckpointStore(io).compact(loaded)
    written = (tmp_path / "_checkpoint.json").read_text()
    assert '"version":2' in written and '"possibly_billed_credits":3' in written
    assert "credits_unconfirmed" not in written
