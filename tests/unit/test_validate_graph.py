"""Flux dependsOn checks read from the tree: plain Flux manifests and kustomize-rendered ones alike."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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


def own_source(name: str, namespace: str = "flux-system", **spec: Any) -> dict[str, Any]:
    """A stage's Kustomization reading a GitRepository of its own (of its name), as the stage controller needs."""
    return flux_kustomization(name, namespace, sourceRef={"kind": "GitRepository", "name": name}, **spec)


@pytest.mark.process
def test_staged_kustomizations_are_checked_cycles_unknown_stages_and_missing_kustomizations(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    repo.write_yaml(
        "clusters/prod/flux.yaml",
        own_source("infra-validation"),
        own_source("infra"),
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


@pytest.mark.process
def test_a_missing_kustomization_in_another_namespace_names_the_namespace_a_ref_without_one_means(
    tmp_path: Path,
) -> None:
    repo = _repo(tmp_path)
    repo.write_yaml(
        "clusters/prod/flux.yaml",
        own_source("infra", "apps"),
        staged_kustomization("shop", {"name": "production", "kustomizationRef": {"name": "infra", "namespace": "ops"}}),
    )

    (finding,) = repo.validate("--no-diff").findings

    assert finding["rule"] == "staged-kustomization-missing"
    assert "Kustomization ops/infra is not defined in this tree" in finding["message"]
    assert "(without namespace it means flux-system)" in finding["message"]


@pytest.mark.process
def test_two_stages_reading_one_gitrepository_are_refused_naming_both_and_the_source(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    shared = {"kind": "GitRepository", "name": "infra", "namespace": "flux-system"}
    repo.write_yaml(
        "clusters/prod/flux.yaml",
        flux_kustomization("infra-canary", sourceRef={"kind": "GitRepository", "name": "infra"}),
        flux_kustomization("infra", "apps", sourceRef=shared),
        staged_kustomization(
            "shop",
            {"name": "canary", "kustomizationRef": {"name": "infra-canary"}},
            {"name": "production", "kustomizationRef": {"name": "infra", "namespace": "apps"}, "dependsOn": ["canary"]},
        ),
    )

    result = repo.validate("--no-diff")

    assert result.code == 1
    (finding,) = result.findings
    assert (finding["rule"], finding["file"], finding["kind"], finding["name"]) == (
        "staged-shared-source",
        "clusters/prod/flux.yaml",
        "StagedKustomization",
        "shop",
    )
    assert finding["message"].startswith(
        "stage production: reads GitRepository flux-system/infra like stage canary; give each stage a GitRepository "
        "of its own, so one can be held while the other moves"
    )
    assert "\n" not in finding["message"]


@pytest.mark.process
@pytest.mark.parametrize(("kind", "says"), [("OCIRepository", "kind OCIRepository"), ("Bucket", "kind Bucket")])
def test_a_stage_reading_a_source_the_controller_cannot_pin_is_refused(tmp_path: Path, kind: str, says: str) -> None:
    repo = _repo(tmp_path)
    repo.write_yaml(
        "clusters/prod/flux.yaml",
        own_source("infra-validation"),
        flux_kustomization("infra", sourceRef={"kind": kind, "name": "infra"}),
        staged_kustomization(
            "shop",
            {"name": "validation", "kustomizationRef": {"name": "infra-validation"}},
            {"name": "production", "kustomizationRef": {"name": "infra"}, "dependsOn": ["validation"]},
        ),
    )

    (finding,) = repo.validate("--no-diff").findings

    assert (finding["rule"], finding["name"]) == ("staged-unpinnable-source", "shop")
    assert finding["message"].startswith(f"stage production: Kustomization flux-system/infra reads a source of {says}")
    assert "point its sourceRef at a GitRepository of the stage's own" in finding["message"]


@pytest.mark.process
def test_a_stage_name_that_is_no_dns_label_is_refused_naming_the_stage_and_the_rule(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    repo.write_yaml(
        "clusters/prod/flux.yaml",
        own_source("infra"),
        staged_kustomization("shop", {"name": "Prod_EU", "kustomizationRef": {"name": "infra"}}),
    )

    (finding,) = repo.validate("--no-diff").findings

    assert (finding["rule"], finding["name"], finding["field"]) == ("staged-stage-name", "shop", "spec.stages")
    assert finding["message"].startswith("stage 'Prod_EU': the name is not a DNS-1123 label")
    assert "rename it (like prod-eu)" in finding["message"]
