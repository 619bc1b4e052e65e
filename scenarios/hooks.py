"""Hooks the chaos suite declares for other plugins (the reports plugin implements them)."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import pytest

from assertions.verdict import RunResult

if TYPE_CHECKING:
    from scenarios.runner import ScenarioRun


@pytest.hookspec
def pytest_resilience_annotate(result: RunResult) -> None:
    """Called once per scenario run right before the runner judges it, on the process that ran it: add the notes
    the verdict's reason must carry (`result.notes`); never judge (a run is judged once)."""


@pytest.hookspec
def pytest_resilience_run_result(result: RunResult, item: pytest.Item) -> None:
    """Called once per finished scenario run (every verdict, invalid included), on the process that ran it; the
    run is judged: read `result.judgement`, never judge again."""


@pytest.hookspec
def pytest_resilience_reused_run(entry: dict[str, Any], item: pytest.Item) -> None:
    """Called instead of pytest_resilience_run_result for a baseline run reused from the store
    (scenarios.baseline_store): its summary entry, with `reused` saying when and on which run it was measured."""


@pytest.hookspec
def pytest_resilience_step(run: ScenarioRun, name: str) -> AbstractContextManager[object] | None:
    """A phase of a scenario run begins (`name` is what a reader sees: "inject selector-change", "revert"), on the
    process that runs it: each context manager returned is entered now and left when the phase ends, with the
    exception that ended it, if any (the reports plugin returns an Allure step)."""


@pytest.hookspec
def pytest_resilience_environment(environment: dict[str, str]) -> None:
    """Called once per session with what the runs ran on (Kubernetes, Flux, provider); plugins may add keys."""


@pytest.hookspec
def pytest_resilience_plan(plan: dict[str, Any]) -> None:
    """What the session is meant to cover, in two calls on every process (scenarios.sharding): at configure time
    `run`, `profile`, `slo`, `shard` ([I, N]) and `earlier_runs`; after collection `digest` and `matrix` (one
    [fault, recovery, repeat, shard, test node id] per selected cell of every shard). Later keys update earlier ones."""
