"""Argument checks: bad input is refused before any request is sent, as ``UnifAPIInputError(argument,
what to pass instead)``."""

from __future__ import annotations

import ipaddress
import re
from typing import Any
from urllib.parse import urlsplit

import httpx

from airflow_provider_unifapi.exceptions import UnifAPIInputError, UnifAPIInsecureURLError

DEFAULT_BASE_URL = "https://api.unifapi.com"
MAX_PAGE_SIZE = 50

_DIGITS = re.compile(r"[0-9]{1,64}")  # ASCII digits only: str.isdigit() accepts "١٢٣"
_HOST_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
_MAX_CURSOR_LENGTH = 4096
_MAX_NAME_LENGTH = 150


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def validate_hashtag_id(value: Any, argument: str = "hashtag_id") -> str:
    """Return the hashtag id (an int is accepted) as a string of ASCII digits, or raise.

    Nothing but ``^[0-9]+$`` passes, so an id can never change the request path (``/``, ``..``, ``%2F``).

    :param value: the id to check.
    :param argument: the argument name the error gives.
    """
    if isinstance(value, bool) or value is None:
        raise UnifAPIInputError(
            argument, f"expected a string of digits such as '7106594312292', got {value!r}"
        )
    if isinstance(value, int):
        if value < 0:
            raise UnifAPIInputError(argument, f"must not be negative, got {value}")
        value = str(value)
    if not isinstance(value, str) or not _DIGITS.fullmatch(value):
        raise UnifAPIInputError(
            argument,
            f"must be the numeric hashtag id as a string of digits (1-64 ASCII digits), got {_shown(value)}",
        )
    return value


def validate_limit(value: Any, argument: str = "limit") -> int:
    """Return ``value`` when it is an int from 1 to 50 (the API's page size), else raise.

    :param value: the page size to check.
    :param argument: the argument name the error gives.
    """
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PAGE_SIZE:
        raise UnifAPIInputError(argument, f"must be an integer from 1 to {MAX_PAGE_SIZE}, got {value!r}")
    return value


def check_encodable(argument: str, value: str) -> str:
    """Refuse text that cannot be sent (a lone surrogate), typed, instead of deep inside httpx."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise UnifAPIInputError(
            argument, "contains characters that cannot be encoded as UTF-8; pass valid Unicode text"
        ) from None
    return value


def validate_cursor(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > _MAX_CURSOR_LENGTH:
        raise UnifAPIInputError(
            "cursor", "must be None or the non-empty next_cursor string of an earlier page, passed unchanged"
        )
    return check_encodable("cursor", value)


def validate_max_credits(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UnifAPIInputError("max_credits", f"must be None or an integer >= 1, got {value!r}")
    return value


def validate_query(query: Any) -> str:
    if not isinstance(query, str) or not query.strip():
        raise UnifAPIInputError("query", f"must be a non-empty search keyword, got {query!r}")
    if len(query) > _MAX_NAME_LENGTH:
        raise UnifAPIInputError("query", f"must be at most {_MAX_NAME_LENGTH} characters")
    return check_encodable("query", query)


def validate_hashtag_name(name: Any) -> str:
    """The hashtag name without ``#`` and surrounding spaces."""
    cleaned = name.strip().lstrip("#").strip() if isinstance(name, str) else ""
    if not cleaned:
        raise UnifAPIInputError(
            "hashtag_name", f"must be a non-empty hashtag name such as 'cats', got {name!r}"
        )
    if len(cleaned) > _MAX_NAME_LENGTH or not cleaned.isprintable():
        raise UnifAPIInputError(
            "hashtag_name", f"must be printable text of at most {_MAX_NAME_LENGTH} characters"
        )
    return check_encodable("hashtag_name", cleaned)


def validate_max_pages(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UnifAPIInputError("max_pages", f"must be an integer >= 1, got {value!r}")
    return value


def validate_api_key(api_key: Any) -> str:
    if not isinstance(api_key, str) or not api_key.strip():
        raise UnifAPIInputError(
            "api_key", "is empty: set the UnifAPI API key as the connection's password (API key field)"
        )
    key = api_key.strip()
    if not key.isascii() or any(c.isspace() or not c.isprintable() for c in key):
        raise UnifAPIInputError(
            "api_key", "contains whitespace, control or non-ASCII characters; paste the key again"
        )
    return key


def is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _valid_host(host: str) -> bool:
    if host.startswith("[") or ":" in host:  # an IPv6 literal
        try:
            ipaddress.IPv6Address(host.strip("[]"))
        except ValueError:
            return False
        return True
    return len(host) <= 253 and all(_HOST_LABEL.fullmatch(label) for label in host.split("."))


def _split_url(base_url: Any, example: str) -> tuple[str, str, str]:
    if not isinstance(base_url, str) or not base_url.strip():
        raise UnifAPIInputError("base_url", f"must be {example}, got {base_url!r}")
    url = base_url.strip().rstrip("/")
    if not url.isascii() or any(c <= " " or c in "\\\x7f" for c in url):
        raise UnifAPIInputError(
            "base_url",
            f"must be {example}: ASCII without spaces, control characters or backslashes "
            "(write international domain names in punycode, xn--...)",
        )
    if "://" not in url:
        url = "https://" + url
    try:
        parts = urlsplit(url)
        host, _ = parts.hostname, parts.port  # .port raises on a port that is not a number in range
        httpx.URL(url)
    except (ValueError, httpx.InvalidURL):
        raise UnifAPIInputError("base_url", f"is not a valid URL; expected {example}") from None
    if parts.scheme not in ("http", "https") or not host:
        raise UnifAPIInputError("base_url", f"must be an http(s) URL: {example}")
    if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
        raise UnifAPIInputError(
            "base_url", "must not carry credentials, a query or a fragment: put the API key in the password"
        )
    return url, parts.scheme, host


def validate_base_url(base_url: Any) -> str:
    """Return the normalised base URL, refusing anything that would leak the key.

    ``https://`` is required, except to a loopback host (the sandbox). The host must be plain ASCII
    (punycode for international names) or an IP literal, so the key goes exactly where written.

    :param base_url: the URL to check (``https://`` is assumed when no scheme is written).
    """
    example = f"a URL such as {DEFAULT_BASE_URL!r}"
    url, scheme, host = _split_url(base_url, example)
    if not _valid_host(host):
        raise UnifAPIInputError("base_url", f"has an invalid host name {host!r}; expected {example}")
    if scheme == "http" and not is_loopback(host):
        raise UnifAPIInsecureURLError(
            "base_url",
            f"http:// would send the API key in clear text to {host!r}; use https:// "
            "(plain http is allowed only for loopback hosts such as the local sandbox)",
        )
    return url
