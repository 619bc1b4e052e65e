"""`recover --selector`: an operator acts only on matching Flux objects, and instances with other selectors (other
recovery modes on the same cluster) neither share its Lease nor its state."""

from __future__ import annotations

import argparse
from functools import partial
from typing import Any

import pytest

from ctlruntime.lease import LeaderElector
from ctlruntime.scope import Scope
from fluxmodel.annotations import PINNED_BY
from fluxmodel.kinds import ObjectRef
from foundation.errors import UserError
from foundation.waiting import wait_until
from recovery import events
from recovery.actions import ACTIONS, Context
from recovery.cli import register, run_recover
from recovery.defaults import default_patterns
from recovery.errors import PermanentError
from recovery.health import Failure
from recovery.metrics import Metrics, View
from recovery.monitor import Monitor
from recovery.operator import Config, Operator
from recovery.reconciler import Options, Reconciler
from recovery.state import ObjectState, StateStore, configmap_name
from testsupport.fakekube import FakeKube

MODE = "resilience.gitops.io/recovery"
MINE = Scope.parse(f"{MODE}=operator")
GOOD = "main@sha1:" + "a" * 40
BAD = "main@sha1:" + "b" * 40
HEALTH = "health check failed after 30s: timeout waiting for: [Deployment/shop/web status: 'InProgress']"
KS_API = "kustomize.toolkit.fluxcd.io/v1"
GIT_API = "source.toolkit.fluxcd.io/v1"


def ks(
    name: str,
    mode: str,
    source: str = "gitops",
    ready: bool = False,
    message: str = HEALTH,
    depends_on: tuple[str, ...] = (),
    reason: str = "HealthCheckFailed",
) -> dict[str, Any]:
    return {
        "apiVersion": KS_API,
        "kind": "Kustomization",
        "metadata": {"name": name, "namespace": "flux-system", "generation": 1, "labels": {MODE: mode}},
        "spec": {
            "sourceRef": {"kind": "GitRepository", "name": source},
            "dependsOn": [{"name": d} for d in depends_on],
        },
        "status": {
            "observedGeneration": 1,
            "lastAppliedRevision": GOOD,
            "lastAttemptedRevision": GOOD if ready else BAD,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True" if ready else "False",
                    "reason": "ReconciliationSucceeded" if ready else reason,
                    "message": "Applied" if ready else message,
                    "observedGeneration": 1,
                }
            ],
        },
    }


def gitrepository(name: str, revision: str = BAD) -> dict[str, Any]:
    return {
        "apiVersion": GIT_API,
        "kind": "GitRepository",
        "metadata": {"name": name, "namespace": "flux-system"},
        "spec": {"url": "http://git/repo.git", "interval": "1m", "ref": {"branch": "main"}},
        "status": {"artifact": {"revision": revision}},
    }


def stalled_release(name: str, mode: str) -> dict[str, Any]:
    return {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": name, "namespace": "shop", "generation": 1, "labels": {MODE: mode}},
        "spec": {"chart": {"spec": {"chart": "app", "version": "1.0.0"}}},
        "status": {
            "observedGeneration": 1,
            "conditions": [
                {"type": "Ready", "status": "False", "reason": "InstallFailed", "message": "Helm install failed"},
                {
                    "type": "Stalled",
                    "status": "True",
                    "reason": "RetriesExceeded",
                    "message": "Failed to install after 1 attempt(s)",
                },
            ],
        },
    }


def touched(kube: FakeKube, name: str) -> list[tuple[str, str, str, str, Any]]:
    """Writes to the object `name`, and Events about it."""
    about = [o["involvedObject"]["name"] for (_, kind, _, _), o in kube.objects.items() if kind == "Event"]
    return [w for w in kube.writes if w[3] == name] + [("event", "", "", n, None) for n in about if n == name]


@pytest.mark.slow  # polls for the operators' threads: over 0.2 s on a busy machine
def test_an_operator_with_a_selector_leaves_other_modes_stuck_objects_alone() -> None:
    kube = FakeKube()
    for name in ("gitops-mine", "gitops-theirs"):
        kube.add(gitrepository(name))
    kube.add(ks("mine", "operator", "gitops-mine"))
    kube.add(ks("theirs", "none", "gitops-theirs"))
    kube.add(stalled_release("theirs-release", "flux-native"))
    operator = Operator(kube, Config(scope=MINE, metrics_host=None, workers=2, identity="op"))  # type: ignore[arg-type]
    try:
        operator.start()
        pinned = wait_until(
            lambda: kube.must(GIT_API, "GitRepository", "gitops-mine", "flux-system")["spec"]["ref"].get("commit"),
            timeout=20,
            what="the matching Kustomization's source to be pinned",
        )
        assert pinned == "a" * 40
    finally:
        operator.stop.set()
        operator.shutdown()
    assert touched(kube, "theirs") == [] and touched(kube, "theirs-release") == []
    assert touched(kube, "gitops-theirs") == []  # no pin
    configmaps = [name for (_, kind, _, name) in kube.objects if kind == "ConfigMap"]
    assert configmaps and not [name for name in configmaps if "theirs" in name]  # no state kept for them either
    assert ObjectRef("Kustomization", "flux-system", "theirs") not in operator.monitor.objects
    assert ("Kustomization", None, f"{MODE}=operator") in kube.watches
    assert ("HelmRelease", None, f"{MODE}=operator") in kube.watches
    assert ("GitRepository", None, None) in kube.watches  # sources are read unfiltered
    assert kube.get("coordination.k8s.io/v1", "Lease", f"gitops-resilience-operator-{MINE.id}", "flux-system")
    assert kube.get("coordination.k8s.io/v1", "Lease", "gitops-resilience-operator", "flux-system") is None


def pinned(kube: FakeKube, mode: str) -> str | None:
    """The commit `mode`'s source is pinned to, if any."""
    source = kube.must(GIT_API, "GitRepository", f"gitops-{mode}", "flux-system")
    return source["spec"]["ref"].get("commit")


@pytest.mark.slow  # polls for the operators' threads: over 0.2 s on a busy machine
def test_two_operators_with_different_selectors_both_lead_and_each_recovers_its_own() -> None:
    kube = FakeKube()
    for mode in ("operator", "other"):
        kube.add(gitrepository(f"gitops-{mode}"))
        kube.add(ks(f"app-{mode}", mode, f"gitops-{mode}"))
    scopes = {mode: Scope.parse(f"{MODE}={mode}") for mode in ("operator", "other")}
    operators = [
        Operator(kube, Config(scope=scope, metrics_host=None, identity=mode))  # type: ignore[arg-type]
        for mode, scope in scopes.items()
    ]
    try:
        for operator in operators:
            operator.start()
        for mode in scopes:
            wait_until(partial(pinned, kube, mode), timeout=20, what=f"the {mode} source to be pinned")
        assert all(operator.leader for operator in operators)
    finally:
        for operator in operators:
            operator.stop.set()
            operator.shutdown()
    for mode, scope in scopes.items():  # each pinned by its own instance, its state under its own name
        source = kube.must(GIT_API, "GitRepository", f"gitops-{mode}", "flux-system")
        assert source["metadata"]["annotations"][PINNED_BY] == f"Kustomization/flux-system/app-{mode}"
        ref = ObjectRef("Kustomization", "flux-system", f"app-{mode}")
        assert kube.get("v1", "ConfigMap", configmap_name(ref, scope), "flux-system") is not None
    other = ObjectRef("Kustomization", "flux-system", "app-other")
    assert kube.get("v1", "ConfigMap", configmap_name(other, scopes["operator"]), "flux-system") is None


class World:
    """A reconciler whose monitor has the scope, fed by hand (as the informers would be)."""

    def __init__(self) -> None:
        self.kube = FakeKube()
        self.monitor = Monitor(self.kube, scope=MINE)
        self.store = StateStore(self.kube, "flux-system", scope=MINE)
        self.requeued: list[tuple[ObjectRef, float]] = []
        self.reconciler = Reconciler(
            self.kube,  # type: ignore[arg-type]
            self.monitor,
            self.store,
            events.Recorder(self.kube, instance="test"),
            Metrics(lambda: View(now=0.0)),
            lambda ref, after: self.requeued.append((ref, after)),
            default_patterns,
            lambda: True,
            Options(scope=MINE),
        )
        self.monitor.update("ADDED", self.kube.add(gitrepository("gitops", GOOD)))

    def put(self, obj: dict[str, Any]) -> ObjectRef:
        self.monitor.update("ADDED", self.kube.add(obj))
        return ObjectRef.of(obj)


def test_dependency_chains_and_cycles_touch_only_matching_objects() -> None:
    w = World()

    def blocked(name: str, mode: str, dependency: str) -> dict[str, Any]:
        message = f"dependency 'flux-system/{dependency}' is not ready"
        return ks(name, mode, message=message, depends_on=(dependency,), reason="DependencyNotReady")

    root = w.put(ks("root", "operator", ready=True))
    theirs = w.put(blocked("theirs", "none", "root"))
    mine = w.put(blocked("mine", "operator", "root"))
    a = w.put(blocked("a", "operator", "b"))
    b = w.put(blocked("b", "none", "a"))
    for ref in (root, theirs, mine, a, b):
        w.reconciler.process(ref)
    assert (mine, 0.0) in w.requeued and (theirs, 0.0) not in w.requeued  # only the matching dependent is kicked
    w.reconciler.process(mine)
    assert [x[3] for x in w.kube.writes if x[0] == "patch" and x[1] == "Kustomization"] == ["mine"]
    assert w.monitor.cycles().members == {}  # a cycle through an object outside the scope is not ours to report
    found = [e for (_, k, _, _), e in w.kube.objects.items() if k == "Event"]
    assert {e["involvedObject"]["name"] for e in found} <= {"mine", "a"} and found
    assert [e for e in found if e["reason"] == events.CYCLE] == []
    assert theirs not in w.store.known() and b not in w.store.known()


def test_a_source_shared_with_objects_outside_the_selector_is_not_pinned() -> None:
    kube = FakeKube()
    kube.add(gitrepository("gitops"))
    mine = kube.add(ks("mine", "operator"))
    kube.add(ks("theirs", "none"))
    store = StateStore(kube, "flux-system", scope=MINE)
    match = default_patterns().match("Kustomization", [Failure("Ready", "HealthCheckFailed", HEALTH)])
    assert match is not None and match.pattern.recovery_action == "rollback_to_last_good_revision"
    ctx = Context(kube, mine, match, ObjectState(ObjectRef.of(mine)), {}, store.get, store.save, scope=MINE)
    with pytest.raises(PermanentError, match=r"Kustomization/flux-system/theirs, outside --selector"):
        ACTIONS[match.pattern.recovery_action].run(ctx)
    source = kube.must(GIT_API, "GitRepository", "gitops", "flux-system")
    assert "commit" not in source["spec"]["ref"] and PINNED_BY not in (source["metadata"].get("annotations") or {})
    # Without a selector the operator owns every object, so the pin goes ahead as before.
    unscoped = Context(kube, mine, match, ObjectState(ObjectRef.of(mine)), {}, store.get, store.save)
    ACTIONS[match.pattern.recovery_action].run(unscoped)
    assert kube.must(GIT_API, "GitRepository", "gitops", "flux-system")["spec"]["ref"]["commit"] == "a" * 40


def test_equal_selectors_share_names_and_other_selectors_do_not() -> None:
    assert Scope.parse(f"{MODE}=operator, tier!=x").id == Scope.parse(f"tier!=x,{MODE}==operator").id
    assert Scope.parse(f"{MODE}=operator").id != Scope.parse(f"{MODE}=flux-native").id
    ref = ObjectRef("HelmRelease", "shop", "web")
    assert configmap_name(ref) == "reconciliation-state.helmrelease.shop.web"  # unchanged without a selector
    assert configmap_name(ref, MINE) == f"reconciliation-state-{MINE.id}.helmrelease.shop.web"
    assert Scope().name("gitops-resilience-operator") == "gitops-resilience-operator"


def test_operators_with_different_selectors_hold_their_own_lease_and_state() -> None:
    kube = FakeKube()
    other = Scope.parse(f"{MODE}=flux-native")
    a = LeaderElector(kube, "flux-system", "a", name=MINE.name("gitops-resilience-operator"))
    b = LeaderElector(kube, "flux-system", "b", name=other.name("gitops-resilience-operator"))
    c = LeaderElector(kube, "flux-system", "c", name="gitops-resilience-operator")
    assert a.try_acquire() and b.try_acquire() and c.try_acquire()
    ref = ObjectRef("Kustomization", "flux-system", "shop")
    for scope, status in ((MINE, "recovering"), (other, "escalated"), (Scope(), "healthy")):
        StateStore(kube, "flux-system", scope=scope).save(ObjectState(ref, health_status=status))
    for scope, status in ((MINE, "recovering"), (other, "escalated"), (Scope(), "healthy")):
        fresh = StateStore(kube, "flux-system", scope=scope)
        assert fresh.load() == 1 and fresh.get(ref).health_status == status
    cm = kube.must("v1", "ConfigMap", configmap_name(ref, MINE), "flux-system")
    assert cm["metadata"]["annotations"]["gitops.flux.io/recovery-selector"] == f"{MODE}=operator"


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    return parser.parse_args(list(argv))


@pytest.mark.parametrize("selector", ["a==b==c", "=x", "", "app in ()", "Bad_Prefix.io/x=y"])
def test_a_bad_selector_is_refused_before_connecting(selector: str) -> None:
    args = parse("recover", "--kubeconfig", "/nonexistent/kubeconfig", "--selector", selector)
    with pytest.raises(UserError, match=r"^--selector") as err:
        run_recover(args)
    assert "\n" not in str(err.value) and "label selector like" in str(err.value)
