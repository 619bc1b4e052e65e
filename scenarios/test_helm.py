"""The helm fault family under every selected recovery mode."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from assertions.verdict import RunResult
from injectors.registry import families


@pytest.mark.parametrize("fault_name", families()["helm"])
def test_helm_fault(fault_name: str, run_fault: Callable[[str], RunResult]) -> None:
    run_fault(fault_name)
