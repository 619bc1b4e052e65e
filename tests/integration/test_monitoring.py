"""Monitoring beside a real local cluster: Prometheus scrapes Flux, the API server and the recovery exporters,
evaluates the shipped rules, and an alert from a real dependsOn cycle reaches the harness's receiver and resolves.

Marked `monitoring`: collecting these tests starts the session's cluster with monitoring (clusters.pytest_plugin).
"""

from __future__ import annotations

import json
import secrets
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clusters.model import Cluster
from fluxmodel import signatures as sig
from fluxmodel import tuned
from fluxmodel.annotations import RECOVERY_MODE_LABEL
from fluxmodel.kinds import FLUX_NAMESPACE, KUSTOMIZATION, ObjectRef
from foundation.waiting import wait_until
from injectors.apps import deployment, dump, kustomization_file
from injectors.testapp import App
from monitoring.facts.notification import Notification
from monitoring.facts.rules import rules
from monitoring.stack.handle import MONITOR_JOB, Monitoring
from scenarios.recoveries import Operator, RecoveryMode

pytestmark = pytest.mark.monitoring


@pytest.fixture
def monitoring(cluster: Cluster) -> Monitoring:
    assert cluster.monitoring is not None, "the session's cluster must run monitoring for these tests"
    return cluster.monitoring


@pytest.fixture
def exporter(cluster: Cluster, tmp_path: Path) -> Iterator[RecoveryMode]:
    """A read-only monitor of objects labelled with a mode of the test's own, scraped like a scenario's."""
    mode = RecoveryMode(f"mon-{secrets.token_hex(3)}")
    mode.start(cluster, tmp_path)
    try:
        yield mode
    finally:
        mode.stop()


def series(monitoring: Monitoring, promql: str, timeout: float = 60, count: int = 1) -> list[dict[str, Any]]:
    """At least `count` series of `promql` (the first scrapes of a fresh cluster may still be on their way)."""
    return wait_until(
        lambda: monitoring.query(promql),
        timeout,
        f"Prometheus to return {count} series for {promql}",
        done=lambda result: len(result) >= count,
    )


def test_prometheus_scrapes_flux_and_the_api_server_and_evaluates_the_shipped_rules(
    cluster: Cluster, monitoring: Monitoring
) -> None:
    controllers: tuple[str, ...] = tuned.DEFAULT_CONTROLLERS
    if tuned.MODE in cluster.flux_shards:
        controllers = tuned.CONTROLLER_PROCESSES
    expected = sorted([*controllers, "kube-apiserver"])
    up = series(monitoring, 'up{job=~"flux-controllers|kube-apiserver"} == 1', count=len(expected))
    assert sorted(s["metric"].get("controller", s["metric"]["job"]) for s in up) == expected
    assert series(monitoring, "gotk_reconcile_duration_seconds_count")
    assert series(monitoring, "apiserver_request_total")
    names = wait_until(lambda: _rule_names(monitoring), 30, "the rules API")
    assert names == sorted(rules())


def _rule_names(monitoring: Monitoring) -> list[str]:
    with urllib.request.urlopen(f"{monitoring.prometheus_url}/api/v1/rules?type=alert", timeout=5) as resp:
        groups = json.loads(resp.read())["data"]["groups"]
    return sorted(r["name"] for g in groups for r in g["rules"])


def test_a_monitor_exports_object_state_and_its_decisions_are_dropped(
    cluster: Cluster, monitoring: Monitoring, exporter: RecoveryMode
) -> None:
    name = f"{exporter.label}-ks"
    ks = _kustomization(cluster, name, exporter.label, suspend=True)
    cluster.kube.apply(ks)
    try:
        ready = series(monitoring, f'flux_kustomization_ready{{name="{name}", job="{MONITOR_JOB}"}}')
        assert ready[0]["metric"]["recovery"] == exporter.label
        assert monitoring.query(f'flux_recovery_leader{{job="{MONITOR_JOB}"}}') == []
        assert monitoring.query(f'{{job="{MONITOR_JOB}", __name__=~"flux_recovery_.*"}}') == []
    finally:
        cluster.kube.delete(KUSTOMIZATION.api_version, KUSTOMIZATION.kind, name, cluster.bootstrap.flux_namespace)


def _kustomization(cluster: Cluster, name: str, label: str, **spec: Any) -> dict[str, Any]:
    obj = cluster.bootstrap.kustomization(name, "apps/none", wait=False, **spec)
    obj["metadata"]["labels"] = {RECOVERY_MODE_LABEL: label}
    return obj


def _about(notification: Notification, alertname: str, names: set[str]) -> list[dict[str, Any]]:
    return [
        a
        for a in notification.alerts
        if a.get("labels", {}).get("alertname") == alertname and a.get("labels", {}).get("name") in names
    ]


def test_a_dependency_cycle_pages_the_receiver_with_its_runbook_and_resolves_when_broken(
    cluster: Cluster, monitoring: Monitoring, exporter: RecoveryMode
) -> None:
    """The shipped FluxDependencyCycle (for: 1m) on a real cycle: firing, then resolved once the cycle is gone."""
    a, b = f"{exporter.label}-a", f"{exporter.label}-b"
    namespace = cluster.bootstrap.flux_namespace
    rule = rules()["FluxDependencyCycle"]
    for name, other in ((a, b), (b, a)):
        cluster.kube.apply(_kustomization(cluster, name, exporter.label, suspend=True, dependsOn=[{"name": other}]))
    try:

        def firing() -> list[dict[str, Any]]:
            return [x for n in monitoring.notifications() if n.status == "firing" for x in _about(n, rule.name, {a, b})]

        timeout = rule.for_seconds + 3 * monitoring.timings.delivery_seconds + 30
        alerts = wait_until(firing, timeout, f"{rule.name} to reach the receiver", interval=1)
        assert {x["labels"]["name"] for x in alerts} <= {a, b}
        cycle = alerts[0]["labels"]["cycle"]
        assert f"Kustomization/{namespace}/{a} -> " in cycle and f"Kustomization/{namespace}/{b}" in cycle
        assert alerts[0]["annotations"].get("runbook_url") == rule.runbook_url
    finally:
        for name in (a, b):
            cluster.kube.delete(KUSTOMIZATION.api_version, KUSTOMIZATION.kind, name, namespace)

    def resolved() -> bool:
        latest: dict[str, str] = {}
        for n in monitoring.notifications():
            for x in _about(n, rule.name, {a, b}):
                latest[x["fingerprint"]] = x["status"]
        return bool(latest) and set(latest.values()) == {"resolved"}

    wait_until(resolved, 3 * monitoring.timings.resolve_seconds + 30, f"{rule.name} to be resolved", interval=1)


def test_the_first_escalation_of_a_kind_pages_with_its_runbook(
    cluster: Cluster, monitoring: Monitoring, tmp_path: Path
) -> None:
    """A real escalation (recovery-policy manual on a selector change) under an operator Prometheus scrapes: the
    counter is exported at 0 before it, so `increase()` sees it and FluxRecoveryEscalated pages at once."""
    mode = Operator(f"esc-{secrets.token_hex(3)}")
    app = App(cluster, f"esc-{secrets.token_hex(3)}")
    ref = ObjectRef(KUSTOMIZATION.kind, FLUX_NAMESPACE, app.name)
    rule = rules()["FluxRecoveryEscalated"]
    mode.start(cluster, tmp_path)
    try:
        files = {
            f"{app.path}/deployment.yaml": dump(deployment("web", app.ns, {"app": "web"})),
            f"{app.path}/kustomization.yaml": dump(kustomization_file(["deployment.yaml"])),
        }
        first = app.setup(files)
        patch = {
            "metadata": {
                "labels": mode.decorate({})["metadata"]["labels"],  # its mode's and its session's
                "annotations": {"gitops.flux.io/recovery-policy": "manual"},
            }
        }
        cluster.kube.merge_patch(KUSTOMIZATION.api_version, ref.kind, ref.name, ref.namespace, patch)
        wait_until(lambda: app.ready(ref, first), 90, "the app to be Ready")
        series(monitoring, f'flux_recovery_escalations_total{{recovery="{mode.label}"}} == 0')
        changed = deployment("web", app.ns, {"app": "web", "v": "2"})
        app.commit("selector change", {f"{app.path}/deployment.yaml": dump(changed)})
        wait_until(lambda: app.shows(ref, sig.SELECTOR_IMMUTABLE), 90, "the selector fault")
        wait_until(
            lambda: app.events(ref, "RecoveryEscalated"), 60, "the manual-policy escalation", detail=mode.log_tail
        )
        escalated = time.time()

        def paged() -> list[dict[str, Any]]:
            return [
                a
                for n in monitoring.notifications(escalated - 30)
                for a in n.alerts
                if a["labels"].get("alertname") == rule.name and a["labels"].get("recovery") == mode.label
            ]

        (alert, *_) = wait_until(
            paged, 3 * monitoring.timings.delivery_seconds + 30, f"{rule.name} to page", interval=1
        )
        assert alert["labels"]["why"] == "manual" and alert["labels"]["kind"] == "Kustomization"
        assert alert["annotations"]["runbook_url"] == rule.runbook_url
        (event,) = app.events(ref, "RecoveryEscalated")[:1]
        assert event["message"].endswith(f"Runbook: {rule.runbook_url}")
    finally:
        app.cleanup()
        mode.stop()
