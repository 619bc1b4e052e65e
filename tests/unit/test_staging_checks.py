"""A stage's checks: artifacts fetched once and unpacked safely, builds through validate's renderer, the dry run
and the immutable rules against live objects, health from the Kustomization's inventory."""

from __future__ import annotations

import hashlib
import io
import shutil
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from fluxmodel import staged
from fluxmodel.kinds import ObjectRef
from kubeapi import Invalid
from staging.checks import StageChecks
from staging.content import ArtifactError, Artifacts
from testsupport.fakekube import FakeKube

R1 = "main@sha1:" + "1" * 40
NS = "flux-system"
needs_kubectl = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl builds kustomizations")


def tarball(files: dict[str, str], extra: tarfile.TarInfo | None = None) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        if extra is not None:
            archive.addfile(extra)
    return out.getvalue()


def deployment(selector: dict[str, str], image: str = "app:1") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": selector},
            "template": {"metadata": {"labels": selector}, "spec": {"containers": [{"name": "a", "image": image}]}},
        },
    }


def repo(dep: dict[str, Any], kustomization: bool = True) -> dict[str, str]:
    files = {"apps/web/deployment.yaml": yaml.safe_dump(dep)}
    if kustomization:
        files["apps/web/kustomization.yaml"] = yaml.safe_dump({"resources": ["deployment.yaml"]})
    return files


def source(data: bytes, revision: str = R1) -> dict[str, Any]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    return {"status": {"artifact": {"revision": revision, "url": "http://sc/gitrepository/x.tar.gz", "digest": digest}}}


class Fetcher:
    def __init__(self, data: bytes):
        self.data = data
        self.calls = 0

    def __call__(self, url: str) -> bytes:
        self.calls += 1
        return self.data


def test_an_artifact_is_fetched_once_per_commit_and_verified(tmp_path: Path) -> None:
    data = tarball(repo(deployment({"app": "web"})))
    fetch = Fetcher(data)
    artifacts = Artifacts(tmp_path / "a", fetch)
    tree = artifacts.tree(R1, [source(data)])
    assert tree is not None and (tree / "apps/web/deployment.yaml").is_file()
    assert artifacts.tree(R1, []) == tree and fetch.calls == 1
    assert artifacts.tree("main@sha1:" + "2" * 40, [source(data)]) is None  # no source holds that revision
    bad = source(data, "main@sha1:" + "3" * 40)
    bad["status"]["artifact"]["digest"] = "sha256:" + "0" * 64
    with pytest.raises(ArtifactError, match="is not the advertised"):
        artifacts.tree("main@sha1:" + "3" * 40, [bad])


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.REGTYPE])
def test_an_artifact_never_writes_outside_its_directory(tmp_path: Path, kind: bytes) -> None:
    evil = tarfile.TarInfo("../escape" if kind == tarfile.REGTYPE else "link")
    evil.type = kind
    evil.linkname = "/etc/passwd"
    data = tarball({"ok.yaml": "a: 1"}, evil)
    with pytest.raises(ArtifactError, match="not a plain file inside"):
        Artifacts(tmp_path / "a", Fetcher(data)).tree(R1, [source(data)])
    assert not (tmp_path / "escape").exists()


class Refusing:
    """A dry-run API that refuses a Deployment whose selector differs from the live one's; reads go to `kube` (the
    identity compatibility-check dry-runs as also reads the live objects)."""

    def __init__(self, live: dict[str, Any] | None, kube: FakeKube):
        self.live = live
        self.kube = kube
        self.applied: list[dict[str, Any]] = []

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        return self.kube.get(api_version, kind, name, namespace)

    def apply(
        self, obj: dict[str, Any], field_manager: str = "", force: bool = True, dry_run: bool = False
    ) -> dict[str, Any]:
        assert dry_run and field_manager == "kustomize-controller"
        self.applied.append(obj)
        if self.live and obj["spec"]["selector"] != self.live["spec"]["selector"]:
            raise Invalid(
                422, "Invalid", 'Deployment.apps "web" is invalid: spec.selector: Invalid value: {}: field is immutable'
            )
        return obj


def checks_for(
    tmp_path: Path, files: dict[str, str], live: dict[str, Any] | None
) -> tuple[StageChecks, staged.StagedSpec, Refusing]:
    spec = staged.parse(
        {
            "kind": "StagedKustomization",
            "metadata": {"name": "s", "namespace": NS},
            "spec": {
                "stages": [
                    {
                        "name": "validation",
                        "kustomizationRef": {"name": "v"},
                        "validationChecks": [{"type": "build-success"}, {"type": "compatibility-check"}],
                    },
                    {"name": "production", "kustomizationRef": {"name": "p"}, "dependsOn": ["validation"]},
                ]
            },
        }
    )
    kube = FakeKube()
    if live is not None:
        kube.add({**live, "metadata": {"name": "web", "namespace": "prod"}})
    data = tarball(files)
    kustomizations = {
        ObjectRef("Kustomization", NS, "v"): {"spec": {"path": "./apps/web", "targetNamespace": "val"}},
        ObjectRef("Kustomization", NS, "p"): {"spec": {"path": "./apps/web", "targetNamespace": "prod"}},
    }
    refusing = Refusing(live, kube)
    checks = StageChecks(
        spec,
        kube,
        Artifacts(tmp_path / "a", Fetcher(data)),
        lambda: [source(data)],
        kustomizations.get,
        dry_run_kube=refusing,  # type: ignore[arg-type]
    )
    return checks, spec, refusing


@pytest.mark.process
@needs_kubectl
def test_validation_covers_every_later_stage_and_stops_a_selector_change(tmp_path: Path) -> None:
    live = deployment({"app": "web"})
    checks, spec, refusing = checks_for(tmp_path, repo(deployment({"app": "web", "track": "stable"})), live)
    build, compat = checks.validate(spec.stage("validation"), R1)
    assert build.passed and "2 stage path(s) build" in build.message
    assert compat.passed is False and "Deployment/prod/web" in compat.message and "field is immutable" in compat.message
    assert {o["metadata"]["namespace"] for o in refusing.applied} == {"val", "prod"}  # targetNamespace, each stage


@pytest.mark.process
@needs_kubectl
def test_a_compatible_change_passes_and_a_path_without_kustomization_is_built_as_flux_does(tmp_path: Path) -> None:
    live = deployment({"app": "web"})
    checks, spec, _ = checks_for(tmp_path, repo(deployment({"app": "web"}, image="app:2"), kustomization=False), live)
    build, compat = checks.validate(spec.stage("validation"), R1)
    assert build.passed and compat.passed, (build, compat)


@pytest.mark.process
@needs_kubectl
def test_a_build_failure_fails_both_checks(tmp_path: Path) -> None:
    files = {"apps/web/kustomization.yaml": yaml.safe_dump({"resources": ["missing.yaml"]})}
    checks, spec, _ = checks_for(tmp_path, files, None)
    build, compat = checks.validate(spec.stage("validation"), R1)
    assert build.passed is False and "stage validation: path ./apps/web: kustomize build fails" in build.message
    assert compat.passed is False and "build fails" in compat.message


def test_no_artifact_yet_is_undecided_not_failed(tmp_path: Path) -> None:
    checks, spec, _ = checks_for(tmp_path, repo(deployment({"app": "web"})), None)
    results = checks.validate(spec.stage("validation"), "main@sha1:" + "9" * 40)
    assert [r.passed for r in results] == [None, None] and "waiting for a source artifact" in results[0].message


def test_pod_ready_reads_the_workloads_of_the_inventory(tmp_path: Path) -> None:
    spec = staged.parse(
        {
            "metadata": {"name": "s"},
            "spec": {
                "stages": [{"name": "c", "kustomizationRef": {"name": "c"}, "healthChecks": [{"type": "pod-ready"}]}]
            },
        }
    )
    kube = FakeKube()
    dep = {**deployment({"app": "web"}), "metadata": {"name": "web", "namespace": "c", "generation": 2}}
    kube.add({**dep, "status": {"observedGeneration": 1}})
    ks = {
        "status": {
            "lastAttemptedRevision": R1,
            "inventory": {"entries": [{"id": "c_web_apps_Deployment", "v": "v1"}, {"id": "c_web_v1_ConfigMap"}]},
        }
    }
    checks = StageChecks(spec, kube, Artifacts(tmp_path / "a"), list, lambda ref: None)
    (result,) = checks.health(spec.stage("c"), R1, ks)
    assert result.passed is False and "Deployment/c/web" in result.message
    ready = {
        "observedGeneration": 2,
        "replicas": 1,
        "updatedReplicas": 1,
        "readyReplicas": 1,
        "conditions": [{"type": "Available", "status": "True"}],
    }
    kube.add({**dep, "status": ready})
    (result,) = checks.health(spec.stage("c"), R1, ks)
    assert result.passed and result.message == "1 workload(s) ready"
    (result,) = checks.health(spec.stage("c"), "main@sha1:" + "2" * 40, ks)
    assert result.passed is False and "has not attempted" in result.message


@pytest.mark.process
@needs_kubectl
def test_the_immutable_rules_run_against_the_live_objects_beside_the_dry_run(tmp_path: Path) -> None:
    """The dry run accepts it; the live object declares spec.replicas immutable (gitops.flux.io/immutable-fields)."""
    live = deployment({"app": "web"})
    live["metadata"] = {
        "name": "web",
        "namespace": "prod",
        "annotations": {"gitops.flux.io/immutable-fields": "spec.replicas"},
    }
    changed = deployment({"app": "web"})
    changed["spec"]["replicas"] = 3
    checks, spec, refusing = checks_for(tmp_path, repo(changed), None)
    checks.kube.add(live)  # type: ignore[attr-defined]
    refusing.kube = checks.kube  # type: ignore[assignment]
    build, compat = checks.validate(spec.stage("validation"), R1)
    assert build.passed and compat.passed is False
    assert "Deployment/prod/web: spec.replicas changes from 1 to 3" in compat.message
