"""Control-plane faults (controller crashes, source outage): they need the local provider's supervisor."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from assertions.verdict import RunResult
from clusters.model import Cluster
from injectors.registry import families


@pytest.mark.parametrize("fault_name", families()["control-plane"])
def test_control_plane_fault(fault_name: str, cluster: Cluster, run_fault: Callable[[str], RunResult]) -> None:
    if cluster.control is None:
        pytest.skip(f"{fault_name} needs process control of the cluster (--provider local)")
    run_fault(fault_name)
