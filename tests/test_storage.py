"""Storage pieces that real runs exercise only partly: the id set, the checkpoint journal, recovery."""

from __future__ import annotations

import random

from upath import UPath

from airflow_provider_unifapi.storage.checkpoint import Checkpoint, CheckpointStore
from airflow_provider_unifapi.storage.fsio import FolderIO
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
        handle.write(b'{"version": 1, "hashtag_id": "1", "output_format": "jsonl", "pages": 99')  # killed mid-append
    assert CheckpointStore(io).load().pages == 3
    store = CheckpointStore(io)
    store.compact(Checkpoint(hashtag_id="1", output_format="jsonl", pages=4))
    assert (tmp_path / "_checkpoint.json").read_bytes().count(b"\n") == 1  # history dropped
    assert CheckpointStore(io).load().pages == 4
