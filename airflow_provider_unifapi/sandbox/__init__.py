"""Local UnifAPI sandbox: the spec's endpoints with deterministic data, billing, rate limits,
fault plans and a call ledger, for development and tests without spending credits.

Standard library only; it never imports Airflow or the provider's client.

>>> from airflow_provider_unifapi.sandbox import SandboxServer
>>> with SandboxServer(balance=1_000) as sandbox:  # doctest: +SKIP
...     print(sandbox.url)
"""

from __future__ import annotations

from airflow_provider_unifapi.sandbox.server import SandboxServer
from airflow_provider_unifapi.sandbox.settings import HashtagDef, Settings
from airflow_provider_unifapi.sandbox.state import SandboxState

__all__ = ["HashtagDef", "SandboxServer", "SandboxState", "Settings"]
