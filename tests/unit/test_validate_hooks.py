"""The hooks: the plain git pre-commit hook blocks bad commits; the pre-commit framework manifest works."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from validate_support import KUBECTL, Repo, app_root, needs_git, needs_kubectl, workload

pytestmark = [needs_kubectl, needs_git]

ROOT = Path(__file__).resolve().parents[2]
HOOK = ROOT / "hooks" / "pre-commit"
MANIFEST = ROOT / ".pre-commit-hooks.yaml"
BIN = Path(sys.executable).parent


def _env(path_dirs: list[Path], home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "RESILIENCE"))}
    env["PATH"] = os.pathsep.join([*map(str, path_dirs), "/usr/bin", "/bin"])
    env["HOME"] = str(home)
    env["PRE_COMMIT_HOME"] = str(home / "pre-commit-cache")
    return env


def _commit(repo: Repo, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    repo.git("add", "-A")
    return subprocess.run(
        ["git", "commit", "-q", "-m", "change"],
        cwd=repo.path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture
def hooked(tmp_path: Path) -> Repo:
    repo = Repo(tmp_path / "repo")
    shutil.copy(HOOK, repo.path / ".git/hooks/pre-commit")
    return repo


@pytest.mark.process
def test_git_hook_allows_first_commit_and_blocks_a_selector_change(hooked: Repo, tmp_path: Path) -> None:
    env = _env([BIN, Path(KUBECTL or "kubectl").parent], tmp_path)
    app_root(hooked, workload())
    first = _commit(hooked, env)
    assert first.returncode == 0, first.stderr
    assert "--no-diff" in first.stderr

    app_root(hooked, workload(replicas=3))
    assert _commit(hooked, env).returncode == 0

    head = hooked.git("rev-parse", "HEAD")
    app_root(hooked, workload(replicas=3), commonLabels={"team": "a"})
    blocked = _commit(hooked, env)

    assert blocked.returncode != 0
    assert "[workload-selector]" in blocked.stderr  # git shows hook output on stderr
    assert "commit blocked by resilience validate" in blocked.stderr
    assert hooked.git("rev-parse", "HEAD") == head


@pytest.mark.process
def test_git_hook_ignores_commits_without_yaml(hooked: Repo, tmp_path: Path) -> None:
    hooked.write("README.md", "docs\n")
    assert _commit(hooked, _env([], tmp_path)).returncode == 0  # no resilience, no kubectl needed


@pytest.mark.process
def test_git_hook_explains_when_resilience_is_missing(hooked: Repo, tmp_path: Path) -> None:
    app_root(hooked, workload())
    hooked.git("add", "-A")
    git_dir = Path(shutil.which("git") or "/usr/bin/git").parent
    env = _env([], tmp_path)
    env["PATH"] = str(git_dir)  # git, but no resilience (the system python3, if any, cannot import it)
    env.pop("PYTHONPATH", None)  # a PYTHONPATH pointing at this checkout would let it import resilience
    result = subprocess.run(
        [shutil.which("bash") or "/bin/bash", ".git/hooks/pre-commit"],
        cwd=hooked.path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "`resilience` command is not installed" in result.stderr
    assert "git commit --no-verify" in result.stderr


def test_pre_commit_manifest_declares_the_hooks() -> None:
    hooks = {h["id"]: h for h in yaml.safe_load(MANIFEST.read_text())}
    assert set(hooks) == {"resilience-validate", "resilience-validate-system"}
    for hook in hooks.values():
        assert hook["entry"].startswith("resilience validate")
        assert hook["pass_filenames"] is False
    assert hooks["resilience-validate"]["language"] == "python"


@pytest.mark.process
def test_pre_commit_framework_runs_the_entry(tmp_path: Path) -> None:
    """The manifest's entry under pre-commit itself (as a local system hook: no package install)."""
    pre_commit = BIN / "pre-commit"
    if not pre_commit.exists():
        pytest.skip("pre-commit is not installed in this environment")
    [hook] = [h for h in yaml.safe_load(MANIFEST.read_text()) if h["id"] == "resilience-validate-system"]
    repo = Repo(tmp_path / "repo")
    app_root(repo, workload())
    repo.write_yaml(".pre-commit-config.yaml", {"repos": [{"repo": "local", "hooks": [hook]}]})
    repo.commit("base")
    app_root(repo, workload(labels={"app": "other"}))
    repo.git("add", "-A")
    env = _env([BIN, Path(KUBECTL or "kubectl").parent], tmp_path)

    result = subprocess.run(
        [str(pre_commit), "run", "--hook-stage", "pre-commit"],
        cwd=repo.path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 1, result.stdout + result.stderr
    assert "[workload-selector]" in result.stdout
