"""Storage pieces that real runs exercise only partly: the id set, the checkpoint journal, recovery."""

from __future__ import annotations

import gzip
import random

import pytest
from upath import UPath

from airflow_provider_unifapi.storage import compression
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
    assert compression.isal_available()  # the test environments install the `fast` extra
    for use_isal in (True, False):
        member = compression.compressor(level, use_isal=use_isal)
        packed = member.compress(data) + member.flush()
        assert gzip.decompress(packed + packed) == data + data  # members concatenate into valid gzip
    assert gzip.decompress(compression.gzip_member(data, level)) == data


def test_local_folder_skips_object_storage_only_for_file_urls(tmp_path):
    local = local_folder(f"file://{tmp_path}/out")
    assert local is not None and FolderIO(local).local and FolderIO(local).root == f"{tmp_path}/out"
    assert local_folder("s3://bucket/key/") is None and local_folder(None) is None
