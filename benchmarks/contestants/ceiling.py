"""The ceiling: a bare httpx loop that fetches every page and parses its JSON, nothing else.

One keep-alive client, no validation, no dedupe, no writing: what the job costs before any tool
adds anything. Records are counted (not kept) so the harness can check every page was read.
"""

from __future__ import annotations

import json

import httpx

from benchmarks.spec import RunSpec
from benchmarks.window import Window


def run(spec: RunSpec) -> None:
    path = f"/tiktok/hashtags/{spec.hashtag_id}/videos"
    with (
        Window(spec) as window,
        httpx.Client(base_url=spec.base_url, headers={"Authorization": f"Bearer {spec.api_key}"}) as client,
    ):
        params: dict[str, str | int] = {"limit": spec.page_size}
        while True:
            response = client.get(path, params=params)
            response.raise_for_status()
            body = json.loads(response.content)
            window.records += len(body["data"])
            window.pages += 1
            pagination = body["pagination"]
            if not pagination["has_more"] or not pagination["next_cursor"]:
                break
            params = {"limit": spec.page_size, "cursor": pagination["next_cursor"]}
