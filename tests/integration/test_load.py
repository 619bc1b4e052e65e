"""Load during a fault on a real cluster: teams deliver through the real Flux controllers, locust's master and
workers record every delivery once, windows cut them around the fault, the Service's Ready endpoints are counted,
and the revert removes every team. A dependsOn cycle stops the delivery of the teams on the faulted app's source
and of no other team (kustomize-controller#1712): the blast radius the load exists to show."""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from pathlib import Path

from assertions.load_profiles import LoadProfile
from assertions.slo import Budget, Limit
from assertions.verdict import RunResult
from clusters.model import Cluster
from fluxmodel.kinds import GIT_REPOSITORY, KUSTOMIZATION
from foundation.waiting import poll
from injectors.registry import fault
from loadgen.run import LoadPlan
from loadgen.spec import CSV_PREFIX, HTML, REQUESTS
from scenarios.recoveries import parse
from scenarios.runner import ScenarioRun

FLUX = "flux-system"
SMALL = LoadProfile("small", {"same-source": 2, "other-source": 2}, every=4, deadline=25, baseline=15, after=6)
LOAD_BUDGET = {"p95_ratio": {"same-source": 2, "other-source": 2}, "failed": 0, "downtime": 0}


def run(cluster: Cluster, tmp_path: Path, name: str, mode: str, load: LoadPlan, budget: Budget) -> RunResult:
    recovery = parse(mode)
    recovery.start(cluster, tmp_path)
    try:
        return ScenarioRun(cluster, fault(name), recovery, budget, tmp_path, node_id=name, load=load).execute()
    finally:
        recovery.stop()


def leftovers(cluster: Cluster, result: RunResult) -> list[str]:
    """Team objects of the run still in the cluster or in Git after its revert (deletions take a moment)."""
    return poll(lambda: _leftovers(cluster, result), 60, 1.0, done=lambda found: not found)


def _leftovers(cluster: Cluster, result: RunResult) -> list[str]:
    found = []
    for kind in (KUSTOMIZATION, GIT_REPOSITORY):
        for obj in cluster.kube.list(kind.api_version, kind.kind, FLUX):
            if "-load-" in obj["metadata"]["name"]:
                found.append(f"{kind.kind}/{obj['metadata']['name']}")
    tracked = subprocess.run(["git", "ls-files"], cwd=cluster.git.work, capture_output=True, text=True, check=True)
    found += [f"git: {path}" for path in tracked.stdout.splitlines() if "-load/" in path]
    found += [
        f"Namespace/{n}"
        for n in (o["metadata"]["name"] for o in cluster.kube.list("v1", "Namespace"))
        if n.endswith("-load") and n.startswith(result.fault)
    ]
    return found


def test_a_selector_fault_under_the_operator_with_distributed_load(cluster: Cluster, tmp_path: Path) -> None:
    budget = Budget(ttr=Limit(max=90), wait=150, measures={"load": LOAD_BUDGET})
    result = run(cluster, tmp_path, "selector-change", "operator", LoadPlan(SMALL, "small", workers=2), budget)
    assert result.proven and not result.invalid and not result.harness_errors, result.reason
    assert result.timeline.has("recovered"), result.reason
    measured = result.measurements["load"]
    assert measured["profile"] == "small" and set(measured["groups"]) == {"same-source", "other-source"}
    for group, windows in measured["groups"].items():
        assert windows["baseline"]["done"] > 0 and windows["baseline"]["failed"] == 0, (group, windows)
        assert windows["after"]["done"] > 0, (group, windows)
    # Blue-green: a serving copy before the original goes, so the Service never lost its last Ready endpoint.
    assert measured["downtime_seconds"] == 0.0
    assert result.load_diagnostics is not None
    series = result.load_diagnostics.series
    assert series["serving"] and all(count > 0 for at, count in series["serving"] if at >= 0)
    out = tmp_path / "load" / "selector-change"
    records = [json.loads(line) for line in (out / REQUESTS).read_text().splitlines()]
    teams = {r["team"] for r in records}
    assert teams == {"same-1", "same-2", "other-1", "other-2"}  # each team ran on one worker, recorded once
    assert len(list(out.glob("process-worker-*.json"))) == 2
    assert (out / f"{CSV_PREFIX}_stats.csv").read_text().count("delivery") >= 2
    assert "locust" in (out / HTML).read_text().lower()
    assert set(result.load_diagnostics.files) >= {"locust stats (CSV)", "locust report (HTML)"}
    assert result.load_diagnostics.baseline_cpu["cpu_seconds"] >= 0
    assert leftovers(cluster, result) == []


def test_a_dependency_cycle_blocks_only_the_teams_on_its_source(cluster: Cluster, tmp_path: Path) -> None:
    # Flux alone, and a short wait: the fault is not recovered, which is what the other teams live through. The
    # deadline leaves the other teams' deliveries room on a host busy with other workers' clusters (make test).
    profile = replace(SMALL, deadline=25.0)
    budget = Budget(ttr=Limit(max=45), wait=60, measures={"load": LOAD_BUDGET})
    result = run(cluster, tmp_path, "dependency-cycle", "none", LoadPlan(profile, "small"), budget)
    assert result.proven and not result.harness_errors, result.reason
    measured = result.measurements["load"]
    same, other = measured["groups"]["same-source"], measured["groups"]["other-source"]
    assert same["baseline"]["done"] > 0 and same["baseline"]["failed"] == 0
    assert same["during"]["failed"] > 0, same  # kustomize-controller no longer enqueues the source's objects
    assert other["during"]["failed"] == 0 and other["during"]["done"] > 0, other
    # Failed deliveries put a team in the blast radius; the other teams' are there only if they slowed down.
    assert {"same-1", "same-2"} <= set(measured["blast_radius"])
    assert measured["downtime_seconds"] is None  # the cycle's app is ConfigMaps: nothing serves
    assert "failed deliveries (same-source during" in result.reason
    assert leftovers(cluster, result) == []
