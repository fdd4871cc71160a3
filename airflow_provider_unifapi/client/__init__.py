"""Pure httpx client of the UnifAPI TikTok hashtag endpoints, sync and async (README, "The pure client").

Imports nothing from Airflow. Names are imported on first use, so ``client.config`` (which
``get_provider_info`` reads on every ``airflow`` command) does not pull in httpx and pydantic.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_unifapi.client.async_client import AsyncUnifAPIClient as AsyncUnifAPIClient
    from airflow_provider_unifapi.client.calls import PROBE_CREDITS as PROBE_CREDITS
    from airflow_provider_unifapi.client.calls import PROBE_QUERY as PROBE_QUERY
    from airflow_provider_unifapi.client.config import ClientConfig as ClientConfig
    from airflow_provider_unifapi.client.paging import ResolvedHashtag as ResolvedHashtag
    from airflow_provider_unifapi.client.paging import VideoPager as VideoPager
    from airflow_provider_unifapi.client.sync_client import UnifAPIClient as UnifAPIClient
    from airflow_provider_unifapi.client.validation import DEFAULT_BASE_URL as DEFAULT_BASE_URL
    from airflow_provider_unifapi.client.validation import MAX_PAGE_SIZE as MAX_PAGE_SIZE
    from airflow_provider_unifapi.client.validation import validate_hashtag_id as validate_hashtag_id
    from airflow_provider_unifapi.client.validation import validate_limit as validate_limit

#: public name -> the submodule that defines it
_HOMES = {
    "AsyncUnifAPIClient": "async_client",
    "ClientConfig": "config",
    "DEFAULT_BASE_URL": "validation",
    "MAX_PAGE_SIZE": "validation",
    "PROBE_CREDITS": "calls",
    "PROBE_QUERY": "calls",
    "ResolvedHashtag": "paging",
    "UnifAPIClient": "sync_client",
    "VideoPager": "paging",
    "validate_hashtag_id": "validation",
    "validate_limit": "validation",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
