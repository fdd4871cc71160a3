"""Paging: following cursors with any page size yields exactly the ground truth."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import pytest

from airflow_provider_unifapi.sandbox import SandboxServer

from . import api_client, page_all, serve

HASHTAGS = [
    {"id": "31337", "name": "drift", "video_count": 640},
    {"id": "404040", "name": "emptytag", "video_count": 0},
    {"id": "5050", "name": "cats", "video_count": 300},
    {"id": "6021", "name": "catsoftiktok", "video_count": 80},
    {"id": "7007", "name": "Cat", "video_count": 10},
    {"id": "1000000", "name": "bigdata", "video_count": 1_000_000},
]


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    # High duplicate and short-page rates, so a 640-video hashtag exercises both many times.
    yield from serve(hashtags=HASHTAGS, duplicate_rate=0.1, short_page_rate=0.3)


def _truth(admin: httpx.Client, hashtag_id: str) -> list[str]:
    doc = admin.get(f"/_sandbox/hashtags/{hashtag_id}/truth").raise_for_status().json()
    assert doc["hashtag_id"] == hashtag_id and doc["count"] == len(doc["ids"])
    return doc["ids"]


@pytest.mark.parametrize("limit", [1, 7, 50])
def test_paging_yields_the_truth(client: httpx.Client, admin: httpx.Client, limit: int) -> None:
    truth = _truth(admin, "31337")
    assert len(truth) == len(set(truth)) == 640
    ids, pages = page_all(client, "31337", limit)
    assert ids == truth
    served = [v["id"] for p in pages for v in p["data"]]
    assert len(served) > len(truth), "duplicates expected across pages"
    assert all(len(p["data"]) <= limit for p in pages)
    if limit > 1:
        assert any(len(p["data"]) < limit for p in pages[:-1]), "short pages with has_more expected"


def test_duplicates_repeat_ids_from_earlier_pages_only(client: httpx.Client) -> None:
    _, pages = page_all(client, "31337", 50)
    earlier: set[str] = set()
    repeats = 0
    for page in pages:
        page_ids = [v["id"] for v in page["data"]]
        assert len(page_ids) == len(set(page_ids)), "no duplicate inside one page"
        repeats += sum(i in earlier for i in page_ids)
        earlier.update(page_ids)
    assert repeats > 0


def test_empty_hashtag_is_one_empty_page_costing_one_credit(client: httpx.Client) -> None:
    ids, pages = page_all(client, "404040", 50)
    assert ids == [] and len(pages) == 1
    assert pages[0]["pagination"] == {"has_more": False, "next_cursor": None}
    assert pages[0]["billing"]["credits_charged"] == 1
    assert pages[0]["billing"]["records_charged"] == 0


def test_default_limit_is_20(server: SandboxServer, client: httpx.Client) -> None:
    server.state.reset({"short_page_rate": 0.0})
    assert len(client.get("/tiktok/hashtags/5050/videos").json()["data"]) == 20


def test_unknown_numeric_ids_exist_with_deterministic_defaults(
    client: httpx.Client, admin: httpx.Client
) -> None:
    doc = client.get("/tiktok/hashtags/98765").json()["data"]
    assert doc["name"] == "tag98765" and 1000 <= doc["video_count"] <= 2000
    assert client.get("/tiktok/hashtags/98765").json()["data"] == doc
    ids, _ = page_all(client, "98765", 50)
    assert ids == _truth(admin, "98765") and len(ids) == doc["video_count"]


def test_data_is_deterministic_per_seed(server: SandboxServer, client: httpx.Client) -> None:
    first = client.get("/tiktok/hashtags/5050/videos", params={"limit": 5}).json()["data"]
    with SandboxServer(hashtags=HASHTAGS) as other, api_client(other) as c2:
        assert c2.get("/tiktok/hashtags/5050/videos", params={"limit": 5}).json()["data"] == first
    server.state.reset({"seed": 99})
    assert client.get("/tiktok/hashtags/5050/videos", params={"limit": 5}).json()["data"] != first


def test_cursor_is_opaque_and_bound_to_its_hashtag(client: httpx.Client) -> None:
    doc = client.get("/tiktok/hashtags/5050/videos", params={"limit": 37}).json()
    cursor = doc["pagination"]["next_cursor"]
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    assert b"37" not in raw and "37" not in cursor
    other = client.get("/tiktok/hashtags/6021/videos", params={"cursor": cursor})
    assert other.status_code == 400 and other.json()["error"]["type"] == "validation_error"
    assert "another hashtag" in other.json()["error"]["issues"][0]
    tampered = cursor[:-3] + ("A" if cursor[-3] != "A" else "B") + cursor[-2:]
    assert client.get("/tiktok/hashtags/5050/videos", params={"cursor": tampered}).status_code == 400
    # The same cursor gives the same page again (stateless; a retry is safe to compare).
    again = [
        client.get("/tiktok/hashtags/5050/videos", params={"cursor": cursor, "limit": 10}).json()["data"]
        for _ in range(2)
    ]
    assert again[0] == again[1]


def test_truth_of_a_million_videos(admin: httpx.Client) -> None:
    doc = admin.get("/_sandbox/hashtags/1000000/truth").raise_for_status().json()
    assert doc["count"] == 1_000_000 == len(doc["ids"])
    assert doc["ids"][0] != doc["ids"][-1] and all(len(i) == 19 for i in doc["ids"][::9973])


def test_search_exact_name_first_case_insensitive_and_paged(client: httpx.Client) -> None:
    doc = client.get("/tiktok/search/hashtags", params={"q": "CAT"}).json()
    names = [h["name"] for h in doc["data"]]
    assert names[0] == "Cat" and set(names) == {"Cat", "cats", "catsoftiktok"}
    assert doc["billing"]["credits_charged"] == 3
    exact = client.get("/tiktok/search/hashtags", params={"q": "cats"}).json()["data"]
    assert exact[0]["name"] == "cats" and exact[0]["id"] == "5050"
    seen, cursor = [], None
    while True:
        params = {"q": "cat", "limit": 1, **({"cursor": cursor} if cursor else {})}
        page = client.get("/tiktok/search/hashtags", params=params).json()
        seen += [h["name"] for h in page["data"]]
        if not page["pagination"]["has_more"]:
            break
        cursor = page["pagination"]["next_cursor"]
    assert sorted(seen) == sorted(names)
    wrong = client.get("/tiktok/search/hashtags", params={"q": "dog", "cursor": cursor})
    assert wrong.status_code == 400
    empty = client.get("/tiktok/search/hashtags", params={"q": "no-such-tag"}).json()
    assert empty["data"] == [] and empty["billing"]["credits_charged"] == 1


def test_admin_hashtag_upsert_changes_what_is_served(client: httpx.Client, admin: httpx.Client) -> None:
    admin.post(
        "/_sandbox/hashtags", json={"id": "55555", "name": "fresh", "video_count": 3}
    ).raise_for_status()
    ids, _ = page_all(client, "55555", 50)
    assert len(ids) == 3 == client.get("/tiktok/hashtags/55555").json()["data"]["video_count"]
    assert client.get("/tiktok/search/hashtags", params={"q": "fresh"}).json()["data"][0]["id"] == "55555"


def test_changing_the_page_size_mid_run_still_yields_the_truth(
    client: httpx.Client, admin: httpx.Client
) -> None:
    truth = _truth(admin, "31337")
    ids: list[str] = []
    cursor = None
    for step in range(10_000):
        limit = (1, 50, 13, 2, 49, 7)[step % 6]
        params = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        doc = client.get("/tiktok/hashtags/31337/videos", params=params).json()
        ids += [v["id"] for v in doc["data"] if v["id"] not in ids]
        if not doc["pagination"]["has_more"]:
            break
        cursor = doc["pagination"]["next_cursor"]
    assert ids == truth


@pytest.mark.parametrize(
    "count,dup_rate,short_rate",
    [(0, 0.0, 0.0), (1, 0.5, 1.0), (99, 0.5, 0.5), (101, 0.5, 0.0), (5_000, 0.5, 0.3), (3_333, 0.013, 0.05)],
)
def test_feed_invariants_without_http(count: int, dup_rate: float, short_rate: float) -> None:
    from airflow_provider_unifapi.sandbox.data import Feed

    feed = Feed(3, "424242", "inv", count, dup_rate, short_rate, True)
    truth = feed.truth_ids()
    assert len(set(truth)) == len(truth) == count
    for limit in (1, 3, 50):
        seen: dict[str, int] = {}
        order: list[str] = []
        start, page_no = 0, 0
        while True:
            size = feed.page_size(start, limit)
            assert 1 <= size <= limit or (size == 0 and start >= feed.length)
            for rec in feed.render(start, size):
                vid = rec.split(b'"', 4)[3].decode()
                if vid in seen:
                    assert seen[vid] < page_no, "a duplicate repeats an earlier page only"
                else:
                    seen[vid] = page_no
                    order.append(vid)
            start += size
            page_no += 1
            if start >= feed.length:
                break
        assert order == truth
