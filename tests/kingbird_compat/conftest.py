"""Kingbird's own tests against Skyfleet: the counts of each suite are printed at the end of the run."""

from __future__ import annotations

from typing import Any

import pytest

REPORTS: list[str] = []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if REPORTS:
        terminalreporter.section("Kingbird 1.3.0's own tests against Skyfleet")
        for text in REPORTS:
            terminalreporter.write_line(text)


@pytest.fixture(scope="session")
def kingbird_reports() -> list[str]:
    return REPORTS
