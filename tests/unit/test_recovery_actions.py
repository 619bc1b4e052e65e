"""Actions against an in-memory API: blue-green order, restart convergence, safety, pins, Helm actions."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fluxmodel.annotations import PINNED_BY
from fluxmodel.kinds import ObjectRef
from recovery import lifecycle
from recovery.actions import ACTIONS, Context, Done, Requeue
from recovery.actions.sources import RETRY_REJECTED_AFTER, check_pin
from recovery.defaults import default_patterns
from recovery.errors import PermanentError
from recovery.health import Failure
from recovery.patterns import ACTION_NAMES
from recovery.state import ObjectState, StateStore
from testsupport.fakekube import FakeKube

GOOD = "main@sha1:" + "a" * 40
BAD = "main@sha1:" + "b" * 40
NEWER = "main@sha1:" + "c" * 40


def selector_message(kind: str = "Deployment", name: str = "web") -> str:
    group = "apps" if kind != "Service" else ""
    return (
        f'{kind}/shop/{name} dry-run failed (Invalid): {kind}.{group} "{name}" is invalid: spec.selector: '
        'Invalid value: {"matchLabels":{"app":"web","tier":"x"}}: field is immutable'
    )


def available(dep: dict[str, Any]) -> dict[str, Any]:
    replicas = dep["spec"].get("replicas", 1)
    dep["status"] = {
        "observedGeneration": dep["metadata"].get("generation", 1),
        "replicas": replicas,
        "updatedReplicas": replicas,
        "readyReplicas": replicas,
        "conditions": [{"type": "Available", "status": "True"}],
    }
    return dep


def deployment(
    name: str = "web", labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    labels = labels or {"app": "web"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": "shop",
            "labels": {
                **labels,
                "kustomize.toolkit.fluxcd.io/name": "shop",
                "kustomize.toolkit.fluxcd.io/namespace": "flux-system",
            },
            "annotations": annotations or {},
        },
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "app", "image": "x"}]}},
        },
    }


def kustomization(message: str, **status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": "shop", "namespace": "flux-system"},
        "spec": {"sourceRef": {"kind": "GitRepository", "name": "gitops"}, "path": "./apps/shop"},
        "status": {
            "conditions": [{"type": "Ready", "status": "False", "reason": "ReconciliationFailed", "message": message}],
            "inventory": {
                "entries": [
                    {"id": "shop_web_apps_Deployment", "v": "v1"},
                    {"id": "shop_db_apps_StatefulSet", "v": "v1"},
                ]
            },
            **status,
        },
    }


class Harness:
    """A fake cluster, an object's state store, and a way to run an action step by step."""

    def __init__(self) -> None:
        self.kube = FakeKube()
        self.store = StateStore(self.kube, "flux-system")

    def context(self, flux_obj: dict[str, Any], failure: Failure, progress: dict[str, Any]) -> Context:
        match = default_patterns().match(flux_obj["kind"], [failure])
        assert match is not None
        ref = ObjectRef.of(
            self.kube.get(flux_obj["apiVersion"], flux_obj["kind"], flux_obj["metadata"]["name"], "flux-system")
            or flux_obj
        )
        return Context(
            self.kube,
            self.kube.get(flux_obj["apiVersion"], flux_obj["kind"], ref.name, ref.namespace) or flux_obj,
            match,
            self.store.get(ref),
            progress,
            self.store.get,
            self.store.save,
            now=lambda: 100.0,
        )

    def run(self, flux_obj: dict[str, Any], failure: Failure, progress: dict[str, Any]) -> Done | Requeue:
        ctx = self.context(flux_obj, failure, progress)
        return ACTIONS[ctx.match.pattern.recovery_action].run(ctx)


def test_every_pattern_action_has_an_implementation() -> None:
    assert set(ACTIONS) == set(ACTION_NAMES)


def test_blue_green_keeps_old_pods_serving_until_the_new_deployment_is_available() -> None:
    h = Harness()
    original = h.kube.add(available(deployment()))
    ks = h.kube.add(kustomization(selector_message()))
    failure = Failure("Ready", "ReconciliationFailed", selector_message())
    progress: dict[str, Any] = {}

    step = h.run(ks, failure, progress)
    assert isinstance(step, Requeue) and "copy" in step.note
    copy_name = progress["steps"]["Deployment/shop/web"]["copy"]
    copy = h.kube.get("apps/v1", "Deployment", copy_name, "shop")
    assert copy is not None and h.kube.get("apps/v1", "Deployment", "web", "shop") is not None  # both serve
    assert copy["spec"]["selector"]["matchLabels"][lifecycle.COPY_LABEL] == "web"
    assert not any(k.startswith("kustomize.toolkit") for k in copy["metadata"]["labels"])

    h.kube.objects[("apps", "Deployment", "shop", copy_name)] = available(copy)
    step = h.run(ks, failure, progress)
    assert isinstance(step, Requeue) and "new Deployment" in step.note
    assert h.kube.get("apps/v1", "Deployment", "web", "shop") is None  # original gone only now
    assert h.kube.get("apps/v1", "Deployment", copy_name, "shop") is not None  # the copy still serves
    requested = [w for w in h.kube.writes if w[0] == "patch" and w[1] == "Kustomization"]
    assert len(requested) == 1

    h.kube.add(available(deployment(labels={"app": "web", "tier": "x"})))  # Flux creates the new one
    done = h.run(ks, failure, progress)
    assert isinstance(done, Done) and done.awaiting["token"] == progress["reconciled"]
    assert h.kube.get("apps/v1", "Deployment", copy_name, "shop") is None
    deletes = h.kube.deletes()
    assert deletes == [("Deployment", "shop", "web", "Background"), ("Deployment", "shop", copy_name, "Background")]
    assert original["metadata"]["uid"] != h.kube.get("apps/v1", "Deployment", "web", "shop")["metadata"]["uid"]  # type: ignore[index]


def test_a_restart_mid_action_converges_without_acting_twice() -> None:
    """Progress is persisted (as JSON in reconciliation-state); a new process resumes from it."""
    h = Harness()
    h.kube.add(available(deployment()))
    ks = h.kube.add(kustomization(selector_message()))
    failure = Failure("Ready", "ReconciliationFailed", selector_message())
    progress: dict[str, Any] = {}
    h.run(ks, failure, progress)
    copy_name = progress["steps"]["Deployment/shop/web"]["copy"]
    h.kube.objects[("apps", "Deployment", "shop", copy_name)] = available(
        h.kube.must("apps/v1", "Deployment", copy_name, "shop")
    )
    h.run(ks, failure, progress)  # deleted the original, requested the reconcile: then the process dies

    resumed = json.loads(json.dumps(progress))
    for _ in range(3):  # the new process runs the step again (and again) before Flux re-creates the object
        assert isinstance(h.run(ks, failure, resumed), Requeue)
    h.kube.add(available(deployment(labels={"app": "web", "tier": "x"})))
    assert isinstance(h.run(ks, failure, resumed), Done)
    creates = [w for w in h.kube.writes if w[0] == "create"]
    assert [c[3] for c in creates] == [copy_name]
    assert [d[2] for d in h.kube.deletes()] == ["web", copy_name]
    assert len([w for w in h.kube.writes if w[0] == "patch" and w[1] == "Kustomization"]) == 1


def test_statefulsets_are_recreated_with_orphan_propagation() -> None:
    h = Harness()
    sts = deployment("db")
    sts["kind"] = "StatefulSet"
    h.kube.add(sts)
    message = (
        'StatefulSet/shop/db dry-run failed (Invalid): StatefulSet.apps "db" is invalid: spec: Forbidden: updates to '
        "statefulset spec for fields other than 'replicas', 'template' are forbidden"
    )
    ks = h.kube.add(kustomization(message))
    progress: dict[str, Any] = {}
    assert isinstance(h.run(ks, Failure("Ready", "ReconciliationFailed", message), progress), Done)
    assert h.kube.deletes() == [("StatefulSet", "shop", "db", "Orphan")]


@pytest.mark.parametrize("kind", ["Secret", "PersistentVolumeClaim", "Namespace"])
def test_user_data_is_never_deleted_even_when_a_message_names_it(kind: str) -> None:
    h = Harness()
    api_version = "v1"
    h.kube.add(
        {
            "apiVersion": api_version,
            "kind": kind,
            "metadata": {
                "name": "data",
                "namespace": "shop",
                "labels": {
                    "kustomize.toolkit.fluxcd.io/name": "shop",
                    "kustomize.toolkit.fluxcd.io/namespace": "flux-system",
                },
            },
        }
    )
    message = f'{kind}/shop/data dry-run failed (Invalid): {kind} "data" is invalid: spec: field is immutable'
    ks = kustomization(message)
    ks["status"]["inventory"]["entries"].append({"id": f"shop_data__{kind}", "v": "v1"})
    h.kube.add(ks)
    patterns = default_patterns()
    match = patterns.match("Kustomization", [Failure("Ready", "ReconciliationFailed", message)])
    assert match is None or not match.targets  # applies_to keeps them out of the defaults ...
    from recovery.patterns import parse

    anything = parse("patterns: [{error_pattern: immutable, recovery_action: recreate_resource}]", "t")
    match = anything.match("Kustomization", [Failure("Ready", "ReconciliationFailed", message)])
    assert match is not None
    ctx = Context(
        h.kube,
        h.kube.get("kustomize.toolkit.fluxcd.io/v1", "Kustomization", "shop", "flux-system") or ks,
        match,
        ObjectState(ObjectRef.of(ks)),
        {},
        h.store.get,
        h.store.save,
    )
    with pytest.raises(PermanentError, match="never deleted"):  # ... and the guarded delete refuses anyway
        ACTIONS["recreate_resource"].run(ctx)
    assert h.kube.deletes() == []


def test_objects_the_flux_object_did_not_apply_are_not_touched() -> None:
    h = Harness()
    stranger = deployment()
    stranger["metadata"]["labels"] = {"app": "web"}
    h.kube.add(stranger)
    ks = kustomization(selector_message())
    ks["status"]["inventory"]["entries"] = []
    h.kube.add(ks)
    with pytest.raises(PermanentError, match="not applied by"):
        h.run(ks, Failure("Ready", "ReconciliationFailed", selector_message()), {})
    assert h.kube.deletes() == []


@pytest.mark.parametrize(
    ("annotations", "why"),
    [
        ({"gitops.flux.io/update-strategy": "rolling"}, "in-place updates only"),
        ({"flux.weave.works/update-strategy": "rolling"}, "in-place updates only"),
        ({"gitops.flux.io/update-strategy": "sideways"}, "not one of"),
        ({"gitops.flux.io/immutable-fields": "spec.clusterIP"}, "not in gitops.flux.io/immutable-fields"),
        ({"gitops.flux.io/recovery-policy": "manual"}, "recovery-policy: manual"),
    ],
)
def test_lifecycle_annotations_can_refuse_a_replacement(annotations: dict[str, str], why: str) -> None:
    h = Harness()
    h.kube.add(available(deployment(annotations=annotations)))
    ks = h.kube.add(kustomization(selector_message()))
    with pytest.raises(PermanentError, match=why):
        h.run(ks, Failure("Ready", "ReconciliationFailed", selector_message()), {})
    assert h.kube.deletes() == []


def test_recreate_strategy_from_the_alias_annotation_and_weight_order() -> None:
    light = deployment(
        "web", annotations={"flux.weave.works/update-strategy": "recreate", "flux.weave.works/dependency-order": "1"}
    )
    heavy = deployment(
        "api", annotations={"gitops.flux.io/update-strategy": "recreate", "gitops.flux.io/dependency-weight": "10"}
    )
    assert lifecycle.strategy_for(light, lifecycle.BLUE_GREEN).strategy == lifecycle.RECREATE
    assert lifecycle.replacement_order([("b-api", heavy), ("a-web", light), ("c-none", None)]) == [
        "c-none",
        "a-web",
        "b-api",
    ]
    h = Harness()
    h.kube.add(available(light))
    h.kube.add(available(heavy))
    message = selector_message("Deployment", "api") + "; " + selector_message("Deployment", "web")
    ks = kustomization(message)
    ks["status"]["inventory"]["entries"].append({"id": "shop_api_apps_Deployment", "v": "v1"})
    h.kube.add(ks)
    assert isinstance(h.run(ks, Failure("Ready", "ReconciliationFailed", message), {}), Done)
    assert [d[2] for d in h.kube.deletes()] == ["web", "api"]  # weight 1 before weight 10


def gitrepository(
    name: str = "gitops", commit: str | None = None, annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    ref: dict[str, Any] = {"branch": "main"}
    if commit:
        ref["commit"] = commit
    return {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": name, "namespace": "flux-system", "annotations": annotations or {}},
        "spec": {"url": "http://git/repo.git", "interval": "1m", "ref": ref, "secretRef": {"name": "creds"}},
    }


def health_failure() -> Failure:
    return Failure(
        "Ready",
        "HealthCheckFailed",
        "health check failed after 30s: timeout waiting for: [Deployment/shop/web status: 'InProgress']",
    )


def test_rollback_pins_the_source_and_a_new_push_unpins_it() -> None:
    h = Harness()
    h.kube.add(gitrepository())
    ks = h.kube.add(kustomization("x", lastAppliedRevision=GOOD, lastAttemptedRevision=BAD))
    done = h.run(ks, health_failure(), {})
    assert isinstance(done, Done) and done.awaiting == {"revision": GOOD}
    src = h.kube.get("source.toolkit.fluxcd.io/v1", "GitRepository", "gitops", "flux-system")
    assert src is not None and src["spec"]["ref"] == {"branch": "main", "commit": "a" * 40}
    assert src["metadata"]["annotations"][PINNED_BY] == "Kustomization/flux-system/shop"
    probe = h.kube.get("source.toolkit.fluxcd.io/v1", "GitRepository", "gitops-head-probe", "flux-system")
    assert (
        probe is not None and "commit" not in probe["spec"]["ref"] and probe["spec"]["secretRef"] == {"name": "creds"}
    )
    (owner,) = probe["metadata"]["ownerReferences"]  # deleting the source deletes its probe
    assert (owner["kind"], owner["name"], owner["uid"]) == ("GitRepository", "gitops", src["metadata"]["uid"])
    assert isinstance(h.run(ks, health_failure(), {}), Done)  # idempotent
    assert len([w for w in h.kube.writes if w[0] == "patch" and w[3] == "gitops" and "spec" in (w[4] or {})]) == 1

    state = h.store.get(ObjectRef("GitRepository", "flux-system", "gitops"))
    assert state.pin is not None and state.pin["bad"] == BAD
    src = h.kube.get("source.toolkit.fluxcd.io/v1", "GitRepository", "gitops", "flux-system")
    assert src is not None
    probe["status"] = {"artifact": {"revision": BAD}}
    assert check_pin(h.kube, state, src, probe, 100.0) is None  # the head is still the bad commit
    src = h.kube.merge_patch(
        "source.toolkit.fluxcd.io/v1",
        "GitRepository",
        "gitops",
        "flux-system",
        {"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "pushed"}}},
    )
    assert "forwarded" in (check_pin(h.kube, state, src, probe, 100.0) or "")
    probe["status"] = {"artifact": {"revision": NEWER}}
    summary = check_pin(h.kube, state, src, probe, 100.0)
    assert summary is not None and "unpinned" in summary and NEWER in summary
    src = h.kube.get("source.toolkit.fluxcd.io/v1", "GitRepository", "gitops", "flux-system")
    assert (
        src is not None and src["spec"]["ref"] == {"branch": "main"} and PINNED_BY not in src["metadata"]["annotations"]
    )
    assert h.kube.get("source.toolkit.fluxcd.io/v1", "GitRepository", "gitops-head-probe", "flux-system") is None
    assert state.pin is None


def test_rollback_refuses_without_an_earlier_good_revision_or_over_a_foreign_pin() -> None:
    h = Harness()
    h.kube.add(gitrepository(commit="d" * 40))
    same = h.kube.add(kustomization("x", lastAppliedRevision=BAD, lastAttemptedRevision=BAD))
    with pytest.raises(PermanentError, match="last good one"):
        h.run(same, health_failure(), {})
    ks = h.kube.add({**kustomization("x", lastAppliedRevision=GOOD, lastAttemptedRevision=BAD)})
    with pytest.raises(PermanentError, match="someone else"):
        h.run(ks, health_failure(), {})


def test_rollback_leaves_a_source_held_by_a_stage_to_the_stage_controller() -> None:
    """One pinning mechanism, two users: the operator never re-pins what a StagedKustomization holds back."""
    h = Harness()
    held = {PINNED_BY: "StagedKustomization/flux-system/shop"}
    h.kube.add(gitrepository(commit="b" * 40, annotations=held))
    ks = h.kube.add(kustomization("x", lastAppliedRevision=GOOD, lastAttemptedRevision=BAD))
    with pytest.raises(PermanentError, match=r"held by StagedKustomization/flux-system/shop .* rolls its stage back"):
        h.run(ks, health_failure(), {})
    src = h.kube.must("source.toolkit.fluxcd.io/v1", "GitRepository", "gitops", "flux-system")
    assert src["spec"]["ref"]["commit"] == "b" * 40
    assert not [w for w in h.kube.writes if w[0] == "patch" and w[3] == "gitops"]


def helmrelease(**meta_labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": "web", "namespace": "shop", "generation": 3, "labels": meta_labels},
        "spec": {"chart": {"spec": {"chart": "demo-app", "version": "1.9.0"}}},
        "status": {
            "history": [{"chartVersion": "1.9.0", "status": "failed"}, {"chartVersion": "1.0.0", "status": "deployed"}]
        },
    }


STALLED = Failure("Stalled", "RetriesExceeded", "Failed to upgrade after 1 attempt(s)")


def test_reset_sets_force_and_reset_equal_to_requested() -> None:
    h = Harness()
    hr = h.kube.add(helmrelease())
    done = h.run(hr, Failure("Stalled", "RetriesExceeded", "Failed to install after 1 attempt(s)"), {})
    annotations = h.kube.get("helm.toolkit.fluxcd.io/v2", "HelmRelease", "web", "shop")["metadata"]["annotations"]  # type: ignore[index]
    token = annotations["reconcile.fluxcd.io/requestedAt"]
    assert annotations["reconcile.fluxcd.io/forceAt"] == annotations["reconcile.fluxcd.io/resetAt"] == token
    assert isinstance(done, Done) and done.awaiting == {"token": token}


def test_rollback_of_a_helmrelease_applied_by_hand_sets_the_deployed_version_back() -> None:
    h = Harness()
    hr = h.kube.add(helmrelease())
    assert isinstance(h.run(hr, STALLED, {}), Done)
    after = h.kube.get("helm.toolkit.fluxcd.io/v2", "HelmRelease", "web", "shop")
    assert after is not None and after["spec"]["chart"]["spec"]["version"] == "1.0.0"
    assert after["metadata"]["annotations"]["gitops.flux.io/rolled-back-from"] == "1.9.0"


def test_rollback_of_a_release_never_deployed_tries_it_again() -> None:
    """A failed install followed by failed upgrades: nothing to go back to, so it is reset (not escalated)."""
    h = Harness()
    never = helmrelease()
    never["status"]["history"] = [{"chartVersion": "1.9.0", "status": "failed"}]
    hr = h.kube.add(never)
    done = h.run(hr, STALLED, {})
    annotations = h.kube.must("helm.toolkit.fluxcd.io/v2", "HelmRelease", "web", "shop")["metadata"]["annotations"]
    assert isinstance(done, Done) and "nothing was ever deployed" in done.summary
    assert annotations["reconcile.fluxcd.io/resetAt"] == annotations["reconcile.fluxcd.io/requestedAt"]
    assert h.kube.must("helm.toolkit.fluxcd.io/v2", "HelmRelease", "web", "shop")["spec"]["chart"]["spec"][
        "version"
    ] == ("1.9.0")


def test_rollback_of_a_helmrelease_from_git_pins_its_kustomizations_source() -> None:
    h = Harness()
    h.kube.add(gitrepository())
    h.kube.add(kustomization("ok", lastAppliedRevision=BAD, lastAttemptedRevision=BAD))
    hr = h.kube.add(
        helmrelease(
            **{"kustomize.toolkit.fluxcd.io/name": "shop", "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}
        )
    )
    state = h.store.get(ObjectRef.of(hr))
    state.last_successful_source_revision = GOOD
    h.store.save(state)
    done = h.run(hr, STALLED, {})
    assert isinstance(done, Done) and done.awaiting == {"generation": 3}
    src = h.kube.get("source.toolkit.fluxcd.io/v1", "GitRepository", "gitops", "flux-system")
    assert src is not None and src["spec"]["ref"]["commit"] == "a" * 40


def test_a_rejected_revision_is_retried_with_backoff_then_stays_pinned() -> None:
    h = Harness()  # its clock says 100.0
    h.kube.add(gitrepository())
    h.kube.add(kustomization("ok", lastAppliedRevision=BAD, lastAttemptedRevision=BAD))
    origin = {"kustomize.toolkit.fluxcd.io/name": "shop", "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}
    hr = h.kube.add(helmrelease(**origin))
    state = h.store.get(ObjectRef.of(hr))
    state.last_successful_source_revision = GOOD
    h.store.save(state)
    source = ObjectRef("GitRepository", "flux-system", "gitops")
    for retry, after in enumerate(RETRY_REJECTED_AFTER, start=1):
        assert isinstance(h.run(hr, STALLED, {}), Done)
        pinned = h.store.get(source)
        assert pinned.pin is not None and pinned.pin["retry_at"] == 100.0 + after
        src = h.kube.get("source.toolkit.fluxcd.io/v1", "GitRepository", "gitops", "flux-system")
        assert src is not None
        assert check_pin(h.kube, pinned, src, None, 100.0 + after - 1) is None  # not yet due
        summary = check_pin(h.kube, pinned, src, None, 100.0 + after)
        assert summary is not None and f"try {BAD} again (retry {retry} of" in summary
        h.store.save(pinned)
        src = h.kube.get("source.toolkit.fluxcd.io/v1", "GitRepository", "gitops", "flux-system")
        assert src is not None and "commit" not in src["spec"]["ref"]
    assert isinstance(h.run(hr, STALLED, {}), Done)  # the retries are spent: this pin stays until a new push
    final = h.store.get(source)
    assert final.pin is not None and "retry_at" not in final.pin
