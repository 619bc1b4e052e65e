"""Hooks the chaos suite declares for other plugins (the reports plugin implements them)."""

from __future__ import annotations

from typing import Any

import pytest

from assertions.verdict import RunResult


@pytest.hookspec
def pytest_resilience_run_result(result: RunResult, item: pytest.Item) -> None:
    """Called once per finished scenario run (every verdict, invalid included), on the process that ran it."""


@pytest.hookspec
def pytest_resilience_environment(environment: dict[str, str]) -> None:
    """Called once per session with what the runs ran on (Kubernetes, Flux, provider); plugins may add keys."""


@pytest.hookspec
def pytest_resilience_plan(plan: dict[str, Any]) -> None:
    """What the session is meant to cover, in two calls on every process (scenarios.sharding): at configure time
    `run`, `profile`, `slo`, `shard` ([I, N]) and `earlier_runs`; after collection `digest` and `matrix` (one
    [fault, recovery, repeat, shard, test node id] per selected cell of every shard). Later keys update earlier ones."""
