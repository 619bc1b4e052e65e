"""Flux dependsOn checks read from the tree: plain Flux manifests and kustomize-rendered ones alike."""

from __future__ import annotations

from pathlib import Path

import pytest
from validate_support import Repo, flux_kustomization, helm_release, needs_git, needs_kubectl

pytestmark = [needs_kubectl, needs_git]


def _repo(tmp_path: Path) -> Repo:
    repo = Repo(tmp_path / "repo")
    repo.commit("empty")
    return repo


@pytest.mark.process
def test_kustomization_cycle_is_named(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    repo.write_yaml(
        "clusters/prod/apps.yaml",
        flux_kustomization("infra", depends=[{"name": "apps"}]),
        flux_kustomization("apps", depends=[{"name": "db"}]),
        flux_kustomization("db", depends=[{"name": "infra", "namespace": "flux-system"}]),
    )

    result = repo.validate("--no-diff")

    [finding] = result.findings
    assert result.code == 1
    assert (finding["rule"], finding["file"], finding["kind"], finding["name"]) == (
        "flux-dependson-cycle",
        "clusters/prod/apps.yaml",
        "Kustomization",
        "apps",
    )
    assert (
        "Kustomization/flux-system/apps -> Kustomization/flux-system/db -> "
        "Kustomization/flux-system/infra -> Kustomization/flux-system/apps"
    ) in finding["message"]


@pytest.mark.process
def test_helmrelease_cycle_in_a_kustomize_build_uses_the_rendered_namespace(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    repo.write_yaml(
        "apps/releases.yaml",
        helm_release("a", None, [{"name": "b"}]),
        helm_release("b", None, [{"name": "a"}]),
    )
    repo.kustomization("apps", namespace="team", resources=["releases.yaml"])

    [finding] = repo.validate("--no-diff").findings

    assert finding["rule"] == "flux-dependson-cycle"
    assert finding["file"] == "apps/releases.yaml"
    assert "HelmRelease/team/a -> HelmRelease/team/b -> HelmRelease/team/a" in finding["message"]


@pytest.mark.process
def test_missing_dependency_names_it_and_the_impact(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    repo.write_yaml(
        "clusters/prod/apps.yaml",
        flux_kustomization("apps", depends=[{"name": "infra-controllers"}]),
        flux_kustomization("web", depends=[{"name": "apps"}]),
    )

    [finding] = repo.validate("--no-diff").findings

    assert (finding["rule"], finding["name"], finding["field"]) == (
        "flux-dependson-missing",
        "apps",
        "spec.dependsOn",
    )
    assert "Kustomization/flux-system/infra-controllers" in finding["message"]
    assert "1 object(s) depending on it" in finding["message"]


@pytest.mark.process
def test_dependson_without_namespace_means_own_namespace(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    repo.write_yaml(
        "clusters/prod/releases.yaml",
        helm_release("db", "data"),
        helm_release("web", "apps", [{"name": "db"}]),  # looks in apps: missing
        helm_release("api", "apps", [{"name": "db", "namespace": "data"}]),  # fine
    )

    result = repo.validate("--no-diff")

    assert [(f["rule"], f["name"]) for f in result.findings] == [("flux-dependson-missing", "web")]
    assert "HelmRelease/apps/db" in result.findings[0]["message"]


@pytest.mark.process
def test_valid_graph_across_files_and_kinds_is_clean(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    repo.write_yaml("clusters/prod/infra.yaml", flux_kustomization("infra"))
    repo.write_yaml("clusters/prod/apps.yaml", flux_kustomization("apps", depends=[{"name": "infra"}]))
    repo.write_yaml("apps/releases.yaml", helm_release("db", None), helm_release("web", None, [{"name": "db"}]))
    repo.kustomization("apps", namespace="team", resources=["releases.yaml"])
    # A Helm chart's templates are not manifests and must not be read.
    repo.write("charts/web/Chart.yaml", "name: web\nversion: 0.1.0\n")
    repo.write("charts/web/templates/deploy.yaml", "apiVersion: apps/v1\nkind: {{ .Values.kind }\n")

    result = repo.validate("--no-diff")

    assert (result.code, result.findings) == (0, [])


def staged_kustomization(name: str, *stages: dict[str, object], namespace: str = "flux-system") -> dict[str, object]:
    return {
        "apiVersion": "flux.weave.works/v1",
        "kind": "StagedKustomization",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"stages": list(stages)},
    }


@pytest.mark.process
def test_staged_kustomizations_are_checked_cycles_unknown_stages_and_missing_kustomizations(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    repo.write_yaml(
        "clusters/prod/flux.yaml",
        flux_kustomization("infra-validation"),
        flux_kustomization("infra"),
        staged_kustomization(
            "good",
            {"name": "validation", "kustomizationRef": {"name": "infra-validation"}},
            {"name": "production", "kustomizationRef": {"name": "infra"}, "dependsOn": ["validation"]},
        ),
        staged_kustomization(
            "cyclic",
            {"name": "a", "kustomizationRef": {"name": "infra-validation"}, "dependsOn": ["b"]},
            {"name": "b", "kustomizationRef": {"name": "infra"}, "dependsOn": ["a"]},
        ),
        staged_kustomization(
            "broken",
            {"name": "validation", "kustomizationRef": {"name": "infrastructure-dry-run"}},
            {"name": "deployment", "kustomizationRef": {"name": "infra"}, "dependsOn": ["validaton"]},
        ),
    )

    result = repo.validate("--no-diff")

    assert result.code == 1
    found = sorted((f["rule"], f["name"], f["message"].split(":")[0]) for f in result.findings)
    assert found == [
        ("staged-kustomization-missing", "broken", "stage validation"),
        ("staged-stage-cycle", "cyclic", "stage a"),
        ("staged-unknown-stage", "broken", "stage deployment"),
    ]
    missing = next(f for f in result.findings if f["rule"] == "staged-kustomization-missing")
    assert "Kustomization flux-system/infrastructure-dry-run is not defined in this tree" in missing["message"]
    assert missing["file"] == "clusters/prod/flux.yaml" and missing["kind"] == "StagedKustomization"
    cycle = next(f for f in result.findings if f["rule"] == "staged-stage-cycle")
    assert "dependsOn cycle a -> b -> a" in cycle["message"]
