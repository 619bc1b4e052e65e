"""flux-tuned against the real controllers: the pinned binaries take the shard's gates and refuse one they do not
have; a flux-tuned run is reconciled by the shard alone, and a controller crash under it kills the shard's own
controller; a run whose shard stopped mid-run is invalid."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from assertions.slo import Budget, Limit
from assertions.verdict import RunResult, Verdict
from clusters import build
from clusters.model import Cluster
from fluxmodel import tuned
from injectors.registry import fault
from scenarios.recoveries import RecoveryMode, parse
from scenarios.runner import ScenarioRun

BUDGET = Budget(ttr=Limit(max=120.0))


def local_only(cluster: Cluster) -> None:
    if tuned.MODE not in cluster.flux_shards:
        pytest.skip("needs a local cluster with the flux-tuned shard")


@pytest.mark.parametrize("component", tuned.SHARDED)
def test_the_pinned_controller_takes_the_shards_gates_and_refuses_an_unknown_one(
    component: str, tmp_path: Path
) -> None:
    binary = build.require(component).binary(component)
    # No cluster: the controller reads its gates first, then fails on the missing kubeconfig.
    env = {**os.environ, "KUBECONFIG": str(tmp_path / "missing"), "HOME": str(tmp_path)}
    ports = ["--metrics-addr=127.0.0.1:0", "--health-addr=127.0.0.1:0"]

    def run(*flags: str) -> subprocess.CompletedProcess[str]:
        argv = [str(binary), *ports, *flags]
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)

    accepted = run(*tuned.controller_flags(component))
    for gate in tuned.GATES[component]:
        assert f'"msg":"loading feature gate","{gate}":true' in accepted.stdout + accepted.stderr, gate
    assert "not supported" not in accepted.stdout + accepted.stderr
    refused = run("--feature-gates=NoSuchRecoveryGate=true")
    assert refused.returncode == 1
    assert "feature-gate 'NoSuchRecoveryGate' not supported" in refused.stdout + refused.stderr


def execute(cluster: Cluster, name: str, mode: RecoveryMode, tmp_path: Path, hook: Any = None) -> RunResult:
    mode.start(cluster, tmp_path)
    try:
        return ScenarioRun(cluster, fault(name), mode, BUDGET, tmp_path, node_id=name, hook=hook).execute()
    finally:
        mode.stop()


class HoldDuringRecovery:
    """A plugin of the run's steps: hold (stop) a controller for a few seconds as the recovery wait begins."""

    def __init__(self, cluster: Cluster, component: str):
        self.cluster, self.component = cluster, component

    def pytest_resilience_step(self, run: ScenarioRun, name: str) -> list[Any]:
        return [self._hold()] if name.startswith("recover under") else []

    @contextmanager
    def _hold(self) -> Iterator[None]:
        assert self.cluster.control is not None
        self.cluster.control.hold(self.component, 3.0)
        yield

    def pytest_resilience_annotate(self, result: RunResult) -> None:
        return None


def test_a_run_whose_shard_stopped_mid_run_is_invalid(cluster: Cluster, tmp_path: Path) -> None:
    local_only(cluster)
    stopped = tuned.shard("kustomize-controller")
    result = execute(
        cluster, "dependency-chain-blocked", parse("flux-tuned"), tmp_path, HoldDuringRecovery(cluster, stopped)
    )
    assert result.verdict is Verdict.INVALID, result.reason
    assert f"{stopped} stopped mid-run" in result.reason


def test_a_flux_tuned_run_is_reconciled_by_the_shard_alone_and_its_crash_kills_the_shards_controller(
    cluster: Cluster, tmp_path: Path
) -> None:
    """(Every integration run under `none` proves the other half: the judge makes it invalid if the shard acted.)"""
    local_only(cluster)
    result = execute(cluster, "controller-crash-kustomize", parse("flux-tuned"), tmp_path)
    assert result.verdict in (Verdict.PASS, Verdict.BREACH, Verdict.NOT_RECOVERED), result.reason
    assert "killed kustomize-controller-tuned pid" in str(result.diagnostics.proof)
    record = result.reconcilers
    assert record is not None and record.shard == tuned.MODE and record.stops == [], record
    assert record.controllers and all(tuned.is_shard(name) for name in record.controllers), record
    # The run's attachments show what ran: the shard's command lines with their gates.
    kc = (result.diagnostics.controllers or {})[tuned.shard("kustomize-controller")]
    assert any(arg.startswith("--feature-gates=CancelHealthCheckOnNewRevision=true") for arg in kc), kc
