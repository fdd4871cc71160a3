"""Timeline mode over real HTTP: off by default and byte-identical when off, the clock, walks and
their cursors, the local shuffle, counts over time, billing, and truth against full walks."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from airflow_provider_unifapi.sandbox import SandboxServer
from tests.sandbox import PAGE_SCHEMA, admin_client, api_client, page_all, serve, validate

TAG = "9100"
#: 400 videos before the start, 100 a day after it, at most 500 visible: a walk is 10 pages of 50.
SETTINGS: dict[str, Any] = {
    "timeline": True,
    "hashtags": [{"id": TAG, "name": "timelinetag", "video_count": 400}],
    "daily_new_videos": 100,
    "visible_cap": 500,
    "duplicate_rate": 0.0,
}
#: sha256 of a static walk, hashtag, search and truth (request ids removed) with seed 3, taken with
#: the sandbox before timeline mode existed: with the mode off, not one byte may change.
STATIC_FINGERPRINT = "bcd694dc28aa8e9808be431745c9074b6d79472c2153aad119b4018f2ffcba09"
_RID = re.compile(rb"unif_[0-9a-f]{16}")


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    yield from serve(**SETTINGS)


def walk(
    client: httpx.Client, hid: str = TAG, limit: int = 50, cursor: str | None = None
) -> list[dict[str, Any]]:
    """Every record of one walk (from ``cursor``, or a new walk), in order, repeats included."""
    records: list[dict[str, Any]] = []
    while True:
        params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        resp = client.get(f"/tiktok/hashtags/{hid}/videos", params=params)
        assert resp.status_code == 200, resp.text
        doc = resp.json()
        records.extend(doc["data"])
        cursor = doc["pagination"]["next_cursor"]
        if cursor is None:
            return records
        assert len(records) < 100_000


def truth_ids(admin: httpx.Client, hid: str = TAG) -> list[str]:
    return list(admin.get(f"/_sandbox/hashtags/{hid}/truth").json()["ids"])


def advance(admin: httpx.Client, **move: float) -> dict[str, Any]:
    resp = admin.post("/_sandbox/clock", json=move)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def _static_fingerprint(url: str) -> str:
    digest = hashlib.sha256()
    with httpx.Client(base_url=url, headers={"Authorization": "Bearer k"}) as c:
        cursor = None
        while True:
            resp = c.get(
                "/tiktok/hashtags/4242/videos", params={"limit": 37, **({"cursor": cursor} if cursor else {})}
            )
            digest.update(_RID.sub(b"", resp.content))
            cursor = resp.json()["pagination"]["next_cursor"]
            if cursor is None:
                break
        for path, params in (("/tiktok/hashtags/5050", {}), ("/tiktok/search/hashtags", {"q": "cats"})):
            digest.update(_RID.sub(b"", c.get(path, params=params).content))
        digest.update(c.get("/_sandbox/hashtags/6021/truth").content)
    return digest.hexdigest()


@pytest.mark.parametrize(
    "settings", [{}, {"timeline": False, "entry_rank": "high", "visible_cap": 10, "shuffle_width": 3}]
)
def test_off_by_default_and_byte_identical_when_off(settings: dict[str, Any]) -> None:
    with SandboxServer(seed=3, **settings) as sandbox, admin_client(sandbox) as admin:
        assert _static_fingerprint(sandbox.url) == STATIC_FINGERPRINT
        public = admin.get("/_sandbox/settings").json()
        assert public["timeline"] is False and public["timeline_start"] == "2025-06-01T00:00:00Z"
        refused = admin.post("/_sandbox/clock", json={"advance_days": 1})
        assert refused.status_code == 400 and "timeline mode is off" in refused.text
        assert admin.get(f"/_sandbox/hashtags/{TAG}/timeline").status_code == 400
        assert admin.get("/_sandbox/clock").json()["timeline"] is False


def test_clock_admin_call_and_its_validation(admin: httpx.Client) -> None:
    clock = admin.get("/_sandbox/clock").json()
    assert clock == {
        "timeline": True,
        "clock": 1_748_736_000,
        "clock_iso": "2025-06-01T00:00:00Z",
        "start": 1_748_736_000,
        "start_iso": "2025-06-01T00:00:00Z",
        "day": 0,
        "hours_since_start": 0.0,
        "observed_clocks": 1,
    }
    assert advance(admin, advance_hours=6)["clock"] == 1_748_736_000 + 6 * 3600
    assert advance(admin, advance_days=1.5)["day"] == 1
    moved = advance(admin, to="2025-06-05T00:00:00Z")
    assert (moved["clock"], moved["day"], moved["observed_clocks"]) == (1_749_081_600, 4, 4)
    assert advance(admin, advance_seconds=0)["observed_clocks"] == 4, "not moving is not a new clock"
    for bad in (
        {"advance_days": -1},
        {"advance_hours": "6"},
        {"advance_days": True},
        {"advance_days": 1, "advance_hours": 1},
        {},
        {"backwards": 1},
        {"to": "2025-06-01T00:00:00Z"},
        {"to": "yesterday"},
    ):
        resp = admin.post("/_sandbox/clock", json=bad)
        assert resp.status_code == 400, bad
        assert resp.json()["error"]["message"]
    assert admin.get("/_sandbox/clock").json()["clock"] == 1_749_081_600, "refused moves change nothing"
    admin.post("/_sandbox/reset", json={}).raise_for_status()
    assert admin.get("/_sandbox/clock").json()["clock"] == 1_748_736_000, "a reset goes back to the start"


def test_settings_are_validated(admin: httpx.Client) -> None:
    for bad in (
        {"timeline": "yes"},
        {"entry_rank": "middle"},
        {"visible_cap": 0},
        {"decay_days": 0},
        {"shuffle_width": -1},
        {"daily_new_videos": -5},
        {"daily_new_videos_by_hashtag": {"abc": 3}},
        {"timeline_start": "not a date"},
    ):
        resp = admin.post("/_sandbox/settings", json=bad)
        assert resp.status_code == 400, bad
    ok = admin.post(
        "/_sandbox/settings",
        json={
            "timeline_start": 1_750_000_000,
            "daily_new_videos_by_hashtag": {TAG: 40},
            "entry_rank": "high",
        },
    ).json()
    assert ok["timeline_start"] == "2025-06-15T15:06:40Z" and ok["daily_new_videos_by_hashtag"] == {TAG: 40.0}
    assert admin.get("/_sandbox/clock").json()["clock"] == 1_750_000_000, "a new start moves the clock there"


def test_a_walk_collects_the_truth_and_records_keep_their_shape(
    client: httpx.Client, admin: httpx.Client
) -> None:
    for _ in range(3):
        ids, pages = page_all(client, TAG, 50, check=True)
        truth = truth_ids(admin)
        assert len(ids) == len(truth) == len(set(ids))
        assert set(ids) == set(truth)
        for doc in pages:
            validate(PAGE_SCHEMA, doc)
        advance(admin, advance_days=2)
    info = admin.get(f"/_sandbox/hashtags/{TAG}/timeline").json()
    assert info["visible_count"] == len(truth) == 500, "the visible feed is capped"
    assert info["created_total"] > 500


def test_ids_encode_their_creation_second_and_are_unique(client: httpx.Client, admin: httpx.Client) -> None:
    advance(admin, advance_days=3)
    records = walk(client)
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids)) == 500
    for record in records:
        assert re.fullmatch(r"[1-9][0-9]{18}", record["id"])
        assert int(record["id"]) >> 32 == record["create_time"] <= 1_748_736_000 + 3 * 86_400
    info = admin.get(f"/_sandbox/hashtags/{TAG}/timeline", params={"day": 1, "ids": "false"}).json()
    assert "ids" not in info and len(info["videos"]) == info["days"][1]["created"]
    for video in info["videos"]:
        assert info["days"][1]["from"] <= video["created_at"] < info["days"][1]["from"] + 86_400
        assert int(video["id"]) >> 32 == video["created_at"]


def test_counts_never_decrease_as_the_clock_moves(client: httpx.Client, admin: httpx.Client) -> None:
    advance(admin, advance_days=1)
    before = {r["id"]: r for r in walk(client)}
    for move in ({"advance_hours": 1}, {"advance_hours": 6}, {"advance_days": 1}, {"advance_days": 3}):
        advance(admin, **move)
        now = {r["id"]: r for r in walk(client)}
        common = set(before) & set(now)
        assert common
        for vid in common:
            for field in ("view_count", "like_count", "comment_count", "share_count"):
                assert now[vid][field] >= before[vid][field], (vid, field)
        assert sum(now[v]["view_count"] > before[v]["view_count"] for v in common) > len(common) // 2
        before = now


def test_walks_shuffle_locally_but_never_miss_or_repeat(client: httpx.Client, admin: httpx.Client) -> None:
    advance(admin, advance_days=2)
    rank = {vid: i for i, vid in enumerate(truth_ids(admin))}
    orders = [[r["id"] for r in walk(client, limit=limit)] for limit in (50, 17, 50)]
    for order in orders:
        assert sorted(order) == sorted(rank), "one walk: every visible video exactly once"
        assert max(abs(i - rank[vid]) for i, vid in enumerate(order)) < 10, "moved by < shuffle_width"
    assert orders[0] != orders[1] != orders[2] != orders[0], "walks the same day see different orders"
    assert sum(a != b for a, b in zip(orders[0], orders[2], strict=True)) > 100


def test_a_cursor_keeps_its_clock_across_a_move(client: httpx.Client, admin: httpx.Client) -> None:
    advance(admin, advance_days=1)
    old_truth = set(truth_ids(admin))
    first = client.get(f"/tiktok/hashtags/{TAG}/videos", params={"limit": 50}).json()
    advance(admin, advance_days=2)
    assert set(truth_ids(admin)) != old_truth
    rest = walk(client, cursor=first["pagination"]["next_cursor"])
    assert {r["id"] for r in first["data"] + rest} == old_truth, "the walk finishes in its clock's feed"
    assert set(page_all(client, TAG, 50)[0]) == set(truth_ids(admin)), "a new walk starts at the new clock"


def test_cursors_of_the_other_mode_or_a_later_clock_are_refused(
    client: httpx.Client, admin: httpx.Client, server: SandboxServer
) -> None:
    advance(admin, advance_days=2)
    walk_cursor = client.get(f"/tiktok/hashtags/{TAG}/videos").json()["pagination"]["next_cursor"]
    admin.post("/_sandbox/reset", json={}).raise_for_status()  # the clock is back at the start
    later = client.get(f"/tiktok/hashtags/{TAG}/videos", params={"cursor": walk_cursor})
    assert later.status_code == 400 and "later clock" in later.text
    other = client.get("/tiktok/hashtags/4242/videos", params={"cursor": walk_cursor})
    assert other.status_code == 400 and "another hashtag" in other.text
    admin.post("/_sandbox/settings", json={"timeline": False}).raise_for_status()
    static_cursor = client.get(f"/tiktok/hashtags/{TAG}/videos").json()["pagination"]["next_cursor"]
    refused = client.get(f"/tiktok/hashtags/{TAG}/videos", params={"cursor": walk_cursor})
    assert refused.status_code == 400 and "timeline mode, which is off" in refused.text
    admin.post("/_sandbox/settings", json={"timeline": True}).raise_for_status()
    refused = client.get(f"/tiktok/hashtags/{TAG}/videos", params={"cursor": static_cursor})
    assert refused.status_code == 400 and "timeline mode was off" in refused.text
    calls = admin.get("/_sandbox/ledger").json()["calls"]
    assert [c["status"] for c in calls] == [400, 400, 200, 400, 400], "a reset cleared the first call"
    assert sum(c["credits_charged"] for c in calls) == calls[2]["records"]


def test_billing_truncation_and_max_credits_as_for_static_feeds(
    client: httpx.Client, admin: httpx.Client
) -> None:
    admin.post("/_sandbox/reset", json={"balance": 120, "short_page_rate": 0.0}).raise_for_status()
    url = f"/tiktok/hashtags/{TAG}/videos"
    capped = client.get(url, params={"limit": 50}, headers={"X-Unifapi-Max-Credits": "7"}).json()
    assert len(capped["data"]) == 7 and capped["billing"]["credits_charged"] == 7
    page = client.get(url, params={"limit": 50, "cursor": capped["pagination"]["next_cursor"]}).json()
    assert page["billing"] == {
        "credits_charged": 50,
        "records_charged": 50,
        "balance_remaining": 63,
        "truncated_due_to_balance": False,
    }
    page = client.get(url, params={"limit": 50, "cursor": page["pagination"]["next_cursor"]}).json()
    page = client.get(url, params={"limit": 50, "cursor": page["pagination"]["next_cursor"]}).json()
    assert len(page["data"]) == 13 and page["billing"]["truncated_due_to_balance"] is True
    assert page["pagination"]["has_more"] is True
    refused = client.get(url, params={"limit": 50, "cursor": page["pagination"]["next_cursor"]})
    assert refused.status_code == 402 and refused.json()["error"]["type"] == "insufficient_credits"
    ledger = admin.get("/_sandbox/ledger").json()
    assert ledger["totals"]["credits_charged"] == 120
    assert [c["records"] for c in ledger["calls"]] == [7, 50, 50, 13, 0]
    assert [c["offset"] for c in ledger["calls"]] == [0, 7, 57, 107, 157], "offsets read from walk cursors"
    free = admin.get(f"/_sandbox/hashtags/{TAG}/timeline").json()
    assert free["visible_count"] and admin.get("/_sandbox/ledger").json()["totals"]["calls"] == 5


def test_duplicates_and_the_hashtag_count_in_timeline_mode(client: httpx.Client, admin: httpx.Client) -> None:
    admin.post("/_sandbox/reset", json={"duplicate_rate": 0.05}).raise_for_status()
    advance(admin, advance_days=2)
    records = walk(client)
    ids = [r["id"] for r in records]
    assert len(ids) > len(set(ids)) == 500, "duplicate slots still repeat videos of earlier pages"
    first_seen: dict[str, dict[str, Any]] = {}
    for record in records:
        assert first_seen.setdefault(record["id"], record) == record, "a repeat is the same snapshot"
    info = admin.get(f"/_sandbox/hashtags/{TAG}/timeline").json()
    hashtag = client.get(f"/tiktok/hashtags/{TAG}").json()["data"]
    assert hashtag["video_count"] == info["created_total"] == 400 + sum(d["created"] for d in info["days"])


def test_same_seed_same_calls_same_bytes() -> None:
    def session(seed: int) -> bytes:
        out = []
        with (
            SandboxServer(seed=seed, **SETTINGS) as sandbox,
            api_client(sandbox) as c,
            admin_client(sandbox) as a,
        ):
            for move in (0, 1, 0, 2):
                if move:
                    advance(a, advance_days=move)
                cursor = None
                while True:  # a full walk, every page's bytes but the request ids
                    params = {"limit": 50, **({"cursor": cursor} if cursor else {})}
                    resp = c.get(f"/tiktok/hashtags/{TAG}/videos", params=params)
                    out.append(_RID.sub(b"", resp.content))
                    cursor = resp.json()["pagination"]["next_cursor"]
                    if cursor is None:
                        break
                out.append(a.get(f"/_sandbox/hashtags/{TAG}/timeline", params={"day": 0}).content)
        return b"".join(out)

    first = session(5)
    assert first == session(5)
    assert first != session(6)


def test_first_and_last_visible_agree_with_walks_at_each_clock(
    client: httpx.Client, admin: httpx.Client
) -> None:
    admin.post("/_sandbox/reset", json={"visible_cap": 150}).raise_for_status()
    first_walked: dict[str, int] = {}
    last_walked: dict[str, int] = {}
    for step in range(8):
        clock = advance(admin, advance_hours=6 if step else 0)["clock"]
        for vid in {r["id"] for r in walk(client)}:
            first_walked.setdefault(vid, clock)
            last_walked[vid] = clock
    now = set(truth_ids(admin))
    for day in (-1, 0, 1):
        videos = admin.get(f"/_sandbox/hashtags/{TAG}/timeline", params={"day": day}).json()["videos"]
        assert videos
        for video in videos:
            vid = video["id"]
            assert video["first_visible"] == first_walked.get(vid)
            assert video["last_visible"] == last_walked.get(vid)
            assert (video["rank_now"] is not None) == (vid in now)
    info = admin.get(f"/_sandbox/hashtags/{TAG}/timeline", params={"ids": "false"}).json()
    assert info["observed_clocks"] == 8
    new_walked = {v for v in first_walked if int(v) >> 32 >= 1_748_736_000}
    assert sum(d["ever_visible"] for d in info["days"]) == len(new_walked)
    assert sum(d["created"] for d in info["days"]) > len(new_walked), "with a cap of 150, some never show"


def test_cli_options_reach_the_settings() -> None:
    from airflow_provider_unifapi.sandbox.__main__ import build_parser, settings_from_args
    from airflow_provider_unifapi.sandbox.settings import Settings, SettingsError

    argv = ["--timeline", "--timeline-start", "2025-07-01", "--daily-new-videos", "50"]
    argv += ["--daily-new-videos-by-hashtag", "5050:7", "4242:0.5", "--entry-rank", "high"]
    argv += ["--entry-ramp-hours", "6", "--visible-cap", "800", "--decay-days", "2", "--shuffle-width", "4"]
    public = Settings().updated(settings_from_args(build_parser().parse_args(argv))).public()
    assert {k: public[k] for k in ("timeline", "timeline_start", "daily_new_videos_by_hashtag")} == {
        "timeline": True,
        "timeline_start": "2025-07-01T00:00:00Z",
        "daily_new_videos_by_hashtag": {"4242": 0.5, "5050": 7.0},
    }
    assert (public["entry_rank"], public["visible_cap"], public["shuffle_width"]) == ("high", 800, 4)
    assert (public["daily_new_videos"], public["entry_ramp_hours"], public["decay_days"]) == (50.0, 6.0, 2.0)
    assert not set(settings_from_args(build_parser().parse_args([]))), "no option: no setting"
    with pytest.raises(SettingsError):
        settings_from_args(build_parser().parse_args(["--daily-new-videos-by-hashtag", "5050"]))
