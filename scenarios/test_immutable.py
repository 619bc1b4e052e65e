"""Immutable-field faults (Service clusterIP, Job template, StatefulSet claims) under every recovery mode."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from assertions.verdict import RunResult
from injectors.registry import families


@pytest.mark.parametrize("fault_name", families()["immutable-field"])
def test_immutable_fault(fault_name: str, run_fault: Callable[[str], RunResult]) -> None:
    run_fault(fault_name)
