"""Jittered latency: ``latency_jitter_ms`` spreads each call's sleep over ``latency_ms`` +- jitter.

The draws are checked directly (a seeded RNG, no clock), and the server is checked to apply them:
each call takes at least the latency the seeded sequence gives it. Only lower bounds on elapsed
time are asserted (a sleep cannot be shorter than asked); nothing here depends on machine speed.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator

import httpx
import pytest

from airflow_provider_unifapi.sandbox import SandboxServer
from airflow_provider_unifapi.sandbox.__main__ import build_parser, settings_from_args
from airflow_provider_unifapi.sandbox.settings import Settings, SettingsError
from tests.sandbox import KEY

SEED = 3
LATENCY_MS = 40.0
JITTER_MS = 30.0


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer(api_keys=[KEY], seed=SEED) as sb:
        yield sb


def test_draws_spread_uniformly_within_the_band() -> None:
    settings = Settings().updated({"latency_ms": 300, "latency_jitter_ms": 100})
    rng = random.Random(0)
    draws = [settings.draw_latency_s(rng) for _ in range(2_000)]
    assert all(0.2 <= d <= 0.4 for d in draws)
    assert min(draws) < 0.21 and max(draws) > 0.39, "the whole band is used"
    assert len(set(draws)) > 1_900, "not a constant"
    below = sum(1 for d in draws if d < 0.3)
    assert 800 < below < 1_200, "centred on latency_ms"


def test_no_jitter_is_the_plain_latency_and_a_wide_jitter_clamps_at_zero() -> None:
    rng = random.Random(1)
    plain = Settings().updated({"latency_ms": 25})
    assert {plain.draw_latency_s(rng) for _ in range(50)} == {0.025}
    wide = Settings().updated({"latency_ms": 10, "latency_jitter_ms": 50})
    draws = [wide.draw_latency_s(rng) for _ in range(500)]
    assert min(draws) == 0.0 and max(draws) <= 0.06


def test_setting_is_validated_reported_and_on_the_cli() -> None:
    with pytest.raises(SettingsError, match="latency_jitter_ms"):
        Settings().updated({"latency_jitter_ms": -1})
    with pytest.raises(SettingsError, match="latency_jitter_ms"):
        Settings().updated({"latency_jitter_ms": "100"})
    assert Settings().updated({"latency_jitter_ms": 100}).public()["latency_jitter_ms"] == 100.0
    args = build_parser().parse_args(["--latency-ms", "300", "--latency-jitter-ms", "100"])
    assert settings_from_args(args) == {"latency_ms": 300.0, "latency_jitter_ms": 100.0}


def test_server_sleeps_each_call_its_seeded_draw(server: SandboxServer) -> None:
    changes = {"latency_ms": LATENCY_MS, "latency_jitter_ms": JITTER_MS}
    server.state.reset(changes)
    rng = random.Random(SEED)
    expected = [server.state.settings.draw_latency_s(rng) for _ in range(12)]
    # The sequence must hold draws far from the plain latency, or the check below proves nothing.
    assert max(expected) > (LATENCY_MS + 20) / 1000 and min(expected) < (LATENCY_MS - 20) / 1000
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {KEY}"}) as client:
        client.get("/tiktok/hashtags/5050")  # connect outside the timed calls
        server.state.reset(changes)  # reseeds the RNG: the next calls draw ``expected`` in order
        elapsed = []
        for _ in expected:
            start = time.perf_counter()
            assert client.get("/tiktok/hashtags/5050").status_code == 200
            elapsed.append(time.perf_counter() - start)
    for took, draw in zip(elapsed, expected, strict=True):
        assert took >= draw, f"a call took {took * 1000:.1f} ms, its drawn latency is {draw * 1000:.1f} ms"
    assert server.state.ledger.calls == len(expected)
