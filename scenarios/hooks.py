"""Hooks the chaos suite declares for other plugins (the reports plugin implements them)."""

from __future__ import annotations

import pytest

from assertions.verdict import RunResult


@pytest.hookspec
def pytest_resilience_run_result(result: RunResult, item: pytest.Item) -> None:
    """Called once per finished scenario run (every verdict, invalid included), on the process that ran it."""


@pytest.hookspec
def pytest_resilience_environment(environment: dict[str, str]) -> None:
    """Called once per session with what the runs ran on (Kubernetes, Flux, provider); plugins may add keys."""
