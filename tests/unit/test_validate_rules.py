"""Every immutable-field rule through the whole pipeline: real git history, real kubectl kustomize.

Each case commits a base tree, changes the working tree, and checks which rules `resilience validate`
reports: the unsafe change must be flagged (exit 1) and the safe one must not (exit 0).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from validate_support import (
    Repo,
    app_root,
    configmap,
    flux_kustomization,
    job,
    needs_git,
    needs_kubectl,
    pvc,
    service,
    statefulset,
    workload,
)

pytestmark = [needs_kubectl, needs_git]


@dataclass
class Case:
    old: list[dict[str, Any]]
    new: list[dict[str, Any]]
    expect: list[str]
    old_k: dict[str, Any] = field(default_factory=dict)
    new_k: dict[str, Any] = field(default_factory=dict)


def _with(obj: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of obj with a dotted path set (None deletes it)."""
    out = copy.deepcopy(obj)
    *parents, last = path.split(".")
    cur = out
    for p in parents:
        cur = cur[int(p)] if isinstance(cur, list) else cur.setdefault(p, {})
    if value is None:
        del cur[last]
    elif isinstance(cur, list):
        cur[int(last)] = value
    else:
        cur[last] = value
    return out


DEPLOY = workload()
STS = statefulset()
SVC_IP = service(clusterIP="10.96.0.10")
JOB = job()
PVC = pvc()
CM_IMMUTABLE = configmap({"mode": "a"}, immutable=True)
SECRET_IMMUTABLE = {**configmap({}, immutable=True, kind="Secret"), "data": {"token": "YQ=="}}
DB = {
    "apiVersion": "example.com/v1",
    "kind": "Database",
    "metadata": {"name": "db", "annotations": {"gitops.flux.io/immutable-fields": "spec.engine, spec.size"}},
    "spec": {"engine": "postgres", "size": "small", "replicas": 1},
}

CASES: dict[str, Case] = {
    # workload-selector
    "selector via commonLabels": Case([DEPLOY], [DEPLOY], ["workload-selector"], new_k={"commonLabels": {"team": "a"}}),
    "selector via labels includeSelectors": Case(
        [DEPLOY],
        [DEPLOY],
        ["workload-selector"],
        new_k={"labels": [{"pairs": {"team": "a"}, "includeSelectors": True}]},
    ),
    "selector edited on DaemonSet": Case(
        [workload("DaemonSet")], [workload("DaemonSet", labels={"app": "web2"})], ["workload-selector"]
    ),
    "selector edited on ReplicaSet": Case(
        [workload("ReplicaSet")], [workload("ReplicaSet", labels={"app": "web2"})], ["workload-selector"]
    ),
    "selector edited on StatefulSet": Case(
        [STS], [_with(STS, "spec.selector.matchLabels", {"app": "db", "tier": "x"})], ["workload-selector"]
    ),
    "safe: replicas and image": Case([DEPLOY], [workload(image="nginx:1.28", replicas=3)], []),
    "safe: labels includeSelectors false": Case(
        [DEPLOY], [DEPLOY], [], new_k={"labels": [{"pairs": {"team": "a"}, "includeSelectors": False}]}
    ),
    "safe: template-only labels": Case(
        [DEPLOY], [_with(DEPLOY, "spec.template.metadata.labels", {"app": "web", "version": "2"})], []
    ),
    "safe: labels includeTemplates on Deployment": Case(
        [DEPLOY],
        [DEPLOY],
        [],
        new_k={"labels": [{"pairs": {"team": "a"}, "includeSelectors": False, "includeTemplates": True}]},
    ),
    "safe: Flux commonMetadata": Case(
        [flux_kustomization("web")],
        [flux_kustomization("web", commonMetadata={"labels": {"team": "a"}})],
        [],
    ),
    "safe: renamed Deployment with new selector": Case(
        [DEPLOY], [workload(name="web-v2", labels={"app": "web-v2"})], []
    ),
    # StatefulSet
    "sts volumeClaimTemplates": Case(
        [STS],
        [_with(STS, "spec.volumeClaimTemplates.0.spec.resources.requests.storage", "5Gi")],
        ["statefulset-volumeclaimtemplates"],
    ),
    "sts serviceName": Case([STS], [_with(STS, "spec.serviceName", "db-headless")], ["statefulset-servicename"]),
    "sts podManagementPolicy": Case([STS], [_with(STS, "spec.podManagementPolicy", "Parallel")], ["statefulset-spec"]),
    "safe: sts replicas, image, updateStrategy": Case(
        [STS],
        [
            _with(
                _with(_with(STS, "spec.replicas", 3), "spec.template.spec.containers.0.image", "nginx:1.28"),
                "spec.updateStrategy",
                {"type": "OnDelete"},
            )
        ],
        [],
    ),
    "safe: sts default podManagementPolicy spelled out": Case(
        [STS], [_with(STS, "spec.podManagementPolicy", "OrderedReady")], []
    ),
    # Service
    "service clusterIP changed": Case([SVC_IP], [service(clusterIP="10.96.0.11")], ["service-clusterip"]),
    "service clusterIP pinned": Case([service()], [SVC_IP], ["service-clusterip"]),
    "safe: service clusterIP dropped": Case([SVC_IP], [service()], []),
    "safe: service ports": Case([SVC_IP], [service(clusterIP="10.96.0.10", ports=[{"port": 8080}])], []),
    # Job
    "job template image": Case([JOB], [job(image="busybox:1.37")], ["job-template"]),
    "job template labels via kustomize": Case(
        [JOB], [JOB], ["job-template"], new_k={"labels": [{"pairs": {"team": "a"}, "includeTemplates": True}]}
    ),
    "job selector": Case(
        [job(manualSelector=True, selector={"matchLabels": {"job": "migrate"}})],
        [job(manualSelector=True, selector={"matchLabels": {"job": "migrate", "x": "y"}})],
        ["job-selector"],
    ),
    "safe: job parallelism": Case([JOB], [job(parallelism=2)], []),
    # PVC
    "pvc storageClassName": Case([PVC], [pvc(storageClassName="fast")], ["pvc-spec"]),
    "pvc accessModes": Case([PVC], [pvc(accessModes=["ReadWriteMany"])], ["pvc-spec"]),
    "pvc storage decrease": Case([PVC], [pvc("5Gi")], ["pvc-storage-decrease"]),
    "pvc storage decrease across units": Case([pvc("1Gi")], [pvc("1000Mi")], ["pvc-storage-decrease"]),
    "safe: pvc storage increase": Case([PVC], [pvc("20Gi")], []),
    "safe: pvc same size other unit": Case([pvc("1Gi")], [pvc("1024Mi")], []),
    "safe: pvc default volumeMode spelled out": Case([PVC], [pvc(volumeMode="Filesystem")], []),
    # immutable ConfigMap / Secret
    "immutable configmap data": Case(
        [CM_IMMUTABLE], [configmap({"mode": "b"}, immutable=True)], ["immutable-configmap"]
    ),
    "immutable configmap unset": Case(
        [CM_IMMUTABLE], [configmap({"mode": "a"}, immutable=False)], ["immutable-configmap"]
    ),
    "immutable secret data": Case(
        [SECRET_IMMUTABLE], [_with(SECRET_IMMUTABLE, "data.token", "Yg==")], ["immutable-secret"]
    ),
    "safe: mutable configmap data": Case([configmap({"mode": "a"})], [configmap({"mode": "b"})], []),
    "safe: immutable secret value moved to stringData": Case(
        [SECRET_IMMUTABLE], [{**_with(SECRET_IMMUTABLE, "data", None), "stringData": {"token": "a"}}], []
    ),
    "safe: immutable configmap from a generator": Case(
        [],
        [],
        [],
        old_k={"configMapGenerator": [{"name": "gen", "literals": ["a=1"], "options": {"immutable": True}}]},
        new_k={"configMapGenerator": [{"name": "gen", "literals": ["a=2"], "options": {"immutable": True}}]},
    ),
    # annotation
    "annotated field": Case([DB], [_with(DB, "spec.engine", "mysql")], ["annotated-immutable"]),
    "safe: field not annotated": Case([DB], [_with(DB, "spec.replicas", 3)], []),
}


@pytest.mark.process
@pytest.mark.parametrize("case", CASES.values(), ids=list(CASES))
def test_rule(tmp_path: Path, case: Case) -> None:
    repo = Repo(tmp_path / "repo")
    app_root(repo, *case.old, **case.old_k)
    repo.commit("base")
    for stale in (repo.path / "apps/web").glob("*.yaml"):
        stale.unlink()
    app_root(repo, *case.new, **case.new_k)

    result = repo.validate("--base", "HEAD")

    assert result.rules() == case.expect, result.out
    assert result.code == (1 if case.expect else 0)
    for finding in result.findings:
        assert finding["severity"] == "error"
        assert "Fix:" in finding["message"]


@pytest.mark.process
def test_selector_finding_names_object_field_file_and_cause(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "repo")
    app_root(repo, workload(), rel="apps/prod", namespace="prod")
    repo.commit("base")
    repo.kustomization("apps/prod", resources=["deployment-0.yaml"], namespace="prod", commonLabels={"team": "a"})

    [finding] = repo.validate().findings

    assert finding == {
        "rule": "workload-selector",
        "severity": "error",
        "file": "apps/prod/deployment-0.yaml",
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "namespace": "prod",
        "name": "web",
        "field": "spec.selector",
        "message": finding["message"],
    }
    assert "team=a" in finding["message"]
    assert "commonLabels" in finding["message"]
    assert "includeSelectors: false" in finding["message"]
    assert "field is immutable" in finding["message"]


@pytest.mark.process
def test_force_annotation_downgrades_to_warning(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "repo")
    forced = _with(workload(), "metadata.annotations", {"kustomize.toolkit.fluxcd.io/force": "enabled"})
    app_root(repo, forced)
    repo.commit("base")
    app_root(repo, _with(forced, "spec.selector.matchLabels", {"app": "web", "v": "2"}))

    result = repo.validate("--base", "HEAD")

    assert result.code == 0
    [finding] = result.findings
    assert (finding["rule"], finding["severity"]) == ("workload-selector", "warning")
    assert "recreate" in finding["message"]


@pytest.mark.process
def test_flux_spec_force_downgrades_to_warning_only_for_its_path(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "repo")
    for name in ("web", "api"):
        app_root(repo, workload(name=name), rel=f"apps/{name}")
    repo.write_yaml(
        "clusters/prod/apps.yaml",
        flux_kustomization("web", force=True),
        flux_kustomization("api"),
    )
    repo.commit("base")
    for name in ("web", "api"):
        app_root(repo, workload(name=name), rel=f"apps/{name}", commonLabels={"team": "a"})

    result = repo.validate("--base", "HEAD")

    severities = {(f["name"], f["severity"]) for f in result.findings}
    assert severities == {("web", "warning"), ("api", "error")}
    assert result.code == 1


@pytest.mark.process
def test_object_moved_between_roots_is_still_compared(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "repo")
    app_root(repo, workload(), rel="apps/old")
    app_root(repo, configmap({"a": "b"}), rel="apps/new")
    repo.commit("base")
    repo.git("rm", "-q", "-r", "apps/old")
    app_root(repo, configmap({"a": "b"}), workload(labels={"app": "moved"}), rel="apps/new")

    result = repo.validate("--base", "HEAD")

    assert result.rules() == ["workload-selector"]


@pytest.mark.process
def test_untouched_roots_are_not_rebuilt_at_the_base(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "repo")
    for i in range(4):
        app_root(repo, workload(name=f"w{i}"), rel=f"apps/w{i}")
    repo.commit("base")
    app_root(repo, workload(name="w2", replicas=5), rel="apps/w2")

    result = repo.validate("--base", "HEAD", fmt="text")

    assert result.code == 0
    assert "4 kustomization root(s) built, 0 plain manifest(s) read, 1 compared with HEAD" in result.out
