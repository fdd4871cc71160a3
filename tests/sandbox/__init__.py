"""Tests of the local UnifAPI sandbox, over real HTTP on loopback.

Helpers shared by the ``test_sandbox_*`` modules live here (each module starts its own
``SandboxServer`` in a module-scoped fixture, so these tests need nothing from ``tests/conftest.py``).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import httpx
from openapi_schema_validator import OAS30Validator

from airflow_provider_unifapi.sandbox import SandboxServer

SPEC_PATH = Path(__file__).resolve().parents[1] / "spec" / "unifapi-openapi-tiktok-subset.json"
#: A key that looks real, so leak checks would find it anywhere it leaked.
KEY = "sk_test_sbx_" + secrets.token_hex(12)
PAGE_SCHEMA = "_tiktok_hashtags__id__videos_get_200_response"
HASHTAG_SCHEMA = "_tiktok_hashtags__id__get_200_response"
SEARCH_SCHEMA = "_tiktok_search_hashtags_get_200_response"
ERROR_SCHEMA = "ErrorResponse"


@cache
def _validator(name: str) -> OAS30Validator:
    # OAS30Validator: the file says 3.1.0 but marks nullable fields with the 3.0 ``nullable`` keyword.
    # A document holding the $ref plus the components resolves "#/components/schemas/..." itself.
    spec = json.loads(SPEC_PATH.read_text())
    return OAS30Validator({"$ref": f"#/components/schemas/{name}", "components": spec["components"]})


def validate(name: str, doc: Any) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``doc`` matches ``components.schemas[name]``."""
    _validator(name).validate(doc)


def is_valid(name: str, doc: Any) -> bool:
    """Whether ``doc`` matches ``components.schemas[name]``."""
    return _validator(name).is_valid(doc)


def serve(**settings: Any) -> Iterator[SandboxServer]:
    """Generator for module fixtures: a started sandbox, stopped afterwards."""
    server = SandboxServer(**settings).start()
    try:
        yield server
    finally:
        server.stop()


def api_client(server: SandboxServer, key: str | None = KEY, **kwargs: Any) -> httpx.Client:
    """An httpx client for the API endpoints, authenticated with ``key``."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=server.url, headers=headers, timeout=kwargs.pop("timeout", 10), **kwargs)


def admin_client(server: SandboxServer) -> httpx.Client:
    """An httpx client for ``/_sandbox`` (no auth)."""
    return httpx.Client(base_url=server.url, timeout=30)


def page_all(
    client: httpx.Client, hashtag_id: str, limit: int, check: bool = False
) -> tuple[list[str], list[dict[str, Any]]]:
    """Follow cursors from the start; returns (unique ids in order of first appearance, pages)."""
    ids: list[str] = []
    seen: set[str] = set()
    pages: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        resp = client.get(f"/tiktok/hashtags/{hashtag_id}/videos", params=params)
        assert resp.status_code == 200, resp.text
        doc = resp.json()
        if check:
            validate(PAGE_SCHEMA, doc)
        pages.append(doc)
        for video in doc["data"]:
            if video["id"] not in seen:
                seen.add(video["id"])
                ids.append(video["id"])
        pagination = doc["pagination"]
        assert (pagination["next_cursor"] is None) == (pagination["has_more"] is False)
        if not pagination["has_more"]:
            return ids, pages
        cursor = pagination["next_cursor"]
        assert len(pages) < 100_000, "paging does not end"
