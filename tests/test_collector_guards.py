"""Pagination guards the sandbox cannot produce (it never loops or serves runs of empty pages):
driven through httpx.MockTransport against the operator's collector."""

from __future__ import annotations

import httpx
import pytest
from upath import UPath

from airflow_provider_unifapi.client import UnifAPIClient
from airflow_provider_unifapi.collector import HashtagVideoCollector, ObjectStorageOutput, PagingSettings
from airflow_provider_unifapi.exceptions import UnifAPIPaginationError
from airflow_provider_unifapi.storage.run_folder import RunFolder
from tests.conftest import API_KEY


def _page(cursor_out, data=(), balance=1000):
    return {
        "request_id": f"unif_{cursor_out}",
        "data": list(data),
        "pagination": {"has_more": cursor_out is not None, "next_cursor": cursor_out},
        "billing": {
            "credits_charged": max(1, len(data)),
            "records_charged": len(data),
            "balance_remaining": balance,
            "truncated_due_to_balance": False,
        },
    }


def _collector(handler, tmp_path, max_empty_pages):
    client = UnifAPIClient(API_KEY, "http://127.0.0.1:9", transport=httpx.MockTransport(handler))
    output = ObjectStorageOutput(RunFolder(UPath(f"file://{tmp_path}/out"), "jsonl"))
    return HashtagVideoCollector(
        client, "1", output=output, paging=PagingSettings(max_empty_pages=max_empty_pages)
    )


def test_a_run_of_empty_pages_stops_after_the_bound(tmp_path):
    calls = []

    def handler(request):
        calls.append(request)
        return httpx.Response(200, json=_page(f"c{len(calls)}"))  # empty, has_more forever

    summary = _collector(handler, tmp_path, max_empty_pages=4).run()
    assert summary["stop_reason"] == "empty_pages"
    assert len(calls) == 4 and summary["credits_charged"] == 4  # each empty page cost its minimum
    assert summary["next_cursor"] == "c4"


def test_a_repeated_cursor_is_an_error_not_a_loop(tmp_path):
    calls = []

    def handler(request):
        calls.append(request)
        return httpx.Response(200, json=_page("same", data=[]))

    with pytest.raises(UnifAPIPaginationError):
        _collector(handler, tmp_path, max_empty_pages=100).run()
    assert len(calls) == 2
