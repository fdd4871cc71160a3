"""Every body the sandbox sends validates against UnifAPI's official OpenAPI schemas."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from airflow_provider_unifapi.sandbox import SandboxServer

from . import (
    ERROR_SCHEMA,
    HASHTAG_SCHEMA,
    KEY,
    PAGE_SCHEMA,
    SEARCH_SCHEMA,
    SPEC_PATH,
    admin_client,
    api_client,
    is_valid,
    page_all,
    serve,
    validate,
)


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    yield from serve(api_keys=[KEY])


@pytest.fixture
def client(server: SandboxServer) -> Iterator[httpx.Client]:
    server.state.reset()
    with api_client(server) as c:
        yield c


def test_spec_file_is_the_official_subset() -> None:
    spec = json.loads(SPEC_PATH.read_text())
    assert set(spec["paths"]) == {
        "/tiktok/hashtags/{id}/videos",
        "/tiktok/hashtags/{id}",
        "/tiktok/search/hashtags",
    }


def test_video_pages_validate_and_cover_every_field_and_variant(client: httpx.Client) -> None:
    _, pages = page_all(client, "5050", 50, check=True)  # 2,500 videos
    videos = [v for p in pages for v in p["data"]]
    required = json.loads(SPEC_PATH.read_text())["components"]["schemas"]["Video"]["required"]
    for v in videos:
        assert set(required) <= set(v)
        assert v["title"] == v["video_description"]
        assert len(v["id"]) == 19 and v["id"].isdigit()
        assert set(v["author"]) >= {"id", "username", "display_name", "avatar_url"}
        assert v["share_url"].endswith(f"/@{v['author']['username']}/video/{v['id']}")
    n = len(videos)
    # The nullable fields are null sometimes, at about the documented rates.
    assert 0.05 < sum(v["region"] is None for v in videos) / n < 0.15
    assert 0.10 < sum(v["music"] is None for v in videos) / n < 0.20
    assert 0.05 < sum(v["play_url"] is None for v in videos) / n < 0.15
    assert any(v["view_count"] > 2**31 for v in videos)
    assert any(v["is_image_post"] for v in videos) and not all(v["is_image_post"] for v in videos)
    assert any(isinstance(v["music"], dict) and v["music"]["is_original"] for v in videos)
    assert any(any(ord(ch) > 0xFFFF for ch in v["title"]) for v in videos), "emoji expected"
    # Unknown fields (schema drift) appear on some records, top level and nested.
    assert any("x_source_rank" in v for v in videos)
    assert any("x_follower_count" in v["author"] for v in videos)
    assert not all("x_source_rank" in v for v in videos)


def test_extra_fields_can_be_switched_off(server: SandboxServer, client: httpx.Client) -> None:
    server.state.reset({"extra_fields": False})
    _, pages = page_all(client, "6021", 50, check=True)
    videos = [v for p in pages for v in p["data"]]
    assert not any("x_source_rank" in v or "x_follower_count" in v["author"] for v in videos)


def test_hashtag_and_search_bodies_validate(client: httpx.Client) -> None:
    doc = client.get("/tiktok/hashtags/5050").json()
    validate(HASHTAG_SCHEMA, doc)
    assert doc["data"]["name"] == "cats" and doc["data"]["video_count"] == 2500
    validate(HASHTAG_SCHEMA, client.get("/tiktok/hashtags/123456789").json())  # default hashtag
    for params in ({"q": "cat"}, {"q": "zzz-nothing"}, {"q": "a", "limit": 2}):
        validate(SEARCH_SCHEMA, client.get("/tiktok/search/hashtags", params=params).json())


def _errors(server: SandboxServer, client: httpx.Client) -> list[tuple[int, dict[str, Any]]]:
    out = []
    for path, params, headers in [
        ("/tiktok/hashtags/abc/videos", {}, {}),
        ("/tiktok/hashtags/5050/videos", {"limit": 0}, {}),
        ("/tiktok/hashtags/5050/videos", {"cursor": "nope"}, {}),
        ("/tiktok/hashtags/5050/videos", {}, {"X-Unifapi-Max-Credits": "0"}),
        ("/tiktok/hashtags/666/videos", {}, {}),
        ("/tiktok/hashtags/777", {}, {}),
        ("/tiktok/hashtags/5050", {}, {"Authorization": "Bearer wrong-key"}),
        ("/tiktok/hashtags/5050", {}, {"Authorization": "Basic abc"}),
        ("/tiktok/nothing-here", {}, {}),
        ("/tiktok/search/hashtags", {}, {}),
    ]:
        resp = client.get(path, params=params, headers=headers)
        out.append((resp.status_code, resp.json()))
    admin = admin_client(server)
    admin.post("/_sandbox/balance", json={"set": 0})
    resp = client.get("/tiktok/hashtags/5050/videos")
    out.append((resp.status_code, resp.json()))
    admin.post("/_sandbox/balance", json={"set": 100})
    admin.post(
        "/_sandbox/faults",
        json={
            "plan": [
                {"kind": "error", "status": s, "at": [i + 1]}
                for i, s in enumerate((429, 500, 502, 503, 402, 404))
            ]
            + [{"kind": "error", "status": 500, "type": "response_shape_error", "at": [7]}]
        },
    )
    for _ in range(7):
        resp = client.get("/tiktok/hashtags/5050/videos")
        out.append((resp.status_code, resp.json()))
    admin.close()
    return out


def test_every_error_body_validates(server: SandboxServer, client: httpx.Client) -> None:
    server.state.reset({"not_found_ids": ["666"], "invalid_ids": ["777"]})
    errors = _errors(server, client)
    statuses = [s for s, _ in errors]
    assert statuses == [
        400,
        400,
        400,
        400,
        404,
        400,
        401,
        401,
        404,
        400,
        402,
        429,
        500,
        502,
        503,
        402,
        404,
        500,
    ]
    for _status, doc in errors:
        validate(ERROR_SCHEMA, doc)
        assert doc["error"]["request_id"].startswith("unif_")
    types = [doc["error"]["type"] for _, doc in errors]
    assert types[:11] == ["validation_error"] * 4 + [
        "not_found",
        "invalid_id",
        "unauthorized",
        "unauthorized",
        "not_found",
        "validation_error",
        "insufficient_credits",
    ]
    assert types[11:] == [
        "rate_limited",
        "internal_error",
        "upstream_error",
        "upstream_unavailable",
        "insufficient_credits",
        "not_found",
        "response_shape_error",
    ]
    assert all(doc["error"]["issues"] for s, doc in errors if doc["error"]["type"] == "validation_error")


def test_truncated_page_validates(server: SandboxServer, client: httpx.Client) -> None:
    server.state.reset({"balance": 7})
    doc = client.get("/tiktok/hashtags/5050/videos", params={"limit": 20}).json()
    validate(PAGE_SCHEMA, doc)
    assert doc["billing"] == {
        "credits_charged": 7,
        "records_charged": 7,
        "balance_remaining": 0,
        "truncated_due_to_balance": True,
    }


def test_shape_fault_breaks_the_schema(server: SandboxServer, client: httpx.Client) -> None:
    with admin_client(server) as admin:
        admin.post(
            "/_sandbox/faults",
            json={
                "plan": [
                    {"kind": "shape", "at": [1]},
                    {"kind": "shape", "variant": "missing_pagination", "at": [2]},
                ]
            },
        ).raise_for_status()
    first, second, third = (client.get("/tiktok/hashtags/5050/videos").json() for _ in range(3))
    assert not is_valid(PAGE_SCHEMA, first) and all("id" not in v for v in first["data"])
    assert not is_valid(PAGE_SCHEMA, second) and "pagination" not in second
    validate(PAGE_SCHEMA, third)
