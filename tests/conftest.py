"""Shared test configuration: the cluster fixture, the integration marker for tests/integration, and a timeout
for every test of tests/ (set here, not in pyproject.toml: the scenarios share that file and run for many minutes)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ["clusters.pytest_plugin"]

# The helper modules of the test trees (not test modules, so pytest would not rewrite their asserts otherwise).
pytest.register_assert_rewrite("fakeclock", "reports_support", "validate_support", "scripted_runs", "recovery_support")

_TESTS = Path(__file__).parent
_INTEGRATION = _TESTS / "integration"

# Seconds per test, set-up and teardown included (pytest-timeout fails the test and the run goes on). A unit test
# has no business running for minutes; an integration test may first start the session's cluster (up to
# 10 minutes) and then wait minutes for Flux: modules that wait longer carry their own `pytest.mark.timeout`.
UNIT_TIMEOUT = 120
INTEGRATION_TIMEOUT = 1200


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # `--timeout` or PYTEST_TIMEOUT on the command line wins over these defaults (a marker would win over them).
    chosen = config.getoption("timeout", None) is not None or "PYTEST_TIMEOUT" in os.environ
    for item in items:
        path = Path(str(item.fspath))
        integration = _INTEGRATION in path.parents
        if integration:
            item.add_marker(pytest.mark.integration)
        if not chosen and _TESTS in path.parents and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(INTEGRATION_TIMEOUT if integration else UNIT_TIMEOUT))


_MARKS = ("process", "slow")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """One line: how many of the unit tests run start processes or let real time pass (tests/unit/conftest.py checks
    their marks), so their share stays visible. Here, not there: an xdist controller loads only this conftest."""
    reports = terminalreporter.stats.get("passed", []) + terminalreporter.stats.get("failed", [])
    ran = [r for r in reports if r.when == "call" and "tests/unit/" in r.nodeid]
    if not ran:
        return
    counts = {mark: sum(1 for r in ran if mark in r.keywords) for mark in _MARKS}
    seconds = {mark: sum(r.duration for r in ran if mark in r.keywords) for mark in _MARKS}
    parts = ", ".join(f"{counts[m]} marked {m} ({seconds[m]:.0f}s)" for m in _MARKS)
    terminalreporter.write_line(f"unit tests: {len(ran)} run, {parts}")
