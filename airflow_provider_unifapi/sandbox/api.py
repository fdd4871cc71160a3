"""The UnifAPI endpoints' front door: the order of checks a call goes through, and its faults.

:meth:`ApiService.handle` turns one parsed request into a :class:`~.replies.Reply`; the HTTP layer
only writes it. Order of checks for one call (and why):

1. count the call and pick a fault rule (faults model the gateway or network, so they come first);
2. sleep ``latency_ms`` (+- ``latency_jitter_ms``, uniform); ``error`` and unbilled ``reset`` faults answer now, ``slow`` waits;
3. unknown route -> 404 (no key needed to learn that a path does not exist);
4. ``Authorization: Bearer <key>`` -> 401 (does not consume a rate token: no workspace yet);
5. rate-limit token -> 429 with ``Retry-After``;
6. query/header validation -> 400 ``validation_error`` with ``issues``;
7. configured ``invalid_ids`` -> 400 ``invalid_id``, ``not_found_ids`` -> 404;
8. billing (402 / truncation / max-credits cap) and the ledger entry, atomically;
9. the body, from a page rendered ahead of time when the client pages sequentially.

Billed faults (``malformed``, ``truncated``, ``shape``, billed ``reset``) then break the reply.
The pieces live next door: :mod:`.request` (parsing, validation), :mod:`.billing`,
:mod:`.endpoints` (bodies), :mod:`.prefetch`, :mod:`.replies`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from airflow_provider_unifapi.sandbox import endpoints
from airflow_provider_unifapi.sandbox.billing import log_call, refusal_billing
from airflow_provider_unifapi.sandbox.faults import FaultRule
from airflow_provider_unifapi.sandbox.prefetch import PagesAhead
from airflow_provider_unifapi.sandbox.replies import (
    PrefetchHint,
    Reply,
    break_reply,
    error_body,
    html_body,
)
from airflow_provider_unifapi.sandbox.request import Call, new_request_id, parse_query, route, validate
from airflow_provider_unifapi.sandbox.state import SandboxState

#: Fault kinds that go through the normal path (auth, validation, billing) before breaking the reply.
_BREAKS_REPLY = ("malformed", "truncated", "shape", "reset")


class ApiService:
    """Answers API calls against one :class:`SandboxState`.

    :param state: the workspace.
    """

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.pages = PagesAhead()
        # Jitter draws come from one RNG, reseeded from ``seed`` whenever the settings change (a
        # reset bumps the state's generation), so a run's sequence of latencies repeats.
        self._rng = random.Random()
        self._rng_generation = -1

    def handle(
        self,
        method: str,
        target: str,
        header_pairs: list[tuple[str, str]],
        headers: dict[str, str],
        client_alive: Callable[[], bool],
    ) -> Reply:
        """Answer one API call (anything outside ``/_sandbox``).

        :param method: the HTTP method.
        :param target: the request target (path and query string).
        :param header_pairs: request headers, names lower-cased, in order (for the ledger).
        :param headers: the same as a dict (last value wins).
        :param client_alive: tells whether the client is still connected (for ``slow`` faults).
        """
        path, _, query = target.partition("?")
        endpoint, hashtag_id = route(method, path)
        call = Call(
            new_request_id(), method, path, endpoint, hashtag_id, parse_query(query), headers, header_pairs
        )
        with self.state.lock:
            call.workspace = self.state.resets
            call.fault = self.state.begin_call(endpoint)
            latency = self._draw_latency_s()
        if latency:
            time.sleep(latency)
        rule = call.fault
        if rule is not None:
            early = self._fault_before_processing(call, rule, client_alive)
            if early is not None:
                return early
        if call.workspace != self.state.resets:  # a reset while it slept: its workspace is gone
            return Reply(0, b"", call.request_id, action="drop")
        reply = self._process(call)
        if rule is not None and rule.kind in _BREAKS_REPLY:
            reply = break_reply(reply, rule)
        return reply

    def _draw_latency_s(self) -> float:
        """This call's latency in seconds (the caller holds the state lock, which guards the RNG)."""
        state = self.state
        if state.generation != self._rng_generation:
            self._rng.seed(state.settings.seed)
            self._rng_generation = state.generation
        return state.settings.draw_latency_s(self._rng)

    def prefetch(self, hint: PrefetchHint) -> None:
        """Render the page a sequential client asks for next, while it parses this one.

        Called by the HTTP layer after the reply is sent: the rendering then overlaps with the
        client's own work instead of adding to its latency.

        :param hint: the ``prefetch`` of the reply just sent.
        """
        self.pages.render_next(hint)

    def _fault_before_processing(
        self, call: Call, rule: FaultRule, client_alive: Callable[[], bool]
    ) -> Reply | None:
        """The reply of a fault that answers before auth and billing, or ``None`` to go on."""
        if rule.kind == "error":
            return self._fault_error(call, rule)
        if rule.kind == "reset" and not rule.billed:
            log_call(self.state, call, None, None, 0, 0)
            return Reply(0, b"", call.request_id, action="reset")
        if rule.kind == "slow":
            time.sleep(rule.delay_s)
            if not client_alive():
                log_call(self.state, call, None, "client_disconnected", 0, 0)
                return Reply(0, b"", call.request_id, action="drop")
        return None

    def _process(self, call: Call) -> Reply:
        """Steps 3 to 9 of the module docstring."""
        if call.endpoint == "unknown":
            call.rate_headers = self._peek_rate_headers()
            return self._error(call, 404, "not_found", f"no route for {call.method} {call.path}")
        refused = self._authorize(call)
        if refused is not None:
            return refused
        issues = validate(call, self.state.timeline_clock())
        if issues:
            return self._error(call, 400, "validation_error", "request validation failed", issues=issues)
        if call.endpoint == "search":
            return endpoints.search(self.state, call)
        status, hashtag = self.state.lookup(call.hashtag_id or "")
        if hashtag is None:
            if status == "invalid_id":
                return self._error(
                    call, 400, "invalid_id", f"hashtag id {call.hashtag_id} was refused by the source"
                )
            return self._error(call, 404, "not_found", f"hashtag {call.hashtag_id} not found")
        if call.endpoint == "hashtag":
            return endpoints.hashtag(self.state, call, hashtag)
        return endpoints.videos(self.state, self.pages, call, hashtag)

    def _authorize(self, call: Call) -> Reply | None:
        """The 401 or 429 reply, or ``None`` when the key is accepted and a rate token taken."""
        auth = call.headers.get("authorization", "")
        scheme, _, key = auth.partition(" ")
        if scheme.lower() != "bearer" or not key or key != key.strip() or " " in key:
            call.rate_headers = self._peek_rate_headers()
            return self._error(
                call,
                401,
                "unauthorized",
                "missing or malformed Authorization header; expected 'Bearer <API key>'",
            )
        state = self.state
        with state.lock:
            refused = state.check_key(key)
            verdict = None if refused else state.take_token()
        if refused:
            call.rate_headers = self._peek_rate_headers()
            return self._error(call, 401, "unauthorized", refused)
        if verdict is None:
            return None
        call.rate_headers = verdict.headers()
        if verdict.allowed:
            return None
        message = (
            f"workspace rate limit of {verdict.limit} requests/minute exceeded; "
            f"retry after {verdict.retry_after}s"
        )
        return self._error(call, 429, "rate_limited", message)

    def _error(self, call: Call, status: int, etype: str, message: str, **extra: Any) -> Reply:
        """A JSON error reply, logged in the ledger at 0 credits."""
        log_call(self.state, call, status, etype, 0, 0)
        return Reply(
            status,
            error_body(call.request_id, etype, message, **extra),
            call.request_id,
            headers=list(call.rate_headers),
        )

    def _fault_error(self, call: Call, rule: FaultRule) -> Reply:
        """The reply of an ``error`` fault: JSON of the rule's type, or a proxy's HTML page."""
        headers = self._peek_rate_headers()
        if rule.retry_after is not None:
            value = rule.retry_after
            text = str(int(value)) if float(value).is_integer() else str(value)
            headers.append(("Retry-After", text))
        if rule.html:
            log_call(self.state, call, rule.status, None, 0, 0)
            page = html_body(rule.status)
            return Reply(
                rule.status, page, call.request_id, content_type="text/html; charset=utf-8", headers=headers
            )
        extra: dict[str, Any] = {}
        if rule.error_type == "insufficient_credits":
            extra["billing"] = refusal_billing(self.state.balance, 1)
        if rule.error_type == "validation_error":
            extra["issues"] = ["sandbox fault: injected validation error"]
        etype = rule.error_type or "internal_error"
        message = rule.message or f"sandbox fault: injected {rule.status} {etype}"
        log_call(self.state, call, rule.status, etype, 0, 0)
        body = error_body(call.request_id, etype, message, **extra)
        return Reply(rule.status, body, call.request_id, headers=headers)

    def _peek_rate_headers(self) -> list[tuple[str, str]]:
        """Rate-limit headers for a reply that does not consume a token (faults, 401, 404)."""
        with self.state.lock:
            verdict = self.state.peek_tokens()
        return verdict.headers() if verdict is not None else []
