"""Every fault of the catalog produces its real signature from the real controllers (Flux alone, no recovery;
a fault of the recovery's own process, such as the stage controller killed, runs under that recovery).

Each run sets up its own app, injects, waits until the signature shows on the Flux object (or, for crashes,
until the supervisor recorded the killed controller's restart), and reverts; nothing is timed here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from assertions.slo import Budget, Limit
from clusters.model import Cluster
from fluxmodel.kinds import GIT_REPOSITORY, KUSTOMIZATION
from foundation.waiting import poll
from injectors.base import Fault
from injectors.registry import CATALOG
from scenarios.recoveries import RecoveryMode, parse
from scenarios.runner import ScenarioRun


@pytest.mark.parametrize("fault", CATALOG, ids=[f.name for f in CATALOG])
def test_fault_shows_its_real_signature(fault: Fault, cluster: Cluster, tmp_path: Path) -> None:
    if fault.family == "control-plane" and cluster.control is None:
        pytest.skip("needs the local provider's supervisor")
    mode = RecoveryMode("none") if fault.runs_under("none") else parse("staged")
    assert fault.runs_under(mode.name), f"{fault.name} runs under neither none nor staged"
    mode.start(cluster, tmp_path)
    try:
        # Nothing is timed here (prove_only): the budget only has to be one the judge can read.
        budget = Budget(ttr=Limit(max=600.0))
        run = ScenarioRun(cluster, fault, mode, budget, tmp_path, prove_only=True, node_id=fault.name)
        result = run.execute()
    finally:
        mode.stop()
    assert result.proven and not (result.invalid or result.harness_errors), result.reason
    assert result.timeline.has("visible"), f"{fault.name}: signature never seen"
    if fault.signature is not None:
        assert result.signature == fault.signature.name
    # The revert left nothing of the run behind (deletions finish asynchronously, behind finalizers).
    assert not result.revert_problems
    app_prefix = fault.name[:24].rstrip("-")

    def leftovers() -> list[str]:
        return [
            o["metadata"]["name"]
            for kind in (KUSTOMIZATION, GIT_REPOSITORY)
            for o in cluster.kube.list(kind.api_version, kind.kind, cluster.bootstrap.flux_namespace)
            if o["metadata"]["name"].startswith(app_prefix)
        ]

    assert poll(leftovers, 60, 0.5, done=lambda names: not names) == []
