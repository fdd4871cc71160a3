"""The chaos suite's marker and its report.

The ``chaos`` marker is declared here (not in pyproject.toml) so ``pytest -m chaos tests/chaos``
selects the suite; the default run (``make test``) runs its short version too. At the end of the
session the figures of every run are printed and, with ``CHAOS_REPORT=path``, written as JSON for
``scripts/chaos_report.py``.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.chaos import report


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "chaos: reliability suite (fault plans, kills, concurrency, soak); short by default, long under make chaos",
    )


def pytest_terminal_summary(terminalreporter: Any) -> None:
    lines = report.summary_lines()
    if lines:
        terminalreporter.section("chaos figures")
        for line in lines:
            terminalreporter.write_line(line)


def pytest_sessionfinish(session: pytest.Session) -> None:
    target = os.environ.get("CHAOS_REPORT", "").strip()
    if target and report.runs():
        report.write(target)
