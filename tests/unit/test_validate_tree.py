"""Reading the tree: what is a kustomization, a plain manifest or Helm chart content, and what is refused."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from validate_support import Repo, app_root, needs_git, needs_kubectl, workload

pytestmark = [needs_kubectl, needs_git]

GO_TEMPLATE = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n{{- if .Values.x }}\n"


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    """A committed root whose Deployment selector is then changed in the working tree."""
    r = Repo(tmp_path / "repo")
    app_root(r, workload())
    r.commit("base")
    app_root(r, workload(labels={"app": "other"}))
    return r


@pytest.mark.process
@pytest.mark.parametrize("chart_dir", [".", "apps"], ids=["repository-top", "scope"])
def test_chart_at_the_scope_hides_only_its_templates(repo: Repo, chart_dir: str) -> None:
    repo.write(f"{chart_dir}/Chart.yaml", "apiVersion: v2\nname: x\nversion: 0.1.0\n")
    repo.write(f"{chart_dir}/templates/cm.yaml", GO_TEMPLATE)
    repo.write(f"{chart_dir}/charts/sub/templates/cm.yaml", GO_TEMPLATE)

    result = repo.validate("--base", "HEAD", fmt="text", path=str(repo.path / chart_dir))

    assert result.code == 1, result.out + result.err
    assert "[workload-selector]" in result.out
    assert "1 kustomization root(s) built" in result.out


@pytest.mark.process
def test_chart_above_the_scope_hides_nothing(repo: Repo) -> None:
    repo.write("Chart.yaml", "apiVersion: v2\nname: x\nversion: 0.1.0\n")

    assert repo.validate("--base", "HEAD", path=str(repo.path / "apps")).rules() == ["workload-selector"]


@pytest.mark.process
def test_chart_below_the_scope_is_skipped(repo: Repo) -> None:
    repo.write("charts/web/Chart.yaml", "apiVersion: v2\nname: web\nversion: 0.1.0\n")
    repo.write("charts/web/templates/cm.yaml", GO_TEMPLATE)  # unreadable as YAML: must not be read
    repo.write("charts/web/kustomization.yaml", "resources: [\n")

    assert repo.validate("--base", "HEAD").rules() == ["workload-selector"]


@pytest.mark.process
@pytest.mark.parametrize("mode", [["--base", "HEAD"], ["--staged"], ["--no-diff"]])
def test_base_outside_the_repository_is_an_error_finding(repo: Repo, tmp_path: Path, mode: list[str]) -> None:
    outside = Repo(tmp_path / "other/dir", init=False)
    app_root(outside, workload(name="elsewhere"), rel=".")
    for rel in ("apps/web", "apps/api"):  # several roots: the verdict must not depend on set order
        repo.write_yaml(f"{rel}/deploy.yaml", workload(name=rel.replace("/", "-")))
        repo.kustomization(rel, resources=["deploy.yaml", "../../../other/dir"])
    repo.git("add", "-A")

    result = repo.validate(*mode)

    assert result.code == 1, result.err
    assert [(f["rule"], f["severity"], f["file"]) for f in result.findings] == [
        ("outside-repository", "error", "apps/api/kustomization.yaml"),
        ("outside-repository", "error", "apps/web/kustomization.yaml"),
    ]
    assert "'../../../other/dir' resolves outside the repository" in result.findings[0]["message"]


@pytest.mark.process
def test_a_root_that_is_not_built_is_not_counted_as_compared(repo: Repo) -> None:
    repo.kustomization("apps/web", resources=["deployment-0.yaml", "https://example.com/remote.yaml"])

    result = repo.validate("--base", "HEAD", fmt="text")

    assert result.code == 1
    assert "0 kustomization root(s) built, 0 plain manifest(s) read, 0 compared with HEAD" in result.out


@pytest.mark.process
def test_no_diff_on_a_subdirectory_keeps_the_repository_as_boundary(repo: Repo) -> None:
    app_root(repo, workload(name="shared"), rel="base")
    repo.kustomization("apps/web", resources=["deployment-0.yaml", "../../base"])

    result = repo.validate("--no-diff", path=str(repo.path / "apps"))

    assert (result.code, result.findings) == (0, [])


@pytest.mark.process
def test_a_directory_that_cannot_be_listed_is_bad_input(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    """chmod 000 does not stop root, so the refusal is simulated where os.walk lists directories."""
    locked = repo.path / "apps/locked"
    locked.mkdir()
    listdir = os.scandir

    def scandir(path: Any = ".") -> Any:
        if isinstance(path, str | os.PathLike) and Path(path) == locked:  # rmtree passes file descriptors
            raise PermissionError(13, "Permission denied", str(path))
        return listdir(path)

    monkeypatch.setattr(os, "scandir", scandir)

    result = repo.validate("--no-diff")

    assert result.code == 2
    assert result.err.splitlines() == [
        "resilience: error: apps/locked: cannot be read (Permission denied); fix its permissions or move it out "
        "of the tree"
    ]
