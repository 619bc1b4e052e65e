"""The worker's handling of one object, against an in-memory API: Events, escalation, policy, dry-run, chains."""

from __future__ import annotations

from typing import Any

import pytest

from fluxmodel.kinds import ObjectRef
from recovery import events
from recovery.defaults import default_patterns
from recovery.metrics import Metrics, View, sample
from recovery.monitor import Monitor
from recovery.reconciler import ESCALATED_ANNOTATION, Options, Reconciler
from recovery.state import StateStore
from testsupport.fakekube import FakeKube

SELECTOR = (
    'Deployment/shop/web dry-run failed (Invalid): Deployment.apps "web" is invalid: spec.selector: Invalid value: '
    '{"matchLabels":{"app":"web","tier":"x"}}: field is immutable'
)
REV = "main@sha1:" + "a" * 40


def ks(
    name: str,
    ready: str = "True",
    reason: str = "ReconciliationSucceeded",
    message: str = "Applied revision",
    depends_on: list[str] | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": name, "namespace": "flux-system", "generation": 1, "annotations": annotations or {}},
        "spec": {
            "sourceRef": {"kind": "GitRepository", "name": "gitops"},
            "dependsOn": [{"name": d} for d in depends_on or []],
        },
        "status": {
            "observedGeneration": 1 if ready == "True" else -1,
            "lastAppliedRevision": REV,
            "lastAttemptedRevision": REV,
            "conditions": [
                {"type": "Ready", "status": ready, "reason": reason, "message": message, "observedGeneration": 1}
            ],
            "inventory": {"entries": [{"id": "shop_web_apps_Deployment", "v": "v1"}]},
        },
    }


class World:
    def __init__(self, dry_run: bool = False):
        self.kube = FakeKube()
        self.monitor = Monitor(self.kube)
        self.store = StateStore(self.kube, "flux-system", persist=not dry_run)
        self.metrics = Metrics(lambda: View(now=0.0))
        self.requeued: list[tuple[ObjectRef, float]] = []
        self.reconciler = Reconciler(
            self.kube,  # type: ignore[arg-type]
            self.monitor,
            self.store,
            events.Recorder(self.kube, enabled=not dry_run, instance="test"),
            self.metrics,
            lambda ref, after: self.requeued.append((ref, after)),
            default_patterns,
            lambda: True,
            Options(dry_run=dry_run),
        )
        self.kube.add(
            {
                "apiVersion": "source.toolkit.fluxcd.io/v1",
                "kind": "GitRepository",
                "metadata": {"name": "gitops", "namespace": "flux-system"},
                "spec": {"ref": {"branch": "main"}},
                "status": {"artifact": {"revision": REV}},
            }
        )
        self.monitor.update(
            "ADDED", self.kube.must("source.toolkit.fluxcd.io/v1", "GitRepository", "gitops", "flux-system")
        )

    def put(self, obj: dict[str, Any]) -> ObjectRef:
        key = ("kustomize.toolkit.fluxcd.io", obj["kind"], "flux-system", obj["metadata"]["name"])
        if key in self.kube.objects:
            current = self.kube.objects[key]
            obj = {
                **obj,
                "metadata": {
                    **current["metadata"],
                    **{k: v for k, v in obj["metadata"].items() if k != "annotations"},
                    "annotations": current["metadata"].get("annotations", {}),
                },
            }
            self.kube.objects[key] = obj
        else:
            obj = self.kube.add(obj)
        self.monitor.update("MODIFIED", obj)
        return ObjectRef.of(obj)

    def process(self, ref: ObjectRef) -> None:
        self.monitor.update(
            "MODIFIED", self.kube.must("kustomize.toolkit.fluxcd.io/v1", ref.kind, ref.name, ref.namespace)
        )
        self.reconciler.process(ref)

    def events(self, reason: str | None = None) -> list[dict[str, Any]]:
        found = [o for (g, k, _, _), o in self.kube.objects.items() if k == "Event"]
        return [e for e in found if reason is None or e["reason"] == reason]


def add_deployment(world: World) -> None:
    labels = {"app": "web"}
    world.kube.add(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "web",
                "namespace": "shop",
                "labels": {
                    "kustomize.toolkit.fluxcd.io/name": "shop",
                    "kustomize.toolkit.fluxcd.io/namespace": "flux-system",
                },
            },
            "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}}},
        }
    )


def test_a_matching_failure_is_reported_and_acted_on_with_events() -> None:
    w = World()
    add_deployment(w)
    ref = w.put(ks("shop", "False", "ReconciliationFailed", SELECTOR))
    w.reconciler.process(ref)
    detected, acted = w.events(events.DETECTED), w.events(events.ACTION)
    assert len(detected) == 1 and "selector-immutable" in detected[0]["message"]
    assert acted and acted[0]["reportingComponent"] == "gitops-resilience-operator"
    assert acted[0]["involvedObject"]["kind"] == "Kustomization" and acted[0]["involvedObject"]["name"] == "shop"
    state = w.store.get(ref)
    assert state.in_flight is not None and state.in_flight["attempt"] == 1  # persisted before acting
    assert state.health_status == "recovering"
    cm = w.kube.get("v1", "ConfigMap", "reconciliation-state.kustomization.flux-system.shop", "flux-system")
    assert cm is not None and '"attempt": 1' in cm["data"]["in-flight"]
    w.reconciler.process(ref)
    assert len(w.events(events.DETECTED)) == 1  # detected once per failure


def test_retries_spent_escalate_once_and_recovery_clears_it() -> None:
    w = World()
    ref = w.put(ks("shop", "False", "ReconciliationFailed", SELECTOR))
    state = w.store.get(ref)
    state.attempts = {"recreate_deployment|Deployment/shop/web": 3}
    w.store.save(state)
    w.reconciler.process(ref)
    w.reconciler.process(ref)
    escalated = w.events(events.ESCALATED)
    assert len(escalated) == 1 and escalated[0]["type"] == "Warning" and "3 of 3" in escalated[0]["message"]
    obj = w.kube.get("kustomize.toolkit.fluxcd.io/v1", "Kustomization", "shop", "flux-system")
    assert obj is not None and "recreate_deployment" in obj["metadata"]["annotations"][ESCALATED_ANNOTATION]
    assert (
        sample(
            w.metrics,
            "flux_recovery_escalations_total",
            {"kind": "Kustomization", "action": "recreate_deployment", "why": "retries"},
        )
        == 1
    )
    assert w.kube.deletes() == []

    w.put(ks("shop"))
    w.process(ref)
    obj = w.kube.get("kustomize.toolkit.fluxcd.io/v1", "Kustomization", "shop", "flux-system")
    assert obj is not None and ESCALATED_ANNOTATION not in obj["metadata"]["annotations"]
    state = w.store.get(ref)
    assert state.attempts == {} and state.escalated is None and state.health_status == "healthy"
    assert state.last_successful_revision == REV


def test_manual_policy_reports_without_touching_workloads() -> None:
    w = World()
    add_deployment(w)
    ref = w.put(
        ks("shop", "False", "ReconciliationFailed", SELECTOR, annotations={"gitops.flux.io/recovery-policy": "manual"})
    )
    w.reconciler.process(ref)
    assert w.events(events.DETECTED) and "manual" in w.events(events.ESCALATED)[0]["message"]
    assert w.events(events.ACTION) == []
    assert [x for x in w.kube.writes if x[1] not in ("Event", "ConfigMap", "Kustomization")] == []


def test_dry_run_writes_nothing() -> None:
    w = World(dry_run=True)
    add_deployment(w)
    before = list(w.kube.writes)
    ref = w.put(ks("shop", "False", "ReconciliationFailed", SELECTOR))
    w.reconciler.process(ref)
    w.reconciler.process(ref)
    assert w.kube.writes == before
    assert (
        sample(
            w.metrics,
            "flux_recovery_actions_total",
            {"kind": "Kustomization", "action": "recreate_deployment", "result": "dry_run"},
        )
        == 1
    )


def test_when_a_root_recovers_its_blocked_dependents_are_reconciled_in_order() -> None:
    w = World()
    blocked = "dependency 'flux-system/{}' is not ready"
    root = w.put(ks("root", "False", "HealthCheckFailed", "health check failed after 30s: timeout waiting for: [x]"))
    mid = w.put(ks("mid", "False", "DependencyNotReady", blocked.format("root"), depends_on=["root"]))
    leaf = w.put(ks("leaf", "False", "DependencyNotReady", blocked.format("mid"), depends_on=["mid"]))
    for ref in (mid, leaf):
        w.reconciler.process(ref)
    assert [x for x in w.kube.writes if x[0] == "patch" and x[1] == "Kustomization"] == []  # dependencies not Ready

    w.put(ks("root"))
    w.process(root)
    assert (mid, 0.0) in w.requeued and (leaf, 0.0) not in w.requeued  # only the next level, whose deps are Ready
    w.process(mid)
    patched = [x[3] for x in w.kube.writes if x[0] == "patch" and x[1] == "Kustomization"]
    assert patched == ["mid"]
    assert "reconcile_dependents" in w.events(events.ACTION)[0]["message"]
    w.put(ks("mid", depends_on=["root"]))
    w.process(mid)
    w.process(leaf)
    patched = [x[3] for x in w.kube.writes if x[0] == "patch" and x[1] == "Kustomization"]
    assert patched == ["mid", "leaf"]


def test_a_dependency_cycle_is_reported_on_each_member_once() -> None:
    w = World()
    a = w.put(ks("a", "False", "DependencyNotReady", "dependency 'flux-system/b' is not ready", depends_on=["b"]))
    b = w.put(ks("b", "False", "DependencyNotReady", "dependency 'flux-system/a' is not ready", depends_on=["a"]))
    w.reconciler.process(a)
    w.reconciler.process(b)
    cycles = w.events(events.CYCLE)
    assert sorted(e["involvedObject"]["name"] for e in cycles) == ["a", "b"]
    assert all(
        "Kustomization/flux-system/a -> Kustomization/flux-system/b -> Kustomization/flux-system/a" in e["message"]
        for e in cycles
    )
    assert w.monitor.cycles().members.keys() == {a, b}


@pytest.mark.parametrize("suspend", [True])
def test_suspended_objects_are_left_alone(suspend: bool) -> None:
    w = World()
    add_deployment(w)
    obj = ks("shop", "False", "ReconciliationFailed", SELECTOR)
    obj["spec"]["suspend"] = suspend
    ref = w.put(obj)
    w.reconciler.process(ref)
    assert w.events() == [] and w.kube.deletes() == []


def test_a_new_revision_applied_by_a_dependency_kicks_its_dependents_even_if_no_failure_was_seen() -> None:
    """Status changes are coalesced by the queue: Ready at a new revision is itself the signal."""
    w = World()
    root = w.put(ks("root"))
    w.reconciler.process(root)
    mid = w.put(
        ks(
            "mid",
            "False",
            "DependencyNotReady",
            "dependency 'flux-system/root' revision is not up to date",
            depends_on=["root"],
        )
    )
    w.requeued.clear()
    newer = ks("root")
    newer["status"]["lastAppliedRevision"] = "main@sha1:" + "b" * 40
    w.kube.objects[("source.toolkit.fluxcd.io", "GitRepository", "flux-system", "gitops")]["status"]["artifact"][
        "revision"
    ] = "main@sha1:" + "b" * 40
    w.monitor.update("MODIFIED", w.kube.must("source.toolkit.fluxcd.io/v1", "GitRepository", "gitops", "flux-system"))
    w.put(newer)
    w.process(root)
    assert (mid, 0.0) in w.requeued


def test_a_source_change_is_pushed_past_a_cycle_until_its_kustomizations_attempted_it() -> None:
    w = World()
    parent = w.put(ks("parent"))
    for name, other in (("a", "b"), ("b", "a")):
        w.put(
            ks(
                name,
                "False",
                "DependencyNotReady",
                f"dependency 'flux-system/{other}' is not ready",
                depends_on=[other],
            )
        )
    source = ObjectRef("GitRepository", "flux-system", "gitops")
    w.reconciler.process(source)  # first sight of the source: nothing to push
    assert w.requeued == []
    key = ("source.toolkit.fluxcd.io", "GitRepository", "flux-system", "gitops")
    w.kube.objects[key]["status"]["artifact"]["revision"] = "main@sha1:" + "f" * 40
    w.monitor.update("MODIFIED", w.kube.must("source.toolkit.fluxcd.io/v1", "GitRepository", "gitops", "flux-system"))
    w.reconciler.process(source)
    assert (parent, 0.0) in w.requeued and (source, 3.0) in w.requeued
    w.process(parent)  # Ready, but behind: reconciled anyway (Flux would not enqueue it)
    assert [x[3] for x in w.kube.writes if x[0] == "patch" and x[1] == "Kustomization"] == ["parent"]
    w.requeued.clear()
    w.reconciler.process(source)  # Flux handled it from a stale cache: still behind, so asked again
    assert (parent, 0.0) in w.requeued
    newer = ks("parent")
    newer["status"]["lastAttemptedRevision"] = "main@sha1:" + "f" * 40
    w.put(newer)
    w.requeued.clear()
    w.reconciler.process(source)
    assert w.requeued == []  # caught up: nothing more to push


def test_a_release_ready_before_its_kustomization_learns_the_revision_that_delivered_it() -> None:
    """The rollback of a release needs that revision; a Kustomization that waits for it is Ready only later."""
    w = World()
    release = w.kube.add(
        {
            "apiVersion": "helm.toolkit.fluxcd.io/v2",
            "kind": "HelmRelease",
            "metadata": {
                "name": "web",
                "namespace": "shop",
                "generation": 1,
                "labels": {
                    "kustomize.toolkit.fluxcd.io/name": "shop",
                    "kustomize.toolkit.fluxcd.io/namespace": "flux-system",
                },
            },
            "spec": {"chart": {"spec": {"chart": "demo-app", "version": "1.0.0"}}},
            "status": {
                "observedGeneration": 1,
                "conditions": [{"type": "Ready", "status": "True", "reason": "UpgradeSucceeded", "message": "ok"}],
            },
        }
    )
    w.monitor.update("ADDED", release)
    hr = ObjectRef.of(release)
    w.reconciler.process(hr)
    assert w.store.get(hr).last_successful_source_revision is None  # its Kustomization is not Ready yet
    w.reconciler.process(w.put(ks("shop")))
    assert w.store.get(hr).last_successful_source_revision == REV
