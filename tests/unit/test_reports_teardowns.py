"""Fixture teardowns in the Allure results: a real name and their real outcome for each, never `<lambda>`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from reports_support import make_suite, run_pytest

FIXTURES = """
import pytest


@pytest.fixture(scope="session")
def cluster():
    yield "cluster"


@pytest.fixture
def plain():
    return 1


@pytest.fixture
def undone():
    yield 2


@pytest.fixture
def broken_revert():
    yield 3
    raise RuntimeError("revert failed")


@pytest.fixture
def closer(request):
    request.addfinalizer(lambda: None)
    return 4


@pytest.fixture(params=["none", "operator"])
def recovery_name(request):
    return request.param


def test_run(cluster, plain, undone, closer, recovery_name):
    pass


def test_revert(broken_revert):
    pass
"""


def containers(results: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(results.glob("*-container.json"))]


@pytest.mark.process
def test_teardowns_have_names_and_statuses(tmp_path: Path) -> None:
    root = make_suite(tmp_path / "suite", scenarios=FIXTURES, conftest="")
    proc = run_pytest(root, "--alluredir", "allure-results")
    assert "3 passed, 1 error" in proc.stdout, proc.stdout
    found = containers(root / "allure-results")
    befores = [f["name"] for c in found for f in c.get("befores", [])]
    assert {"cluster", "plain", "undone", "broken_revert", "closer", "recovery_name"} <= set(befores)
    afters = {f["name"]: f.get("status") for c in found for f in c.get("afters", [])}
    assert afters == {
        "cluster::teardown": "passed",
        "undone::teardown": "passed",
        "closer::teardown": "passed",
        "broken_revert::teardown": "broken",
    }
    steps = [s["name"] for c in found for f in c.get("befores", []) + c.get("afters", []) for s in f.get("steps", [])]
    assert not any("<lambda>" in name for name in befores + steps)


@pytest.mark.process
def test_without_alluredir_teardowns_run_as_before(tmp_path: Path) -> None:
    root = make_suite(tmp_path / "suite", scenarios=FIXTURES, conftest="")
    proc = run_pytest(root)
    assert "3 passed, 1 error" in proc.stdout and "RuntimeError: revert failed" in proc.stdout, proc.stdout
