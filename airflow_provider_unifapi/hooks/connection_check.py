"""The connection's Test button: one paid hashtag search; the message names cause and cost, never the key."""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_unifapi import exceptions
from airflow_provider_unifapi.client import ClientConfig, UnifAPIClient
from airflow_provider_unifapi.client.validation import is_loopback
from airflow_provider_unifapi.exceptions import UnifAPIError

_TRANSIENT_ID = re.compile(r"[A-Za-z0-9]{8}")
_DNS = (
    "name or service not known",
    "temporary failure in name resolution",
    "nodename nor servname",
    "getaddrinfo",
)
_TLS = ("ssl", "certificate", "tls", "wrong_version_number", "record layer")
_REFUSED = ("connection refused", "errno 111", "actively refused")


def is_ui_test_id(conn_id: str) -> bool:
    """True for the random id (8 mixed-case letters and digits, in an env var) Airflow's connection
    test gives a temporary copy of the connection: it means nothing to the user."""
    if not _TRANSIENT_ID.fullmatch(conn_id) or conn_id.islower():
        return False
    return f"AIRFLOW_CONN_{conn_id.upper()}" in os.environ


def connection_name(conn_id: str) -> str:
    return "this connection" if is_ui_test_id(conn_id) else f"connection {conn_id!r}"


def invalid_settings(name: str, exc: UnifAPIError) -> str:
    return f"The settings of {name} are invalid: {exc}. Nothing was sent; this check cost 0 credits."


def check_connection(conn_id: str, conn: Any, base_url: str) -> tuple[bool, str]:
    """``(ok, message)`` of the cheapest paid call there is (a hashtag search, ``limit=1``); never raises."""
    name = connection_name(conn_id)
    if not (conn.password or "").strip():
        return False, (
            f"The API key of {name} is empty: put the UnifAPI workspace key in the 'API key' (password) "
            f"field. Nothing was sent to {base_url}; this check cost 0 credits."
        )
    ui_test = is_ui_test_id(conn_id)
    try:
        config = ClientConfig.from_extras(conn.extra_dejson or {}, where="connection" if ui_test else name)
        # One attempt: a Test button should answer in seconds and say what happened, not retry it away.
        client = UnifAPIClient(conn.password, base_url, **{**config.client_kwargs(), "max_retries": 0})
    except UnifAPIError as exc:
        return False, invalid_settings(name, exc)
    try:
        page = client.search_hashtags("tiktok", limit=1)
    except UnifAPIError as exc:
        return explain_failure(exc, name, client.base_url, schemeless=_schemeless(conn))
    except Exception as exc:  # never raise from test_connection
        return False, f"Unexpected error testing {name} at {client.base_url}: {type(exc).__name__}"
    finally:
        client.close()
    billing = page.billing
    named = "" if ui_test else f" for {name}"
    return True, (
        f"API key accepted by {client.base_url}{named} (hashtag search, request_id {page.request_id}); "
        f"this check cost {billing.credits_charged} credit(s); balance now {billing.balance_remaining}."
    )


def explain_failure(exc: UnifAPIError, name: str, url: str, *, schemeless: bool) -> tuple[bool, str]:
    if exc.error_type == "insufficient_credits":
        return True, (
            f"API key accepted by {url} for {name}, but the workspace balance is too low "
            f"(balance {exc.balance_remaining}); this check cost 0 credits."
        )
    if isinstance(exc, exceptions.UnifAPIUnauthorizedError):
        cause = (
            f"UnifAPI at {url} refused the API key of {name} (401 unauthorized): check the 'API key' "
            "field, or create a key in the UnifAPI dashboard"
        )
    elif isinstance(exc, exceptions.UnifAPITransportError):
        cause = _transport_cause(exc, name, url, schemeless)
    elif _not_unifapi(exc):
        cause = (
            f"{url} is not a UnifAPI server: it answered {exc.status} without UnifAPI's response envelope. "
            f"Check the Base URL (and Port) of {name}"
        )
    else:
        cause = f"UnifAPI at {url} refused the check of {name}: {exc}"
    return False, f"{cause}{'' if cause.endswith('?') else '.'} {_cost(exc)}"


def _transport_cause(exc: UnifAPIError, name: str, url: str, schemeless: bool) -> str:
    text = _chain_text(exc)
    parts = urlsplit(url)
    host = parts.hostname or url
    if isinstance(exc, exceptions.UnifAPITimeoutError):
        return (
            f"Cannot connect to {url} ({name}): no answer in time (timeout); is the server up and reachable?"
        )
    if any(marker in text for marker in _TLS):
        return _tls_cause(url, name, schemeless)
    if any(marker in text for marker in _DNS):
        return f"Cannot connect to {url} ({name}): the host name {host!r} does not resolve (DNS); check the Base URL"
    if any(marker in text for marker in _REFUSED):
        return (
            f"Cannot connect to {url} ({name}): connection refused, nothing listens on {parts.netloc}; "
            "is the server (or the sandbox) running, and are the Base URL and Port right?"
        )
    return f"Cannot connect to {url} ({name}): {exc.message}"


def _tls_cause(url: str, name: str, schemeless: bool) -> str:
    parts = urlsplit(url)
    cause = f"The TLS handshake with {url} ({name}) failed"
    if not (schemeless or is_loopback(parts.hostname or "")):
        return f"{cause}; for a private CA set 'CA bundle path'"
    hint = f"{cause}: did you mean http://{parts.netloc} for a local sandbox?"
    if not is_loopback(parts.hostname or ""):
        hint += " (plain http is accepted only for loopback hosts such as 127.0.0.1 and localhost)"
    return hint


def _not_unifapi(exc: UnifAPIError) -> bool:
    if isinstance(exc, exceptions.UnifAPIUnexpectedStatusError):
        return "without a UnifAPI error envelope" in exc.message
    return isinstance(exc, exceptions.UnifAPIInvalidResponseError) and not isinstance(
        exc, exceptions.UnifAPIResponseTooLargeError
    )


def _cost(exc: UnifAPIError) -> str:
    if _not_unifapi(exc):
        return "This check cost 0 credits (a server that is not UnifAPI bills nothing)."
    if exc.possibly_billed_credits:
        return (
            f"This check may have cost {exc.possibly_billed_credits} credit(s): the request was sent and "
            "its answer lost."
        )
    return "This check cost 0 credits."


def _chain_text(exc: BaseException) -> str:
    """Lower-cased text of the error and those it was raised from (the httpx / OS error)."""
    seen: list[str] = []
    current: BaseException | None = exc
    while current is not None and len(seen) < 10:
        seen.append(f"{type(current).__name__}: {current}")
        current = current.__cause__ or current.__context__
    return " | ".join(seen).lower()


def _schemeless(conn: Any) -> bool:
    host = (conn.host or "").strip()
    return bool(host) and "://" not in host and conn.schema not in ("http", "https")
