"""Selector faults: immutable spec.selector changes reaching a live Deployment through Git."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from assertions.verdict import RunResult
from injectors.registry import families


@pytest.mark.parametrize("fault_name", families()["selector"])
def test_selector_fault(fault_name: str, run_fault: Callable[[str], RunResult]) -> None:
    run_fault(fault_name)
