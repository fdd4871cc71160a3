"""Browser tests of the connection form in Airflow 3's UI: run only by ``make ui-test``.

``scripts/ui_test.sh`` starts the sandbox and Airflow's api-server on 127.0.0.1, then runs these
tests with ``UNIFAPI_UI_TEST=1`` and the servers' URLs in the environment. Without that variable
(``make test``), nothing here is collected.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ENABLED = os.environ.get("UNIFAPI_UI_TEST") == "1"
collect_ignore_glob = [] if ENABLED else ["test_*.py"]

REPO = Path(__file__).resolve().parents[2]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "ui: drives Airflow's UI in Chromium (make ui-test)")


def env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} is not set: run these tests with `make ui-test`")
    return value


@pytest.fixture(scope="session")
def airflow_url() -> str:
    return env("UNIFAPI_UI_AIRFLOW_URL")


@pytest.fixture(scope="session")
def sandbox_url() -> str:
    return env("UNIFAPI_UI_SANDBOX_URL")


class Secret:
    """The API key, kept out of pytest's tracebacks (which print a failing test's arguments)."""

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"


@pytest.fixture(scope="session")
def api_key() -> Secret:
    """This run's key: the sandbox accepts only it (so a passing Test proves the form sent it)."""
    return Secret(env("UNIFAPI_UI_API_KEY"))


@pytest.fixture(scope="session")
def screenshots() -> Path:
    folder = Path(os.environ.get("UNIFAPI_UI_SCREENSHOTS") or REPO / "docs" / "img")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def page(airflow_url: str) -> Iterator[Any]:
    """One Chromium page (Debian's chromium: Playwright's own browser download is not needed)."""
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        raise RuntimeError("chromium is not installed: `make ui-test` installs it with apt-get")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable)
        context = browser.new_context(viewport={"width": 1100, "height": 760}, base_url=airflow_url)
        context.set_default_timeout(30_000)
        try:
            yield context.new_page()
        finally:
            context.close()
            browser.close()
