"""HelmRelease faults from the catalog, recovered by the operator as a real process, against helm-controller.

Broken and never-Ready chart versions come from Git (the release's Kustomization applies them), so the bad
desired state is in Git: recovery is the release Ready again at the last good chart, by pinning the source,
and the pin is lifted when a fix is pushed (or, to retry the rejected revision, after 30 s). Install retries
exhausted for a cause that goes away is recovered by resetting the release with backoff; an immutable change
inside a chart by replacing the object.
"""

from __future__ import annotations

from functools import partial

from fluxmodel import signatures as sig
from fluxmodel.conditions import last_applied_revision
from fluxmodel.kinds import FLUX_NAMESPACE, GIT_REPOSITORY, HELM_RELEASE, ObjectRef
from foundation.waiting import wait_until
from injectors.apps import dump, kustomization_file
from injectors.testapp import App, chart_release, publish
from testsupport.operatorprocess import OperatorProcess

FAULT_SECONDS = 120
RECOVERY_SECONDS = 180


def release_files(app: App, version: str) -> dict[str, str]:
    return {
        f"{app.path}/release.yaml": dump(chart_release("web", app.ns, version)),
        f"{app.path}/kustomization.yaml": dump(kustomization_file(["release.yaml"])),
    }


def deployed(app: App, ref: ObjectRef) -> str | None:
    obj = app.get(ref)
    return last_applied_revision(obj) if obj else None


def git_release(app: App) -> tuple[ObjectRef, str, str]:
    """A HelmRelease applied from Git at a good chart version, Ready; returns (ref, version, revision)."""
    good = publish(app.cluster)
    revision = app.setup(release_files(app, good), wait=False)
    ref = ObjectRef(HELM_RELEASE.kind, app.ns, "web")
    app.flux_objects.append(ref)
    wait_until(lambda: app.ready(ref) and deployed(app, ref) == good, 120, f"the release at {good}")
    return ref, good, revision


def expect_events(app: App, ref: ObjectRef, action: str) -> None:
    acted = [e for e in app.events(ref, "RecoveryAction") if action in e.get("message", "")]
    assert app.events(ref, "RecoveryDetected") and acted, f"no RecoveryDetected/RecoveryAction ({action}) on {ref}"


def test_chart_the_api_server_rejects_is_rolled_back_and_a_fix_unpins(app: App, operator: OperatorProcess) -> None:
    ref, good, _ = git_release(app)
    broken = publish(app.cluster, replicaCount=-1)
    app.commit(f"chart {broken}", release_files(app, broken))
    wait_until(
        lambda: app.shows(ref, sig.HELM_RETRIES_EXHAUSTED) and app.shows(ref, sig.HELM_UPGRADE_FAILED),
        FAULT_SECONDS,
        "the rejected upgrade, retries exhausted",
    )
    wait_until(
        lambda: app.ready(ref) and deployed(app, ref) == good,
        RECOVERY_SECONDS,
        f"the release back at {good}",
        detail=operator.log,
    )
    hr = app.get(ref)
    assert hr is not None and hr["spec"]["chart"]["spec"]["version"] == good  # Git (pinned) and the release agree
    assert app.available("web")
    expect_events(app, ref, "rollback_helm_release")
    assert any("pinned" in e.get("message", "") for e in app.events(ref, "RecoveryAction")), "no pin reported"

    fixed = publish(app.cluster, image="registry.local/demo-app:1.1.0")
    app.commit(f"chart {fixed}", release_files(app, fixed))
    wait_until(
        lambda: app.ready(ref) and deployed(app, ref) == fixed,
        RECOVERY_SECONDS,
        "the fix applied after the pin is lifted",
        detail=operator.log,
    )
    source = app.get(ObjectRef(GIT_REPOSITORY.kind, FLUX_NAMESPACE, app.source))
    assert source is not None and "commit" not in source["spec"]["ref"]


def test_chart_whose_pods_never_become_ready_is_rolled_back(app: App, operator: OperatorProcess) -> None:
    ref, good, _ = git_release(app)
    slow = publish(app.cluster, podBehavior="never-ready")
    app.commit(f"chart {slow}", release_files(app, slow))
    wait_until(lambda: app.shows(ref, sig.HELM_UPGRADE_TIMEOUT), FAULT_SECONDS, "the upgrade timeout")
    wait_until(
        lambda: app.ready(ref) and deployed(app, ref) == good and app.available("web"),
        RECOVERY_SECONDS,
        f"the release back at {good} with its pods Ready",
        detail=operator.log,
    )
    expect_events(app, ref, "rollback_helm_release")


def test_retries_exhausted_are_reset_once_the_cause_goes_away(app: App, operator: OperatorProcess) -> None:
    """Installing into a namespace that does not exist yet: Flux stalls for good; the operator retries."""
    version = publish(app.cluster)
    app.kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": app.ns}})
    target = f"{app.ns}-target"
    release = chart_release("web", app.ns, version, targetNamespace=target)
    ref = ObjectRef(HELM_RELEASE.kind, app.ns, "web")
    app.flux_objects.append(ref)
    try:
        app.kube.apply(release)
        wait_until(lambda: app.shows(ref, sig.HELM_RETRIES_EXHAUSTED), FAULT_SECONDS, "install retries exhausted")
        hr = app.get(ref)
        assert hr is not None and "not found" in next(
            c["message"] for c in hr["status"]["conditions"] if c["type"] == "Ready"
        )
        wait_until(lambda: app.events(ref, "RecoveryAction"), 30, "a first reset", detail=operator.log)
        app.kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": target}})  # the cause goes away
        wait_until(
            lambda: app.ready(ref) and deployed(app, ref) == version,
            RECOVERY_SECONDS,
            "the install retried",
            detail=operator.log,
        )
        expect_events(app, ref, "reset_helm_release")
    finally:
        app.kube.delete(HELM_RELEASE.api_version, HELM_RELEASE.kind, "web", app.ns)
        app.kube.delete("v1", "Namespace", target)


def test_immutable_change_inside_a_chart_is_replaced(app: App, operator: OperatorProcess) -> None:
    ref, _, _ = git_release(app)
    old_uid = app.kube.get("apps/v1", "Deployment", "web", app.ns)["metadata"]["uid"]  # type: ignore[index]
    relabelled = publish(app.cluster, selectorLabels={"tier": "frontend"})
    app.commit(f"chart {relabelled}", release_files(app, relabelled))
    wait_until(lambda: app.shows(ref, sig.HELM_IMMUTABLE_FIELD), FAULT_SECONDS, "the immutable selector refusal")
    wait_until(
        lambda: app.ready(ref) and deployed(app, ref) == relabelled and app.available("web"),
        RECOVERY_SECONDS,
        f"the release at {relabelled}",
        detail=operator.log,
    )
    live = app.kube.get("apps/v1", "Deployment", "web", app.ns)
    assert live is not None and live["metadata"]["uid"] != old_uid
    assert live["spec"]["selector"]["matchLabels"]["tier"] == "frontend"
    expect_events(app, ref, "recreate_resource")


def test_helmrelease_dependency_cycle_is_reported_within_seconds(app: App, operator: OperatorProcess) -> None:
    version = publish(app.cluster)
    app.kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": app.ns}})
    refs = [ObjectRef(HELM_RELEASE.kind, app.ns, n) for n in ("x", "y")]
    app.flux_objects.extend(refs)
    for name, other in (("x", "y"), ("y", "x")):
        app.kube.apply(chart_release(name, app.ns, version, dependsOn=[{"name": other}]))
    for ref in refs:
        wait_until(
            partial(app.events, ref, "DependencyCycle"), 15, f"a DependencyCycle Event on {ref}", detail=operator.log
        )
    message = app.events(refs[0], "DependencyCycle")[0]["message"]
    assert f"HelmRelease/{app.ns}/x -> HelmRelease/{app.ns}/y -> HelmRelease/{app.ns}/x" in message
    value = operator.sample("flux_dependency_cycle", kind="HelmRelease", namespace=app.ns, name="x")
    assert value == 1
    for ref in refs:
        app.kube.delete(HELM_RELEASE.api_version, ref.kind, ref.name, ref.namespace)
