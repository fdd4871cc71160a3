"""Fixtures shared by the sandbox tests: each module defines its own ``server``; these wrap it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from airflow_provider_unifapi.sandbox import SandboxServer
from tests.sandbox import admin_client, api_client


@pytest.fixture
def admin(server: SandboxServer) -> Iterator[httpx.Client]:
    """Admin API client; the workspace is reset to the module's settings first."""
    server.state.reset()
    with admin_client(server) as c:
        yield c


@pytest.fixture
def client(server: SandboxServer, admin: httpx.Client) -> Iterator[httpx.Client]:
    """API client with a valid key (after the reset done by ``admin``)."""
    with api_client(server) as c:
        yield c
