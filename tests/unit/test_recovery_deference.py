"""Deference to Flux's own knobs: the operator waits while spec.force or Helm remediation is having its chance, acts
once it has had it (or is spent), never where Flux already resolved the failure, and never twice."""

from __future__ import annotations

from typing import Any

import pytest

from fluxmodel.kinds import ObjectRef
from recovery import deference, engine, events
from recovery.defaults import default_patterns
from recovery.explain import explain
from recovery.health import observe
from recovery.metrics import Metrics, View
from recovery.monitor import Monitor
from recovery.patterns import PatternSet, parse
from recovery.reconciler import Options, Reconciler
from recovery.state import ObjectState, StateStore
from testsupport.fakekube import FakeKube

SELECTOR = (
    'Deployment/shop/web dry-run failed (Invalid): Deployment.apps "web" is invalid: spec.selector: Invalid value: '
    '{"matchLabels":{"app":"web","tier":"x"}}: field is immutable'
)
REV = "main@sha1:" + "a" * 40
T0 = 1_000_000.0
KS_API = "kustomize.toolkit.fluxcd.io/v1"
FORCE = "kustomize.toolkit.fluxcd.io/force"


def kustomization(spec: dict[str, Any] | None = None, message: str = SELECTOR) -> dict[str, Any]:
    return {
        "apiVersion": KS_API,
        "kind": "Kustomization",
        "metadata": {"name": "shop", "namespace": "flux-system", "generation": 1},
        "spec": {"sourceRef": {"kind": "GitRepository", "name": "gitops"}, "interval": "10m", **(spec or {})},
        "status": {
            "lastAppliedRevision": REV,
            "lastAttemptedRevision": REV,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "False",
                    "reason": "ReconciliationFailed",
                    "message": message,
                    "observedGeneration": 1,
                }
            ],
            "inventory": {"entries": [{"id": "shop_web_apps_Deployment", "v": "v1"}]},
        },
    }


class World:
    """The operator's worker on a fake API, with a clock the test moves."""

    def __init__(self) -> None:
        self.now = T0
        self.kube = FakeKube()
        self.monitor = Monitor(self.kube, clock=lambda: self.now)
        self.store = StateStore(self.kube, "flux-system")
        self.requeued: list[float] = []
        self.reconciler = Reconciler(
            self.kube,  # type: ignore[arg-type]
            self.monitor,
            self.store,
            events.Recorder(self.kube, instance="test"),
            Metrics(lambda: View(now=0.0)),
            lambda ref, after: self.requeued.append(after),
            default_patterns,
            lambda: True,
            Options(flux_grace=60.0),
            clock=lambda: self.now,
        )

    def deployment(self, labels: dict[str, str] | None = None) -> None:
        match = {"app": "web"}
        origin = {"kustomize.toolkit.fluxcd.io/name": "shop", "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}
        self.kube.add(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "web", "namespace": "shop", "labels": {**origin, **(labels or {})}},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": match},
                    "template": {"metadata": {"labels": match}},
                },
            }
        )

    def process(self, obj: dict[str, Any] | None = None) -> ObjectRef:
        if obj is not None:
            self.kube.add(obj)
        current = self.kube.must(KS_API, "Kustomization", "shop", "flux-system")
        self.monitor.update("MODIFIED", current)
        ref = ObjectRef.of(current)
        self.reconciler.process(ref)
        return ref

    def events(self, reason: str) -> list[dict[str, Any]]:
        return [o for (_, k, _, _), o in self.kube.objects.items() if k == "Event" and o["reason"] == reason]

    def workload_writes(self) -> list[tuple[str, str, str, str, Any]]:
        """What the operator did to anything but its Events, its state and the Kustomization's status."""
        return [w for w in self.kube.writes if w[1] not in ("Event", "ConfigMap")]


# -- immutable fields: spec.force and the force label --------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "labels", "knob"),
    [
        ({"force": True, "retryInterval": "10s"}, None, "spec.force: true"),
        ({"retryInterval": "10s"}, {FORCE: "Enabled"}, f"{FORCE}: enabled on Deployment/shop/web"),
    ],
)
def test_an_immutable_field_under_force_is_left_to_flux_within_the_grace_then_acted_on_once(
    spec: dict[str, Any], labels: dict[str, str] | None, knob: str
) -> None:
    w = World()
    w.deployment(labels)
    w.process(kustomization(spec))
    assert w.workload_writes() == [] and w.events(events.ACTION) == []
    deferred = w.events(events.DEFERRED)
    assert (
        len(deferred) == 1 and knob in deferred[0]["message"] and "until 1970-01-12T13:47:40Z" in deferred[0]["message"]
    )
    assert w.requeued[-1] == pytest.approx(60.0)  # looked at again when the grace ends

    w.now = T0 + 20  # Flux retries: Ready=Unknown while it reconciles, then False again
    retrying = kustomization(spec)
    retrying["status"]["conditions"][0].update(status="Unknown", reason="Progressing", message="Reconciliation")
    w.process(retrying)
    w.now = T0 + 30
    w.process(kustomization(spec))
    assert w.workload_writes() == [] and len(w.events(events.DEFERRED)) == 1  # said once per deferral

    w.now = T0 + 61  # Flux had its chance and the failure persists: act as without knobs
    w.process()
    started = [e for e in w.events(events.ACTION) if "attempt 1/3" in e["message"]]
    assert len(started) == 1 and any(x[0] == "create" and x[1] == "Deployment" for x in w.kube.writes)

    # No deferral is left behind: later looks continue the one action, never start a second one.
    for later in (62, 90, 200):
        w.now = T0 + later
        w.process()
    assert len([e for e in w.events(events.ACTION) if "attempt" in e["message"]]) == 1
    assert len(w.events(events.DEFERRED)) == 1
    assert w.store.get(ObjectRef("Kustomization", "flux-system", "shop")).attempts == {
        "recreate_deployment|Deployment/shop/web": 1
    }


def test_the_grace_is_the_objects_own_retry_period_when_longer() -> None:
    w = World()
    w.deployment()
    w.process(kustomization({"force": True, "retryInterval": "2m"}))
    assert w.requeued[-1] == pytest.approx(120.0)
    w.now = T0 + 90
    w.process()
    assert w.events(events.ACTION) == []


def test_without_knobs_the_operator_acts_at_once_as_before() -> None:
    w = World()
    w.deployment({FORCE: "disabled"})
    w.process(kustomization({"force": False}))
    assert w.events(events.DEFERRED) == []
    assert [e for e in w.events(events.ACTION) if "attempt 1/3" in e["message"]]


def test_dependency_patterns_have_no_object_knob() -> None:
    obj = kustomization({"force": True}, message="dependency 'flux-system/root' is not ready")
    obj["status"]["conditions"][0]["reason"] = "DependencyNotReady"
    health = observe(obj, None, T0)
    match = default_patterns().match("Kustomization", health.failures)
    assert match is not None and match.pattern.recovery_action == "reconcile_dependents"
    assert deference.knob("Kustomization", obj, match, health.failures) is None
    assert "--requeue-dependency" in deference.describe("Kustomization", match, health.failures)["knobs"]


# -- Helm: upgrade and install remediation, RetryOnFailure -------------------------------------------------------

UPGRADE = "Helm upgrade failed for release shop/web with chart web@1.2.3: context deadline exceeded"
IMMUTABLE = (
    'Helm upgrade failed for release shop/web with chart web@1.2.3: cannot patch "web" with kind Deployment: '
    'Deployment.apps "web" is invalid: spec.selector: Invalid value: {}: field is immutable'
)
ROLLBACK_ON_UPGRADE = parse(
    "patterns: [{name: rollback-on-upgrade, error_pattern: 'Helm upgrade failed', kinds: [HelmRelease], "
    "recovery_action: rollback_helm_release}]",
    "test",
)


def cond(kind: str, status: str, reason: str, message: str) -> dict[str, str]:
    return {"type": kind, "status": status, "reason": reason, "message": message}


FAILED = cond("Released", "False", "UpgradeFailed", UPGRADE)
STALLED = cond("Stalled", "True", "RetriesExceeded", "Failed to upgrade after 4 attempt(s)")
ROLLED_BACK = cond("Remediated", "True", "RollbackSucceeded", "Helm rollback to previous release shop/web.v3 succeeded")


def release(spec: dict[str, Any], *conditions: dict[str, str], ready: dict[str, str] | None = None) -> dict[str, Any]:
    first = ready or cond("Ready", "False", conditions[0]["reason"], conditions[0]["message"])
    return {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": "web", "namespace": "shop", "generation": 2},
        "spec": {"chart": {"spec": {"chart": "web", "version": "1.2.3"}}, **spec},
        "status": {
            "observedGeneration": 2,
            "conditions": [{**c, "observedGeneration": 2} for c in (first, *conditions)],
        },
    }


def decide(obj: dict[str, Any], patterns: PatternSet, at: float) -> engine.Decision:
    """The decision `at` seconds after the failure began, with the knob the reconciler would pass."""
    health = observe(obj, None, T0)
    match = patterns.match(health.ref.kind, health.failures)
    knob = deference.knob(health.ref.kind, obj, match, health.failures) if match else None
    return engine.decide(health, patterns, ObjectState(health.ref), T0 + at, knob=knob, flux_grace=60.0)


REMEDIATION = {"upgrade": {"remediation": {"retries": 3, "remediateLastFailure": True}}}


def test_a_helm_rollback_waits_for_retries_exceeded_under_upgrade_remediation() -> None:
    d = decide(release(REMEDIATION, FAILED), ROLLBACK_ON_UPGRADE, at=5)
    assert d.verdict == engine.DEFER and "spec.upgrade.remediation.retries: 3" in d.why and "RetriesExceeded" in d.why
    assert d.retry_at == T0 + 4 * 300  # backstop: every attempt Flux has, at the default 5m timeout
    later = decide(release(REMEDIATION, FAILED), ROLLBACK_ON_UPGRADE, at=600)
    assert later.verdict == engine.DEFER  # past --flux-grace, yet Flux is still spending its retries
    spent = decide(release(REMEDIATION, FAILED, STALLED), ROLLBACK_ON_UPGRADE, at=700)
    assert spent.verdict == engine.ACT and "spent" in spent.deferred


@pytest.mark.parametrize("stalled", [False, True])
def test_a_helm_rollback_is_never_made_when_helm_controller_rolled_back(stalled: bool) -> None:
    conditions = (FAILED, ROLLED_BACK, *((STALLED,) if stalled else ()))
    obj = release(REMEDIATION, *conditions, ready=cond("Ready", "False", "RollbackSucceeded", ROLLED_BACK["message"]))
    for patterns in (ROLLBACK_ON_UPGRADE, default_patterns()):
        d = decide(obj, patterns, at=10_000)
        assert d.verdict == engine.NONE
        if d.match is not None:
            assert d.why.startswith("Flux resolved it")


def test_without_remediation_the_helm_patterns_act_as_before() -> None:
    assert decide(release({}, FAILED), ROLLBACK_ON_UPGRADE, at=0).verdict == engine.ACT
    stalled = cond("Stalled", "True", "RetriesExceeded", "Failed to upgrade after 1 attempt(s)")
    d = decide(release({}, FAILED, stalled), default_patterns(), at=0)
    assert (d.verdict, d.action, d.deferred) == (engine.ACT, "rollback_helm_release", "")


def test_an_immutable_chart_change_is_left_to_remediation_until_it_is_spent() -> None:
    failed = cond("Released", "False", "UpgradeFailed", IMMUTABLE)
    d = decide(release(REMEDIATION, failed), default_patterns(), at=0)
    assert (d.verdict, d.action) == (engine.DEFER, "recreate_resource")
    acted = decide(release(REMEDIATION, failed, STALLED), default_patterns(), at=1)
    assert (acted.verdict, acted.action) == (engine.ACT, "recreate_resource")


def test_retry_on_failure_never_stalls_so_the_grace_is_one_more_attempt() -> None:
    spec = {"timeout": "1m", "upgrade": {"strategy": {"name": "RetryOnFailure", "retryInterval": "30s"}}}
    d = decide(release(spec, FAILED), ROLLBACK_ON_UPGRADE, at=10)
    assert d.verdict == engine.DEFER and "RetryOnFailure" in d.why and d.retry_at == T0 + 90
    assert "RetriesExceeded" not in d.why
    assert decide(release(spec, FAILED), ROLLBACK_ON_UPGRADE, at=91).verdict == engine.ACT


def test_install_remediation_defers_the_reset_until_it_is_spent() -> None:
    install = (
        "Helm install failed for release shop/web with chart web@1.2.3: timeout waiting for: [Deployment/shop/web]"
    )
    failed = cond("Released", "False", "InstallFailed", install)
    stalled = cond("Stalled", "True", "RetriesExceeded", "Failed to install after 3 attempt(s)")
    spec = {"install": {"remediation": {"retries": 2}}}
    d = decide(release(spec, failed, stalled), default_patterns(), at=1)
    assert (d.verdict, d.action) == (engine.ACT, "reset_helm_release") and "spec.install.remediation" in d.deferred
    patterns = parse("patterns: [{error_pattern: 'Helm install failed', recovery_action: reset_helm_release}]", "t")
    assert decide(release(spec, failed), patterns, at=1).verdict == engine.DEFER
    assert decide(release({"upgrade": {"remediation": {"retries": 2}}}, failed), patterns, at=1).verdict == engine.ACT


def test_explain_names_the_knob_flux_answers_with() -> None:
    out = explain("Kustomization", SELECTOR, default_patterns(), reason="ReconciliationFailed")
    assert "spec.force" in out["flux_knobs"]["knobs"] and "--flux-grace" in out["flux_knobs"]["operator"]
    later = explain("HelmRelease", UPGRADE, default_patterns())["later"]
    assert "spec.upgrade.remediation.retries" in later["flux_knobs"]["knobs"]
    assert "RetriesExceeded" in later["flux_knobs"]["operator"]
