"""Reading status from Flux and workload objects (conditions), annotations and origin labels, kinds and references,
and the failure signatures against realistic messages of the pinned controllers and their near misses."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fluxmodel import signatures as sig
from fluxmodel.annotations import (
    DEPENDENCY_WEIGHT,
    FORCE_AT,
    RECOVERY_POLICY,
    REQUESTED_AT,
    RESET_AT,
    UPDATE_STRATEGY,
    annotation,
    now_token,
    owner,
    reconcile_request,
)
from fluxmodel.conditions import (
    artifact_revision,
    condition,
    conditions,
    deployment_available,
    is_ready,
    is_stalled,
    last_applied_revision,
    last_attempted_revision,
    observed_current,
    revision_commit,
)
from fluxmodel.kinds import FLUX_KINDS, HELM_RELEASE, KUSTOMIZATION, ObjectRef, flux_kind

SHA = "0123456789abcdef0123456789abcdef01234567"


def cond(type_: str, status: str, reason: str = "", message: str = "", **extra: Any) -> dict[str, Any]:
    return {"type": type_, "status": status, "reason": reason, "message": message, **extra}


def obj(kind: str, *conds: dict[str, Any], generation: int | None = None, **status: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "web", "namespace": "shop"}
    if generation is not None:
        meta["generation"] = generation
    return {"kind": kind, "metadata": meta, "status": {"conditions": list(conds), **status}}


# -- conditions ------------------------------------------------------------------------------------------


def test_conditions_by_type_with_camel_or_snake_case_keys() -> None:
    o = obj(
        "Kustomization",
        cond("Ready", "False", "ReconciliationFailed", "boom", lastTransitionTime="2026-01-01T00:00:00Z"),
        cond("Healthy", "True", last_transition_time="2026-01-01T00:00:01Z", observedGeneration=3),
    )
    found = conditions(o)
    assert list(found) == ["Ready", "Healthy"]
    ready = found["Ready"]
    assert (ready.status, ready.reason, ready.message, ready.true) == ("False", "ReconciliationFailed", "boom", False)
    assert ready.last_transition_time == "2026-01-01T00:00:00Z"
    assert found["Healthy"].last_transition_time == "2026-01-01T00:00:01Z" and found["Healthy"].true
    assert found["Healthy"].observed_generation == 3
    assert condition(o) == ready and condition(o, "Stalled") is None


@pytest.mark.parametrize("o", [{}, {"status": None}, {"status": {}}, {"status": {"conditions": None}}])
def test_objects_without_conditions(o: dict[str, Any]) -> None:
    assert conditions(o) == {} and condition(o) is None and not is_ready(o) and not is_stalled(o)


def test_a_condition_without_reason_or_message_reads_as_empty_strings() -> None:
    c = condition({"status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}})
    assert c is not None and (c.reason, c.message, c.last_transition_time) == ("", "", None)


@pytest.mark.parametrize(
    ("generation", "observed", "current"), [(None, None, True), (3, 3, True), (3, 2, False), (3, None, False)]
)
def test_observed_current(generation: int | None, observed: int | None, current: bool) -> None:
    o = obj("Kustomization", generation=generation)
    if observed is not None:
        o["status"]["observedGeneration"] = observed
    assert observed_current(o) is current


@pytest.mark.parametrize(
    ("ready", "generation", "observed", "expected"),
    [
        ("True", 2, 2, True),
        ("True", 3, 2, False),  # Ready for the previous spec
        ("False", 2, 2, False),
        ("Unknown", 2, 2, False),
    ],
)
def test_is_ready_needs_ready_true_for_the_current_generation(
    ready: str, generation: int, observed: int, expected: bool
) -> None:
    o = obj("Kustomization", cond("Ready", ready), generation=generation, observedGeneration=observed)
    assert is_ready(o) is expected


def test_is_stalled() -> None:
    assert is_stalled(obj("HelmRelease", cond("Stalled", "True", "RetriesExceeded")))
    assert not is_stalled(obj("HelmRelease", cond("Stalled", "False", "RetriesExceeded")))


def test_revisions_of_a_kustomization() -> None:
    o = obj("Kustomization", lastAppliedRevision=f"main@sha1:{SHA}", lastAttemptedRevision="main@sha1:" + "f" * 40)
    assert last_applied_revision(o) == f"main@sha1:{SHA}"
    assert last_attempted_revision(o) == "main@sha1:" + "f" * 40
    assert last_applied_revision(obj("Kustomization", lastAppliedRevision="")) is None
    assert last_attempted_revision(obj("Kustomization")) is None


def test_a_helmrelease_runs_its_latest_deployed_snapshot_not_its_failed_upgrade() -> None:
    history = [
        {"chartVersion": "1.1.0", "status": "failed"},
        {"chartVersion": "1.0.0", "status": "deployed"},
        {"chartVersion": "0.9.0", "status": "superseded"},
    ]
    assert last_applied_revision(obj("HelmRelease", history=history)) == "1.0.0"
    assert last_applied_revision(obj("HelmRelease", history=history[:1])) is None
    assert last_applied_revision(obj("HelmRelease")) is None
    assert last_applied_revision(obj("HelmRelease", history=[{"status": "deployed", "chartVersion": ""}])) is None
    # A HelmRelease has no lastAppliedRevision of its own: the field is ignored.
    assert last_applied_revision(obj("HelmRelease", lastAppliedRevision="1.2.3")) is None


@pytest.mark.parametrize(
    ("revision", "commit"),
    [
        (f"main@sha1:{SHA}", SHA),
        (f"feature/x@sha1:{SHA}", SHA),
        (f"sha1:{SHA}", SHA),
        (f"main/{SHA}", SHA),
        (SHA, SHA),
        ("main@sha256:" + "a" * 64, None),  # an OCI digest is not a commit
        (f"main@sha1:{SHA}0", None),
        (f"main@sha1:{SHA.upper()}", None),
        (f"v1.0.0@sha1:{SHA[:-1]}", None),
        ("", None),
        (None, None),
        ("1.0.0", None),
    ],
)
def test_revision_commit(revision: str | None, commit: str | None) -> None:
    assert revision_commit(revision) == commit


@given(branch=st.from_regex(r"\A[A-Za-z0-9._/-]{1,30}\Z"), sha=st.from_regex(r"\A[0-9a-f]{40}\Z"))
def test_revision_commit_finds_the_sha_after_any_branch(branch: str, sha: str) -> None:
    assert revision_commit(f"{branch}@sha1:{sha}") == sha


def test_artifact_revision() -> None:
    assert artifact_revision(obj("GitRepository", artifact={"revision": f"main@sha1:{SHA}"})) == f"main@sha1:{SHA}"
    assert artifact_revision(obj("GitRepository")) is None
    assert artifact_revision(obj("GitRepository", artifact=None)) is None


def deployment(
    replicas: int | None = 3, available: str = "True", generation: int = 2, status: dict[str, Any] | None = None
) -> dict[str, Any]:
    n = 1 if replicas is None else replicas
    body = {
        "observedGeneration": 2,
        "replicas": n,
        "updatedReplicas": n,
        "readyReplicas": n,
        "conditions": [cond("Available", available, "MinimumReplicasAvailable")],
        **(status or {}),
    }
    spec = {} if replicas is None else {"replicas": replicas}
    return {"kind": "Deployment", "metadata": {"generation": generation}, "spec": spec, "status": body}


@pytest.mark.parametrize(
    ("o", "available"),
    [
        pytest.param(deployment(), True, id="available"),
        pytest.param(deployment(replicas=None), True, id="default-replicas"),
        pytest.param(deployment(replicas=0), True, id="scaled-to-zero"),
        pytest.param(deployment(available="False"), False, id="available-false"),
        pytest.param(deployment(generation=3), False, id="stale-generation"),
        pytest.param(deployment(status={"readyReplicas": 2}), False, id="not-all-ready"),
        pytest.param(deployment(status={"updatedReplicas": 2}), False, id="not-all-updated"),
        pytest.param(deployment(status={"replicas": 4}), False, id="surplus-pods"),
        pytest.param(deployment(status={"conditions": []}), False, id="no-condition"),
        pytest.param(None, False, id="none"),
        pytest.param({}, False, id="empty"),
    ],
)
def test_deployment_available(o: dict[str, Any] | None, available: bool) -> None:
    assert deployment_available(o) is available


# -- annotations -----------------------------------------------------------------------------------------


def annotated(annotations: dict[str, Any] | None = None, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": "web", "annotations": annotations, "labels": labels}}


def test_annotation_by_its_name_or_its_design_document_alias() -> None:
    assert annotation(annotated({UPDATE_STRATEGY: "recreate"}), UPDATE_STRATEGY) == "recreate"
    assert annotation(annotated({"flux.weave.works/update-strategy": "blue-green"}), UPDATE_STRATEGY) == "blue-green"
    both = annotated({UPDATE_STRATEGY: "recreate", "flux.weave.works/update-strategy": "blue-green"})
    assert annotation(both, UPDATE_STRATEGY) == "recreate"
    assert annotation(annotated({"flux.weave.works/dependency-order": 5}), DEPENDENCY_WEIGHT) == "5"
    assert annotation(annotated({"flux.weave.works/recovery-policy": "x"}), RECOVERY_POLICY) is None  # no alias
    assert annotation(annotated(None), UPDATE_STRATEGY) is None
    assert annotation({}, UPDATE_STRATEGY) is None


def test_owner_from_origin_labels() -> None:
    ks = {"kustomize.toolkit.fluxcd.io/name": "apps", "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}
    hr = {"helm.toolkit.fluxcd.io/name": "web", "helm.toolkit.fluxcd.io/namespace": "shop"}
    assert owner(annotated(labels=ks)) == ("Kustomization", "flux-system", "apps")
    assert owner(annotated(labels=hr)) == ("HelmRelease", "shop", "web")
    # A Kustomization that applies a HelmRelease's objects? The chart's objects carry both: Helm is closer.
    assert owner(annotated(labels={**ks, **hr})) == ("HelmRelease", "shop", "web")
    assert owner(annotated(labels={"kustomize.toolkit.fluxcd.io/name": "apps"})) is None
    assert owner(annotated(labels={**hr, "helm.toolkit.fluxcd.io/namespace": ""})) is None
    assert owner({}) is None


def test_reconcile_request_patches() -> None:
    assert reconcile_request("t1") == {"metadata": {"annotations": {REQUESTED_AT: "t1"}}}
    assert reconcile_request("t2", force=True, reset=True) == {
        "metadata": {"annotations": {REQUESTED_AT: "t2", FORCE_AT: "t2", RESET_AT: "t2"}}
    }
    fresh = reconcile_request(reset=True)["metadata"]["annotations"]
    assert fresh[REQUESTED_AT] == fresh[RESET_AT] and FORCE_AT not in fresh
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", fresh[REQUESTED_AT])


def test_now_tokens_are_fresh_and_ordered() -> None:
    tokens = [now_token() for _ in range(3)]
    assert tokens == sorted(tokens)


# -- kinds -----------------------------------------------------------------------------------------------


def test_flux_kinds_and_api_versions() -> None:
    assert KUSTOMIZATION.api_version == "kustomize.toolkit.fluxcd.io/v1"
    assert HELM_RELEASE.api_version == "helm.toolkit.fluxcd.io/v2"
    assert flux_kind("GitRepository").plural == "gitrepositories"
    assert all(flux_kind(name).kind == name for name in FLUX_KINDS)


def test_an_unknown_flux_kind_names_the_known_ones() -> None:
    with pytest.raises(KeyError) as info:
        flux_kind("Kustomisation")
    assert info.value.args[0] == (
        "unknown Flux kind 'Kustomisation'; known: GitRepository, HelmChart, HelmRelease, HelmRepository, "
        "Kustomization, StagedKustomization"
    )


def test_object_refs() -> None:
    ref = ObjectRef("HelmRelease", "shop", "web")
    assert str(ref) == "HelmRelease/shop/web" and ref.key == "helmrelease.shop.web"
    assert ObjectRef.of({"kind": "Deployment", "metadata": {"name": "web"}}) == ObjectRef(
        "Deployment", "default", "web"
    )
    assert ObjectRef.of({"kind": "Service", "metadata": {"name": "a", "namespace": "n"}}, "x") == ObjectRef(
        "Service", "n", "a"
    )
    assert ObjectRef.parse("HelmRelease/shop/web") == ref
    assert ObjectRef.parse("shop/web") == ObjectRef("Kustomization", "shop", "web")
    assert ObjectRef.parse("web") == ObjectRef("Kustomization", "flux-system", "web")
    assert ObjectRef.parse("web", "HelmRelease", "apps") == ObjectRef("HelmRelease", "apps", "web")
    assert sorted([ObjectRef("B", "a", "a"), ObjectRef("A", "z", "z")])[0].kind == "A"


@pytest.mark.parametrize("text", ["", "a/b/c/d"])
def test_a_bad_object_reference_names_the_accepted_forms(text: str) -> None:
    with pytest.raises(ValueError, match=r"expected kind/namespace/name, namespace/name or name") as info:
        ObjectRef.parse(text)
    assert repr(text) in str(info.value)


name = st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?\Z")


@given(kind=st.sampled_from(sorted(FLUX_KINDS)), namespace=name, obj_name=name)
def test_object_refs_round_trip_through_text(kind: str, namespace: str, obj_name: str) -> None:
    ref = ObjectRef(kind, namespace, obj_name)
    assert ObjectRef.parse(str(ref)) == ref


# -- signatures: realistic messages of the pinned controllers and near misses -----------------------------

KS_SELECTOR = (
    'Deployment/ns/web dry-run failed (Invalid): Deployment.apps "web" is invalid: spec.selector: Invalid value: '
    'v1.LabelSelector{MatchLabels:map[string]string{"app":"web", "tier":"x"}, MatchExpressions:[]v1.'
    "LabelSelectorRequirement(nil)}: field is immutable"
)
KS_SELECTOR_OLD = (
    'Deployment/ns/web dry-run failed, reason: Invalid: Deployment.apps "web" is invalid: spec.selector: '
    "Invalid value: v1.LabelSelector{...}: field is immutable"
)
KS_SERVICE = (
    'Service/ns/web dry-run failed (Invalid): Service "web" is invalid: spec.clusterIPs[0]: Invalid value: '
    '[]string{"10.96.0.5"}: may not change once set'
)
KS_STATEFULSET = (
    'StatefulSet/ns/db dry-run failed (Invalid): StatefulSet.apps "db" is invalid: spec: Forbidden: updates to '
    "statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', "
    "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
)
KS_JOB = (
    'Job/ns/migrate dry-run failed (Invalid): Job.batch "migrate" is invalid: spec.template: Invalid value: '
    "core.PodTemplateSpec{...}: field is immutable"
)
KS_SELECTOR_MISMATCH = (
    'Deployment/ns/web dry-run failed (Invalid): Deployment.apps "web" is invalid: spec.template.metadata.labels: '
    'Invalid value: map[string]string{"app":"other"}: `selector` does not match template `labels`'
)
KS_SELECTOR_REQUIRED = (
    'Deployment/ns/web dry-run failed (Invalid): Deployment.apps "web" is invalid: spec.selector: Required value'
)
KS_FORBIDDEN = (
    'ConfigMap/ns/cfg dry-run failed (Forbidden): configmaps "cfg" is forbidden: User '
    '"system:serviceaccount:flux-system:kustomize-controller" cannot patch resource "configmaps"'
)
KS_WEBHOOK = (
    'Deployment/ns/web dry-run failed (Forbidden): admission webhook "policy.example.com" denied the request: '
    "spec.selector: field is immutable by policy"
)
KS_HEALTH = "health check failed after 30.078047796s: timeout waiting for: [Deployment/ns/web status: 'InProgress']"
KS_ARTIFACT = "Source is not ready, artifact not found, retrying in 30s"
DEPENDENCY = "dependency 'flux-system/a' is not ready"
HR_DEPENDENCY = "dependency 'flux-system/a' is not ready according to readyExpr eval"
HR_UPGRADE = (
    "Helm upgrade failed for release ns/web with chart demo-app@1.1.0: server-side apply failed for object "
    'ns/web apps/v1, Kind=Deployment: Deployment.apps "web" is invalid: spec.replicas: Invalid value: -1: must '
    "be greater than or equal to 0"
)
HR_IMMUTABLE = (
    "Helm upgrade failed for release ns/web with chart demo-app@1.2.0: server-side apply failed for object "
    'ns/web apps/v1, Kind=Deployment: Deployment.apps "web" is invalid: spec.selector: Invalid value: '
    '{"matchLabels":{"app.kubernetes.io/name":"web","tier":"x"}}: field is immutable'
)
HR_IMMUTABLE_HELM3 = (
    'Helm upgrade failed for release ns/web with chart demo-app@1.2.0: cannot patch "web" with kind Service: '
    'Service "web" is invalid: spec.clusterIPs[0]: Invalid value: []string{"10.96.0.9"}: may not change once set'
)
HR_TIMEOUT = (
    "Helm upgrade failed for release ns/web with chart demo-app@1.8.0: timeout waiting for: "
    "[Deployment/ns/web status: 'InProgress']"
)
HR_TIMEOUT_HELM3 = "Helm upgrade failed for release ns/web with chart demo-app@1.8.0: context deadline exceeded"
HR_INSTALL = (
    "Helm install failed for release ns/web with chart demo-app@1.0.0: "
    'Deployment.apps "web" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0'
)
HR_ROLLBACK = "Helm rollback to previous release ns/web.v2 with chart demo-app@1.0.0 succeeded"
GIT_FAILED = (
    "failed to checkout and determine revision: unable to clone 'http://127.0.0.1:41234/gitops.git': "
    'Get "http://127.0.0.1:41234/gitops.git/info/refs?service=git-upload-pack": dial tcp 127.0.0.1:41234: '
    "connect: connection refused"
)

KS_FAILED = ("Kustomization", "Ready", "False", "ReconciliationFailed")
RELEASED_UPGRADE = ("HelmRelease", "Released", "False", "UpgradeFailed")
STALLED = ("HelmRelease", "Stalled", "True", "RetriesExceeded")

CASES: list[tuple[str, tuple[str, str, str, str], str, list[str]]] = [
    ("selector", KS_FAILED, KS_SELECTOR, ["selector-immutable", "immutable-field", "dry-run-invalid"]),
    ("selector-old-form", KS_FAILED, KS_SELECTOR_OLD, ["selector-immutable", "immutable-field", "dry-run-invalid"]),
    ("service-clusterip", KS_FAILED, KS_SERVICE, ["immutable-field", "dry-run-invalid"]),
    ("statefulset-spec", KS_FAILED, KS_STATEFULSET, ["immutable-field", "dry-run-invalid"]),
    ("job-template", KS_FAILED, KS_JOB, ["immutable-field", "dry-run-invalid"]),
    ("selector-mismatch-on-create", KS_FAILED, KS_SELECTOR_MISMATCH, ["dry-run-invalid"]),
    ("selector-required", KS_FAILED, KS_SELECTOR_REQUIRED, ["dry-run-invalid"]),
    ("rbac-forbidden", KS_FAILED, KS_FORBIDDEN, []),
    ("webhook-forbidden", KS_FAILED, KS_WEBHOOK, []),
    ("health", ("Kustomization", "Ready", "False", "HealthCheckFailed"), KS_HEALTH, ["health-check-failed"]),
    ("health-message-other-reason", KS_FAILED, KS_HEALTH, []),
    ("artifact", ("Kustomization", "Ready", "False", "ArtifactFailed"), KS_ARTIFACT, ["artifact-failed"]),
    ("ks-dependency", ("Kustomization", "Ready", "False", "DependencyNotReady"), DEPENDENCY, ["dependency-not-ready"]),
    ("hr-dependency", ("HelmRelease", "Ready", "False", "DependencyNotReady"), HR_DEPENDENCY, ["dependency-not-ready"]),
    (
        "ks-dependency-revision",
        ("Kustomization", "Ready", "False", "DependencyNotReady"),
        "dependency 'flux-system/a' revision is not up to date",
        ["dependency-not-ready"],
    ),
    ("dependency-message-other-reason", KS_FAILED, DEPENDENCY, []),
    (
        "dependency-reason-other-message",
        ("Kustomization", "Ready", "False", "DependencyNotReady"),
        "dependency 'flux-system/a' is ready",
        [],
    ),
    ("helm-upgrade", RELEASED_UPGRADE, HR_UPGRADE, ["helm-upgrade-failed"]),
    ("helm-immutable", RELEASED_UPGRADE, HR_IMMUTABLE, ["helm-immutable-field", "helm-upgrade-failed"]),
    ("helm3-immutable", RELEASED_UPGRADE, HR_IMMUTABLE_HELM3, ["helm-immutable-field", "helm-upgrade-failed"]),
    ("helm-timeout", RELEASED_UPGRADE, HR_TIMEOUT, ["helm-upgrade-timeout", "helm-upgrade-failed"]),
    ("helm3-timeout", RELEASED_UPGRADE, HR_TIMEOUT_HELM3, ["helm-upgrade-timeout", "helm-upgrade-failed"]),
    ("helm-install", ("HelmRelease", "Released", "False", "InstallFailed"), HR_INSTALL, ["helm-install-failed"]),
    ("install-message-upgrade-reason", RELEASED_UPGRADE, HR_INSTALL, []),
    ("upgrade-message-on-ready", ("HelmRelease", "Ready", "False", "UpgradeFailed"), HR_UPGRADE, []),
    (
        "upgrade-succeeded",
        ("HelmRelease", "Released", "True", "UpgradeSucceeded"),
        "Helm upgrade succeeded for release ns/web with chart demo-app@1.1.0",
        [],
    ),
    ("rolled-back", ("HelmRelease", "Remediated", "True", "RollbackSucceeded"), HR_ROLLBACK, ["helm-rolled-back"]),
    (
        "rollback-failed",
        ("HelmRelease", "Remediated", "False", "RollbackFailed"),
        "Helm rollback to previous release ns/web.v2 with chart demo-app@1.0.0 failed: timeout",
        [],
    ),
    ("retries", STALLED, "Failed to upgrade after 2 attempt(s)", ["helm-retries-exhausted"]),
    ("install-retries", STALLED, "Failed to install after 1 attempt(s)", ["helm-retries-exhausted"]),
    ("retries-old-form", STALLED, "upgrade retries exhausted", ["helm-retries-exhausted"]),
    ("install-retries-old-form", STALLED, "install retries exhausted", ["helm-retries-exhausted"]),
    ("retries-not-stalled", ("HelmRelease", "Stalled", "False", "RetriesExceeded"), "upgrade retries exhausted", []),
    ("stalled-other-reason", ("HelmRelease", "Stalled", "True", "InvalidCELExpression"), "Failed to upgrade", []),
    ("retries-vague", STALLED, "retries exhausted", []),
    ("retries-on-ready", ("HelmRelease", "Ready", "False", "RetriesExceeded"), "upgrade retries exhausted", []),
    ("git", ("GitRepository", "Ready", "False", "GitOperationFailed"), GIT_FAILED, ["source-fetch-failed"]),
    (
        "git-fetch",
        ("GitRepository", "Ready", "False", "FetchFailed"),
        "failed to checkout and determine revision: x",
        ["source-fetch-failed"],
    ),
    ("ks-message-on-a-helmrelease", ("HelmRelease", "Ready", "False", "ReconciliationFailed"), KS_SELECTOR, []),
    ("helm-message-on-a-kustomization", ("Kustomization", "Released", "False", "UpgradeFailed"), HR_UPGRADE, []),
    ("ks-message-on-a-deployment", ("Deployment", "Ready", "False", "ReconciliationFailed"), KS_SELECTOR, []),
    ("ks-failure-unknown", ("Kustomization", "Ready", "Unknown", "ReconciliationFailed"), KS_SELECTOR, []),
]


def flux_object(where: tuple[str, str, str, str], message: str) -> dict[str, Any]:
    kind, type_, status, reason = where
    return obj(kind, cond(type_, status, reason, message))


@pytest.mark.parametrize(("where", "message", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_classify_real_messages_and_near_misses(
    where: tuple[str, str, str, str], message: str, expected: list[str]
) -> None:
    assert [s.name for s in sig.classify(flux_object(where, message))] == expected


@pytest.mark.parametrize(
    "message", [KS_SELECTOR, "Applied revision: main@sha1:" + SHA, "field is immutable", HR_UPGRADE]
)
@pytest.mark.parametrize("kind", ["Kustomization", "HelmRelease"])
def test_a_ready_object_matches_nothing(kind: str, message: str) -> None:
    ready = obj(kind, cond("Ready", "True", "ReconciliationSucceeded", message))
    assert sig.classify(ready) == []


def test_a_helmrelease_can_show_several_failures_at_once() -> None:
    hr = obj(
        "HelmRelease",
        cond("Ready", "False", "UpgradeFailed", HR_IMMUTABLE),
        cond("Released", "False", "UpgradeFailed", HR_IMMUTABLE),
        cond("Stalled", "True", "RetriesExceeded", "Failed to upgrade after 2 attempt(s)"),
    )
    assert [s.name for s in sig.classify(hr)] == [
        "helm-immutable-field",
        "helm-upgrade-failed",
        "helm-retries-exhausted",
    ]


def test_classify_orders_the_specific_before_the_general() -> None:
    names = [s.name for s in sig.ALL]
    for specific, general in [
        ("selector-immutable", "immutable-field"),
        ("immutable-field", "dry-run-invalid"),
        ("helm-immutable-field", "helm-upgrade-failed"),
        ("helm-upgrade-timeout", "helm-upgrade-failed"),
    ]:
        assert names.index(specific) < names.index(general)
    assert len(sig.BY_NAME) == len(sig.ALL)


FRAGMENTS = [KS_SELECTOR, KS_SERVICE, HR_UPGRADE, HR_TIMEOUT, DEPENDENCY, "Failed to upgrade after 2 attempt(s)"]
REASONS = sorted({r for s in sig.ALL for r in s.reasons})
TYPES = sorted({s.condition_type for s in sig.ALL})


@given(
    kind=st.sampled_from(["Kustomization", "HelmRelease", "GitRepository"]),
    reasons=st.lists(st.tuples(st.sampled_from(TYPES), st.sampled_from(REASONS)), max_size=4),
    message=st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=20)), max_size=4).map(" ".join),
)
def test_objects_without_a_failing_condition_match_nothing(
    kind: str, reasons: list[tuple[str, str]], message: str
) -> None:
    # Every condition in the healthy state: failure conditions False, Ready True (Stalled/Remediated False).
    healthy = [cond(t, "True" if t in ("Ready", "Released") else "False", r, message) for t, r in reasons]
    assert sig.classify(obj(kind, *healthy)) == []


@given(prefix=st.from_regex(r"\A[A-Z][a-z]{1,10}/[a-z]{1,8}/[a-z]{1,8}\Z"))
def test_immutable_signatures_hold_for_any_object_name(prefix: str) -> None:
    message = KS_SERVICE.replace("Service/ns/web", prefix)
    assert [s.name for s in sig.classify(flux_object(KS_FAILED, message))] == ["immutable-field", "dry-run-invalid"]


def test_failing_objects_named_in_messages() -> None:
    named = sig.NamedObject
    assert sig.failing_objects(KS_SELECTOR) == [named("Deployment", "ns", "web")]
    assert sig.failing_objects("ClusterRole/web-admin dry-run failed (Invalid): x") == [
        named("ClusterRole", "", "web-admin")
    ]
    assert sig.failing_objects(HR_IMMUTABLE) == [named("Deployment", "ns", "web", "apps/v1")]
    core = "server-side apply failed for object ns/web /v1, Kind=Service: Service is invalid"
    assert sig.failing_objects(core) == [named("Service", "ns", "web", "v1")]
    cluster_scoped = "failed for object /web-admin rbac.authorization.k8s.io/v1, Kind=ClusterRole: x"
    assert sig.failing_objects(cluster_scoped) == [
        named("ClusterRole", "", "web-admin", "rbac.authorization.k8s.io/v1")
    ]
    assert sig.failing_objects(HR_IMMUTABLE_HELM3) == [named("Service", "", "web")]
    twice = f"{KS_SELECTOR}\n{KS_SELECTOR}\n{KS_SERVICE}"
    assert sig.failing_objects(twice) == [named("Deployment", "ns", "web"), named("Service", "ns", "web")]
    assert sig.failing_objects(KS_HEALTH) == [] and sig.failing_objects("") == []


def test_the_circular_dependency_log_line() -> None:
    line = (
        '{"level":"error","msg":"Reconciler error","error":"circular dependency detected: '
        'flux-system/a -> flux-system/b -> flux-system/a"}'
    )
    match = sig.CIRCULAR_DEPENDENCY_LOG.search(line)
    assert match is not None and match["cycle"] == "flux-system/a -> flux-system/b -> flux-system/a"
    assert sig.CIRCULAR_DEPENDENCY_LOG.search('{"msg":"dependency detected"}') is None
