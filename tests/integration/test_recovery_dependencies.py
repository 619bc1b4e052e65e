"""Dependency chain resolution on the real controllers: a blocked 3-deep chain and a dependsOn cycle.

Flux re-checks a blocked Kustomization every --requeue-dependency (30 s), level by level, and reports a cycle
nowhere (kustomize-controller only logs it, then enqueues none of the source's Kustomizations on a new
revision). The operator reconciles each level as soon as the one before is Ready, reports the cycle on the
objects within seconds, and gets the fix in Git applied although Flux would not enqueue it.
"""

from __future__ import annotations

import time
from functools import partial

from fluxmodel import signatures as sig
from fluxmodel.kinds import FLUX_NAMESPACE, KUSTOMIZATION, ObjectRef
from foundation.waiting import wait_until
from injectors.apps import deployment, dump, kustomization_file
from injectors.testapp import App
from testsupport.operatorprocess import OperatorProcess


def level_files(app: App, level: str) -> dict[str, str]:
    return {
        f"{app.path}/{level}/deployment.yaml": dump(deployment(level, app.ns, {"app": level}, replicas=1)),
        f"{app.path}/{level}/kustomization.yaml": dump(kustomization_file(["deployment.yaml"])),
    }


def test_a_blocked_three_deep_chain_follows_its_root_at_once(app: App, operator: OperatorProcess) -> None:
    files = {**level_files(app, "root"), **level_files(app, "mid"), **level_files(app, "leaf")}
    first = app.setup(files, kustomization=False)
    names = {level: f"{app.name}-{level}" for level in ("root", "mid", "leaf")}
    root = app.kustomization(names["root"], f"{app.path}/root")
    mid = app.kustomization(names["mid"], f"{app.path}/mid", dependsOn=[{"name": names["root"]}])
    leaf = app.kustomization(names["leaf"], f"{app.path}/leaf", dependsOn=[{"name": names["mid"]}])
    wait_until(
        lambda: all(app.ready(r, first) for r in (root, mid, leaf)), 150, "the chain to be Ready", detail=operator.log
    )

    broken = kustomization_file(["deployment.yaml", "missing.yaml"])
    app.commit("break the root", {f"{app.path}/root/kustomization.yaml": dump(broken)})
    wait_until(
        lambda: app.shows(mid, sig.DEPENDENCY_NOT_READY) and app.shows(leaf, sig.DEPENDENCY_NOT_READY),
        120,
        "the chain blocked behind its root",
        detail=operator.log,
    )
    wait_until(
        lambda: [e for e in app.events(root) if e.get("reason") == "BuildFailed"], 30, "the root's BuildFailed Event"
    )
    assert not app.ready(root)

    head = app.commit(
        "fix the root", {f"{app.path}/root/kustomization.yaml": dump(kustomization_file(["deployment.yaml"]))}
    )
    wait_until(
        lambda: all(app.ready(r, head) for r in (root, mid, leaf)),
        120,
        "the whole chain Ready at the fix",
        detail=operator.log,
    )
    for ref in (mid, leaf):
        kicks = [e for e in app.events(ref, "RecoveryAction") if "reconcile_dependents" in e.get("message", "")]
        assert kicks, f"{ref} was not reconciled by the operator"


def test_a_cycle_is_reported_within_seconds_and_the_fix_in_git_is_applied(app: App, operator: OperatorProcess) -> None:
    a, b = f"{app.name}-a", f"{app.name}-b"

    def flux_ks(name: str, depends: str | None) -> dict[str, object]:
        return app.manifest(name, f"{app.path}/{name[-1]}", depends_on=(depends,) if depends else (), wait=False)

    files = {
        **level_files(app, "a"),
        **level_files(app, "b"),
        f"{app.path}/flux/a.yaml": dump(flux_ks(a, b)),
        f"{app.path}/flux/b.yaml": dump(flux_ks(b, a)),
        f"{app.path}/flux/kustomization.yaml": dump(kustomization_file(["a.yaml", "b.yaml"])),
    }
    app.setup(files, kustomization=False)
    refs = [ObjectRef(KUSTOMIZATION.kind, FLUX_NAMESPACE, n) for n in (a, b)]
    app.flux_objects.extend(refs)
    parent = app.kustomization(app.name, f"{app.path}/flux", wait=False)
    wait_until(lambda: all(app.get(r) for r in refs), 60, "the cycle's Kustomizations applied from Git")
    created = time.monotonic()
    for ref in refs:
        wait_until(partial(app.events, ref, "DependencyCycle"), 10, f"DependencyCycle on {ref}", detail=operator.log)
    reported = time.monotonic() - created
    assert reported < 10
    wait_until(
        lambda: all(app.shows(r, sig.DEPENDENCY_NOT_READY) for r in refs), 30, "Flux showing the cycle as waiting"
    )
    assert operator.sample("flux_dependency_cycle", kind="Kustomization", namespace=FLUX_NAMESPACE, name=a) == 1

    head = app.commit("break the cycle", {f"{app.path}/flux/b.yaml": dump(flux_ks(b, None))})
    wait_until(
        lambda: app.ready(parent, head) and all(app.ready(r, head) for r in refs),
        120,
        "everything Ready after the fix",
        detail=operator.log,
    )
    kicked = [e for e in app.events(parent, "RecoveryAction") if "cycle" in e.get("message", "")]
    assert kicked, "the parent was not reconciled past the cycle by the operator"
    wait_until(
        lambda: (
            operator.sample("flux_dependency_cycle", kind="Kustomization", namespace=FLUX_NAMESPACE, name=a) is None
        ),
        30,
        "the cycle metric cleared",
    )
