"""Staged faults: each change with and without a StagedKustomization in front of production (modes none, staged)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from assertions.verdict import RunResult
from injectors.registry import families


@pytest.mark.parametrize("fault_name", families()["staged"])
def test_staged_fault(fault_name: str, run_fault: Callable[[str], RunResult]) -> None:
    run_fault(fault_name)
