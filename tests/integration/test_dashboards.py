"""No dead panels: every query of the shipped Grafana dashboard returns data from the live Prometheus while chaos
scenarios run under the operator, then under the stage controller, on the session's monitored cluster.

The scenarios are the ones whose faults light every panel: a rollout the operator rolls back by pinning its source
(actions, pins, time not Ready), a HelmRelease dependsOn cycle (HelmReleases, cycles), a dependency chain whose
root breaks (blocked dependents), and a rollout whose canary stage fails pod-ready and rolls back (the stages:
revisions and phases, promotions, rollbacks, failed revisions). A panel that a wrong metric name or label keeps
empty fails here.
"""

from __future__ import annotations

import json
import math
import threading
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from assertions import slo
from clusters.model import Cluster
from foundation.errors import HarnessError
from injectors.registry import FAULTS, fault
from scenarios.plugin import DEFAULT_SLO
from scenarios.recoveries import parse
from scenarios.runner import ScenarioRun

pytestmark = pytest.mark.monitoring
DASHBOARD = Path(str(resources.files("recovery") / "manifests" / "dashboards" / "flux-recovery.json"))
# Per recovery mode, in order: the operator's scenarios, then the stage controller's.
SCENARIOS = {
    "operator": ("unhealthy-rollout", "dependency-cycle-helm", "dependency-chain-blocked"),
    "staged": ("staged-unhealthy-rollout",),
}


def queries() -> dict[str, str]:
    """Every panel target as `panel title [refId]` -> PromQL."""
    out = {}
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel.get("targets") or []:
            out[f"{panel['title']} [{target['refId']}]"] = target["expr"]
    return out


def has_data(result: list[dict[str, Any]]) -> bool:
    """At least one series with a number (a NaN, e.g. a quantile of nothing, is an empty panel too)."""
    return any(math.isfinite(float(series["value"][1])) for series in result)


def test_the_dashboard_is_shipped_with_the_operators_manifests() -> None:
    kustomization = (DASHBOARD.parent.parent / "kustomization.yaml").read_text()
    assert "dashboards/flux-recovery.json" in kustomization
    assert len(queries()) >= 20


def test_every_dashboard_panel_returns_data_during_chaos_scenarios(cluster: Cluster, tmp_path: Path) -> None:
    monitoring = cluster.monitoring
    assert monitoring is not None
    pending = dict(queries())
    errors: list[str] = []
    stop = threading.Event()

    def probe() -> None:
        for name, expr in list(pending.items()):
            try:
                if has_data(monitoring.query(expr)):
                    pending.pop(name, None)  # the final probes run beside the poller
            except HarnessError as e:  # a query Prometheus refuses: report it, as a dead panel
                errors.append(f"{name}: {e}")
                pending.pop(name, None)

    def keep_probing() -> None:
        while not stop.wait(2.0):
            probe()

    budgets = slo.load(DEFAULT_SLO, FAULTS)
    poller = threading.Thread(target=keep_probing, daemon=True)
    poller.start()
    try:
        for recovery, names in SCENARIOS.items():
            mode = parse(recovery)
            mode.start(cluster, tmp_path)
            try:
                for name in names:
                    budget = budgets.budget(name, recovery)
                    result = ScenarioRun(cluster, fault(name), mode, budget, tmp_path, node_id=name).execute()
                    assert result.proven, f"{name} under {recovery}: {result.reason}"
                    if not pending:
                        break
            finally:
                probe()  # before the mode's exporters stop being scraped
                mode.stop()
    finally:
        stop.set()
        poller.join(timeout=30)
    probe()
    assert errors == []
    assert sorted(pending) == [], "panels without data during the scenarios"
