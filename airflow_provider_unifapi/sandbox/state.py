"""The workspace: balance, keys, rate bucket, fault plan, ledger and catalogue, behind one lock.

Everything that must stay consistent between concurrent calls (charging, counting calls, taking
rate tokens, firing faults, writing the ledger) happens under :attr:`SandboxState.lock`. Data
generation does not: it is a pure function of the settings snapshot and runs outside the lock.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from airflow_provider_unifapi.sandbox.data import Feed, PageSource, default_hashtag_name, default_video_count
from airflow_provider_unifapi.sandbox.faults import FaultRule, parse_plan
from airflow_provider_unifapi.sandbox.ledger import Ledger
from airflow_provider_unifapi.sandbox.ratelimit import TokenBucket, Verdict
from airflow_provider_unifapi.sandbox.request import Call
from airflow_provider_unifapi.sandbox.settings import HashtagDef, Settings, key_digest
from airflow_provider_unifapi.sandbox.timeline_state import TimelineState

_FEED_CACHE_SIZE = 256


class SandboxState:
    """In-memory state of one sandbox workspace.

    :param settings: the initial settings; ``reset`` starts again from these plus its overrides.
    """

    def __init__(self, settings: Settings | None = None) -> None:
        self.lock = threading.Lock()
        self.initial_settings = settings or Settings()
        self.generation = 0
        # Bumped by each reset: a call still in flight from before it belongs to a workspace that
        # is gone, and is dropped instead of being billed and logged in the new one.
        self.resets = 0
        self._feeds: dict[tuple[int, str], Feed] = {}
        self.timeline = TimelineState(self.initial_settings)
        self._apply(self.initial_settings, full_reset=True)

    # --- settings -------------------------------------------------------------------------------
    def _apply(self, settings: Settings, *, full_reset: bool) -> None:
        """Install ``settings`` (caller holds the lock, or is the constructor)."""
        old = getattr(self, "settings", None)
        self.settings = settings
        self.generation += 1  # data settings or catalogue may change: cached feeds/pages go stale
        self._feeds.clear()
        self.catalogue: dict[str, HashtagDef] = {h.id: h for h in settings.hashtags}
        if full_reset or old is None:
            self.resets += 1
            self.balance = settings.balance
            self.ledger = Ledger(settings.ledger_cap)
            self.bucket = TokenBucket(settings.rate_limit_per_minute, settings.burst)
            self.faults: list[FaultRule] = []
            self.fault_calls = 0
            self.revoked: set[str] = set()
            self.timeline.restart(settings.timeline_start)
            return
        if old.timeline_start != settings.timeline_start:
            self.timeline.restart(settings.timeline_start)
        if (old.rate_limit_per_minute, old.burst) != (settings.rate_limit_per_minute, settings.burst):
            self.bucket = TokenBucket(settings.rate_limit_per_minute, settings.burst)
        if old.ledger_cap != settings.ledger_cap:
            self.ledger.resize(settings.ledger_cap)

    def reset(self, changes: Mapping[str, Any] | None = None) -> dict[str, object]:
        """Start again from the initial settings plus ``changes``: balance, ledger, faults, bucket,
        call counter and revoked keys are all cleared. Returns the public settings."""
        settings = self.initial_settings.updated(changes or {})
        with self.lock:
            self._apply(settings, full_reset=True)
            return settings.public()

    def update(self, changes: Mapping[str, Any]) -> dict[str, object]:
        """Change some settings in place, keeping the ledger, fault plan and counters.

        A ``balance`` in ``changes`` sets the balance.
        """
        with self.lock:
            settings = self.settings.updated(changes)
            self._apply(settings, full_reset=False)
            if "balance" in changes:
                self.balance = settings.balance
            return settings.public()

    # --- catalogue ------------------------------------------------------------------------------
    def upsert_hashtag(self, hashtag: HashtagDef) -> None:
        """Add or replace one catalogue hashtag."""
        with self.lock:
            others = tuple(h for h in self.settings.hashtags if h.id != hashtag.id)
            self._apply(replace(self.settings, hashtags=(*others, hashtag)), full_reset=False)

    def lookup(self, hashtag_id: str) -> tuple[str, HashtagDef | None]:
        """Return ``("ok", def)``, ``("not_found", None)`` or ``("invalid_id", None)``.

        Any all-digit id that is not in the catalogue exists too, with a default name and a
        seed-derived count (see :func:`~airflow_provider_unifapi.sandbox.data.default_video_count`).
        """
        settings = self.settings
        if hashtag_id in settings.invalid_ids:
            return "invalid_id", None
        if hashtag_id in settings.not_found_ids:
            return "not_found", None
        found = self.catalogue.get(hashtag_id)
        if found is None:
            found = HashtagDef(
                hashtag_id, default_hashtag_name(hashtag_id), default_video_count(settings.seed, hashtag_id)
            )
        return "ok", found

    def feed(self, hashtag: HashtagDef) -> tuple[int, Feed]:
        """The (cached) feed of ``hashtag`` under the current settings, with the cache generation."""
        generation, settings = self.generation, self.settings
        key = (generation, hashtag.id)
        found = self._feeds.get(key)
        if found is None:
            found = Feed(
                settings.seed,
                hashtag.id,
                hashtag.name,
                hashtag.video_count,
                settings.duplicate_rate,
                settings.short_page_rate,
                settings.extra_fields,
            )
            if len(self._feeds) >= _FEED_CACHE_SIZE:
                self._feeds.clear()
            self._feeds[key] = found
        return generation, found

    def page_source(self, hashtag: HashtagDef, call: Call) -> tuple[int, PageSource]:
        """What a videos call pages through, with the cache generation: the static feed, or in
        timeline mode the walk its cursor continues (a new walk at the current clock without one).

        :param hashtag: the hashtag the call asks for.
        :param call: the validated call (``walk`` is set when its cursor continues a walk).
        """
        if not self.settings.timeline:
            return self.feed(hashtag)
        with self.lock:
            generation, settings = self.generation, self.settings
            if call.walk is None:
                clock, nonce = self.timeline.clock, self.timeline.next_nonce(hashtag.id)
            else:
                clock, nonce = call.walk
        return generation, self.timeline.walk(generation, settings, hashtag, clock, nonce)

    def timeline_clock(self) -> int | None:
        """The clock in timeline mode, ``None`` when the mode is off."""
        return self.timeline.clock if self.settings.timeline else None

    def video_count(self, hashtag: HashtagDef) -> int:
        """The hashtag's ``video_count``: in timeline mode, every video created up to the clock.

        :param hashtag: the hashtag.
        """
        settings = self.settings
        if not settings.timeline:
            return hashtag.video_count
        return self.timeline.model(settings, hashtag).created_up_to(self.timeline.clock)

    def move_clock(self, to: int) -> None:
        """Move the timeline clock forward to ``to``.

        :param to: the new clock (unix seconds).
        :raises ValueError: when ``to`` is before the current clock (it never moves backwards).
        """
        with self.lock:
            if to < self.timeline.clock:
                raise ValueError("the clock never moves backwards")
            self.timeline.move_to(to)

    def search(self, query: str) -> list[HashtagDef]:
        """Catalogue hashtags whose name contains ``query`` (case-insensitive), exact match first."""
        q = query.lower()
        hits = [h for h in self.catalogue.values() if q in h.name.lower()]
        return sorted(
            hits, key=lambda h: (h.name.lower() != q, not h.name.lower().startswith(q), h.name.lower(), h.id)
        )

    # --- per-call bookkeeping (callers hold the lock) ---------------------------------------------
    def begin_call(self, endpoint: str) -> FaultRule | None:
        """Count one API call and return the fault rule that fires for it, if any.

        :param endpoint: the routed endpoint (``videos``, ``hashtag``, ``search``, ``unknown``).
        """
        self.fault_calls += 1
        for rule in self.faults:
            if rule.matches(self.fault_calls, endpoint):
                rule.fired += 1
                return rule
        return None

    def check_key(self, key: str) -> str | None:
        """Return why ``key`` is refused, or ``None`` when it is accepted."""
        digest = key_digest(key)
        if digest in self.revoked:
            return "API key revoked"
        allowed = self.settings.api_key_digests
        if allowed and digest not in allowed:
            return "invalid API key"
        return None

    def take_token(self) -> Verdict | None:
        """Take a rate-limit token (``None`` when limiting is off)."""
        return self.bucket.take()

    def peek_tokens(self) -> Verdict | None:
        """Rate-limit headers for a call that does not consume a token."""
        return self.bucket.peek()

    # --- admin helpers ----------------------------------------------------------------------------
    def install_faults(self, plan: Any) -> list[dict[str, Any]]:
        """Validate and install a fault plan (replacing the old one); resets the call counter."""
        rules = parse_plan(plan)
        with self.lock:
            self.faults = rules
            self.fault_calls = 0
        return [r.spec for r in rules]

    def clear_faults(self) -> None:
        """Remove the fault plan and reset the call counter."""
        with self.lock:
            self.faults = []
            self.fault_calls = 0

    def faults_view(self) -> dict[str, Any]:
        """The plan as installed, with how often each rule fired."""
        with self.lock:
            return {
                "plan": [r.spec for r in self.faults],
                "fired": [r.fired for r in self.faults],
                "calls": self.fault_calls,
            }

    def revoke(self, key: str) -> None:
        """Refuse ``key`` from now on (stored as a digest)."""
        with self.lock:
            self.revoked.add(key_digest(key))

    def set_balance(self, *, set_to: int | None = None, add: int | None = None) -> int:
        """Set or top up the balance (never below 0); returns the new balance."""
        with self.lock:
            if set_to is not None:
                self.balance = set_to
            if add is not None:
                self.balance = max(0, self.balance + add)
            return self.balance

    def truth(self, hashtag_id: str) -> list[str]:
        """Every unique video id of a hashtag, in order of first appearance; in timeline mode what a
        full walk from the start collects now: the visible feed, in rank order (a walk sees it
        locally shuffled)."""
        status, hashtag = self.lookup(hashtag_id)
        if hashtag is None:
            raise LookupError(status)
        settings = self.settings
        if settings.timeline:
            ranked = self.timeline.model(settings, hashtag).ranked(self.timeline.clock)
            return [str(vid) for vid, _, _ in ranked]
        return self.feed(hashtag)[1].truth_ids()
