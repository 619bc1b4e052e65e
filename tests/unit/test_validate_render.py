"""Batch rendering: many roots per kubectl process give what `kubectl kustomize ROOT` gives, root by root."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from validate_support import KUBECTL, Repo, app_root, configmap, needs_git, needs_kubectl, workload

from validation.render import Kustomize, clean_error
from validation.tree import is_remote, scan

pytestmark = [needs_kubectl]


def _key(obj: dict[str, Any]) -> tuple[str, str, str, str]:
    m = obj["metadata"]
    return (obj["apiVersion"], obj["kind"], m.get("namespace", ""), m["name"])


def _alone(root: Path) -> list[dict[str, Any]]:
    assert KUBECTL is not None
    out = subprocess.run([KUBECTL, "kustomize", str(root)], capture_output=True, text=True, check=True).stdout
    return sorted((d for d in yaml.safe_load_all(out) if d), key=_key)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """Roots that share a base, collide on object ids, use generators and components."""
    r = Repo(tmp_path / "t", init=False)
    app_root(r, workload(), rel="base")
    r.kustomization("overlays/a", resources=["../../base"], namespace="a", commonLabels={"env": "a"})
    r.kustomization("overlays/b", resources=["../../base"], namespace="b", components=["../../comp"])
    component = {
        "apiVersion": "kustomize.config.k8s.io/v1alpha1",
        "kind": "Component",
        "configMapGenerator": [{"name": "gen", "literals": ["k=v"]}],
    }
    r.write_yaml("comp/kustomization.yaml", component)
    # Two roots with the same object ids: they cannot share one kustomize run.
    r.kustomization("clusters/x", resources=["../../overlays/a"])
    r.kustomization("clusters/y", resources=["../../overlays/a"])
    app_root(r, configmap({"a": "1"}), rel="plain")
    return r.path


@pytest.mark.process
def test_batches_match_standalone_builds(tree: Path) -> None:
    roots = scan(tree, tree, strict=True).roots()
    assert [p.relative_to(tree).as_posix() for p in roots] == [
        "clusters/x",
        "clusters/y",
        "overlays/b",
        "plain",
    ]

    for jobs in (1, 2):
        results = Kustomize(jobs=jobs).build(roots)
        for root in roots:
            assert not results[root].error
            got = sorted((o.obj for o in results[root].objects), key=_key)
            assert got == _alone(root), root


@pytest.mark.process
def test_objects_carry_their_source_file(tree: Path) -> None:
    roots = scan(tree, tree, strict=True).roots()
    results = Kustomize(jobs=1).build(roots)

    files = {(o.obj["kind"], o.file.relative_to(tree).as_posix()) for res in results.values() for o in res.objects}
    assert files == {
        ("Deployment", "base/deployment-0.yaml"),
        ("ConfigMap", "comp/kustomization.yaml"),  # generated: where the generator is configured
        ("ConfigMap", "plain/configmap-0.yaml"),
    }
    for res in results.values():
        for o in res.objects:
            assert "config.kubernetes.io/origin" not in (o.obj["metadata"].get("annotations") or {})


@pytest.mark.process
def test_one_broken_root_does_not_hide_the_others(tree: Path) -> None:
    r = Repo(tree, init=False)
    r.kustomization("broken", resources=["cm.yaml"], patches=[{"path": "p.yaml"}])
    r.write_yaml("broken/cm.yaml", configmap({}))
    r.write_yaml("broken/p.yaml", workload(name="ghost"))
    (tree / "broken2").mkdir()
    (tree / "broken2/kustomization.yaml").write_text("resources: [cm.yaml, cm.yaml]\n")
    (tree / "broken2/cm.yaml").write_text(yaml.safe_dump(configmap({})))
    roots = scan(tree, tree, strict=True).roots()
    assert len(roots) == 6

    kustomize = Kustomize(jobs=1)
    results = kustomize.build(roots)

    failed = {p.relative_to(tree).as_posix(): res.error for p, res in results.items() if res.error}
    assert set(failed) == {"broken", "broken2"}
    for name, error in failed.items():
        alone = subprocess.run([KUBECTL or "kubectl", "kustomize", str(tree / name)], capture_output=True, text=True)
        assert alone.returncode != 0
        assert error == clean_error(alone.stderr)
    assert "ghost" in failed["broken"]
    assert all(results[p].objects for p in roots if not p.name.startswith("broken"))
    assert kustomize.processes < len(roots) + 6


def test_clean_error_strips_the_klog_prefix() -> None:
    stderr = (
        'E1125 19:59:12.801011   19846 run.go:72] "command failed" err="accumulating resources: '
        "accumulation err='accumulating resources from 'x.yaml': missing'\"\n"
    )
    assert (
        clean_error(stderr)
        == "accumulating resources: accumulation err='accumulating resources from 'x.yaml': missing'"
    )
    assert clean_error("Error: must build at directory\n") == "must build at directory"


@pytest.mark.parametrize(
    "entry",
    [
        "github.com/org/repo//deploy?ref=v1",
        "https://github.com/org/repo/deploy",
        "git@github.com:org/repo.git",
        "ssh://git@example.com/org/repo.git",
        "git::https://example.com/org/repo",
        "https://raw.githubusercontent.com/org/repo/main/x.yaml",
        "gitlab.example.org/team/repo/base",
        "../base?ref=main",
    ],
)
def test_remote_entries(entry: str) -> None:
    assert is_remote(entry)


@pytest.mark.parametrize("entry", ["../base", "deploy.yaml", "./overlays/prod", "base", "sub_dir/x.yaml"])
def test_local_entries(entry: str) -> None:
    assert not is_remote(entry)


@pytest.mark.process
@needs_git
def test_missing_local_entry_is_a_build_finding_not_a_kustomize_run(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "repo")
    repo.kustomization("apps/web", resources=["../gone", "deploy.yaml"])
    repo.write_yaml("apps/web/deploy.yaml", workload())
    repo.commit()

    [finding] = repo.validate("--base", "HEAD").findings

    assert (finding["rule"], finding["file"]) == ("kustomize-build", "apps/web/kustomization.yaml")
    assert "'../gone' does not exist" in finding["message"]


def _stub(tmp_path: Path, script: str) -> str:
    path = tmp_path / "fake-kubectl"
    path.write_text("#!/bin/sh\n" + script + "\n")
    path.chmod(0o755)
    return str(path)


@pytest.mark.process
@needs_git
@pytest.mark.parametrize(
    "script",
    [
        "exit 0",
        "echo '{{ not yaml'",
        "printf 'apiVersion: v1\\nkind: ConfigMap\\nmetadata: {name: x}\\n'",
    ],
    ids=["prints-nothing", "not-yaml", "objects-without-the-roots"],
)
def test_a_build_that_does_not_come_back_is_bad_input_not_a_pass(tmp_path: Path, script: str) -> None:
    repo = Repo(tmp_path / "repo")
    app_root(repo, workload())
    repo.commit()
    app_root(repo, workload(labels={"app": "other"}))
    fake = _stub(tmp_path, script)

    result = repo.validate("--base", "HEAD", "--kubectl", fake)

    assert result.code == 2
    assert result.out == ""
    [line] = result.err.splitlines()
    assert line.startswith(f"resilience: error: {fake}: ")
    assert "not kubectl's kustomize" in line and "--kubectl" in line


@pytest.mark.process
def test_a_root_failing_in_a_batch_but_empty_alone_keeps_the_batch_error(tree: Path, tmp_path: Path) -> None:
    """A batch is a generated directory under the temp dir; the root alone is the real directory."""
    fake = _stub(tmp_path, 'case "$2" in */resilience-kustomize-*) echo "Error: boom" >&2; exit 1;; esac')
    root = tree / "plain"

    result = Kustomize(fake, jobs=1).build([root])[root]

    assert result.objects == []
    assert "builds to nothing alone" in result.error and "boom" in result.error
