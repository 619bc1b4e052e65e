"""`resilience validate` as a command: exit codes, bad input, JSON shape, base selection, staged mode."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from validate_support import Repo, app_root, configmap, needs_git, needs_kubectl, workload

pytestmark = [needs_kubectl, needs_git]

JSON_KEYS = ["rule", "severity", "file", "apiVersion", "kind", "namespace", "name", "field", "message"]


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Repo:
    """A repository with one committed root; temp files go to a private dir so leaks can be seen."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    r = Repo(tmp_path / "repo")
    app_root(r, workload())
    r.commit("base")
    return r


def _write_bytes(repo: Repo, rel: str, data: bytes) -> None:
    path = repo.path / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _symlink(repo: Repo, rel: str, target: str) -> None:
    path = repo.path / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    path.symlink_to(target)


def _fifo(repo: Repo, rel: str) -> None:
    path = repo.path / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)


def _scratch_is_empty() -> bool:
    return not any(Path(tempfile.gettempdir()).iterdir())


def _break_selector(repo: Repo) -> None:
    app_root(repo, workload(labels={"app": "other"}))


@pytest.mark.process
def test_clean_tree_exits_0(repo: Repo) -> None:
    result = repo.validate("--base", "HEAD", fmt="text")
    assert result.code == 0
    assert "validate passed: 0 error(s)" in result.out


@pytest.mark.process
def test_findings_exit_1_with_text_and_json(repo: Repo) -> None:
    _break_selector(repo)

    text = repo.validate("--base", "HEAD", fmt="text")
    as_json = repo.validate("--base", "HEAD")

    assert text.code == as_json.code == 1
    assert text.out.splitlines()[0].startswith("apps/web/deployment-0.yaml: error [workload-selector] Deployment web")
    assert "validate FAILED: 1 error(s)" in text.out
    [finding] = as_json.findings
    assert list(finding) == JSON_KEYS
    assert all(isinstance(v, str) for v in finding.values())


@pytest.mark.process
def test_json_is_an_empty_list_when_clean(repo: Repo) -> None:
    result = repo.validate("--base", "HEAD")
    assert (result.code, json.loads(result.out)) == (0, [])


@pytest.mark.process
@pytest.mark.parametrize(
    ("setup", "args", "culprit"),
    [
        (
            lambda r: r.write("apps/web/kustomization.yaml", "resources: [\n"),
            [],
            "apps/web/kustomization.yaml",
        ),
        (lambda r: r.write("apps/web/deployment-0.yaml", "kind: [\n"), [], "apps/web/deployment-0.yaml"),
        (
            lambda r: r.write("clusters/prod/apps.yaml", "apiVersion: v1\nkind: {\n"),
            [],
            "clusters/prod/apps.yaml",
        ),
        (lambda r: None, ["--base", "no-such-branch"], "--base no-such-branch"),
        (lambda r: None, ["--kubectl", "/nonexistent/kubectl"], "/nonexistent/kubectl"),
        (lambda r: r.write("apps/web/kustomization.yaml", "- a\n- b\n"), [], "apps/web/kustomization.yaml"),
        (lambda r: _write_bytes(r, "apps/web/kustomization.yaml", b"resources: [\xff]\n"), [], "apps/web/kust"),
        (lambda r: _write_bytes(r, "plain/cm.yaml", b"apiVersion: v1\nkind: ConfigMap\n# \xfe\n"), [], "plain/cm.yaml"),
        (lambda r: _symlink(r, "apps/web/kustomization.yaml", "nowhere"), [], "apps/web/kustomization.yaml"),
        (lambda r: _symlink(r, "plain/loop.yaml", "loop.yaml"), [], "plain/loop.yaml"),
        (lambda r: _fifo(r, "plain/pipe.yaml"), [], "plain/pipe.yaml"),  # reading it would block forever
        (lambda r: None, ["--jobs", "0"], "--jobs '0': expected a whole number, at least 1"),
        (lambda r: None, ["--jobs", "-3"], "--jobs '-3': expected a whole number"),
        (lambda r: None, ["--jobs", "many"], "--jobs 'many': expected a whole number"),
        (lambda r: None, ["--format", "bogus"], "--format bogus"),
        (lambda r: None, ["--base", ""], "--base ''"),
        (lambda r: None, ["--base", "HEAD^{tree}"], "--base HEAD^{tree}"),
        (lambda r: None, ["--no-diff", "--base", "HEAD"], "--base HEAD"),
        (lambda r: None, ["--kubectl", "/"], "/: not an executable file"),
        (lambda r: None, ["--kubectl", ""], "'': not found on PATH"),
    ],
    ids=[
        "kustomization",
        "resource",
        "plain-manifest",
        "unknown-base",
        "missing-kubectl",
        "kustomization-is-a-list",
        "kustomization-not-utf8",
        "plain-manifest-not-utf8",
        "kustomization-dangling-symlink",
        "plain-manifest-symlink-loop",
        "plain-manifest-fifo",
        "jobs-0",
        "jobs-negative",
        "jobs-not-a-number",
        "format-bogus",
        "base-empty",
        "base-not-a-commit",
        "base-with-no-diff",
        "kubectl-is-a-directory",
        "kubectl-empty",
    ],
)
def test_bad_input_exits_2_with_one_line_and_changes_nothing(repo: Repo, setup, args, culprit) -> None:
    setup(repo)
    before = repo.status()

    result = repo.validate(*args)

    assert result.code == 2
    assert result.out == ""
    [line] = result.err.splitlines()
    assert line.startswith(f"resilience: error: {culprit}")
    assert repo.status() == before
    assert _scratch_is_empty()


@pytest.mark.process
def test_not_a_git_repository_exits_2_unless_no_diff(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "app").mkdir(parents=True)
    (tree / "app/kustomization.yaml").write_text("resources: [cm.yaml]\n")
    (tree / "app/cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    cmd = [sys.executable, "-m", "resilience.cli", "validate", str(tree)]

    plain = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    no_diff = subprocess.run([*cmd, "--no-diff"], capture_output=True, text=True, timeout=120, check=False)

    assert plain.returncode == 2
    assert "not inside a git repository" in plain.stderr
    assert "--no-diff" in plain.stderr
    assert no_diff.returncode == 0, no_diff.stdout + no_diff.stderr


@pytest.mark.process
def test_kubeconfig_without_server_dry_run_exits_2(repo: Repo) -> None:
    result = repo.validate("--kubeconfig", "k.yaml")
    assert result.code == 2
    assert "only used by --server-dry-run" in result.err


@pytest.mark.process
def test_missing_path_exits_2(repo: Repo) -> None:
    result = repo.validate(path=str(repo.path / "nope"))
    assert result.code == 2
    assert "nope: no such directory" in result.err


@pytest.mark.process
def test_path_that_is_a_file_or_a_symlink_loop_exits_2(repo: Repo) -> None:
    _symlink(repo, "loop", "loop")

    as_file = repo.validate(path=str(repo.path / "apps/web/deployment-0.yaml"))
    loop = repo.validate(path=str(repo.path / "loop"))

    assert (as_file.code, loop.code) == (2, 2)
    assert "deployment-0.yaml: not a directory; pass the directory of the GitOps tree" in as_file.err
    assert "loop: cannot be resolved" in loop.err and len(loop.err.splitlines()) == 1


@pytest.mark.process
@pytest.mark.parametrize(
    "entry",
    ["x" * 300, "a\0b", "/nonexistent/abs"],
    ids=["name-too-long", "nul-byte", "absolute-outside"],
)
def test_impossible_entries_are_findings_not_tracebacks(repo: Repo, entry: str) -> None:
    repo.kustomization("apps/web", resources=["deployment-0.yaml", entry])

    result = repo.validate("--base", "HEAD")

    assert result.code == 1, result.err
    [finding] = result.findings
    assert finding["rule"] in ("kustomize-build", "outside-repository")
    assert repr(entry) in finding["message"]


@pytest.mark.process
def test_file_names_that_are_not_utf8_print_on_a_strict_stdout(repo: Repo) -> None:
    odd = os.fsdecode(b"odd\xff")
    app_root(repo, workload(), rel=odd)
    repo.commit("odd")
    app_root(repo, workload(labels={"app": "other"}), rel=odd)
    cmd = [sys.executable, "-m", "resilience.cli", "validate", str(repo.path), "--base", "HEAD"]
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}  # strict, as in a UTF-8 locale

    for fmt in ("text", "json"):
        proc = subprocess.run(
            [*cmd, "--format", fmt], capture_output=True, text=True, timeout=120, cwd=repo.path, env=env
        )
        assert proc.returncode == 1, proc.stderr
        assert "odd\\xff" in proc.stdout.replace("\\\\", "\\")


@pytest.mark.process
def test_temp_trees_removed_after_a_findings_run(repo: Repo) -> None:
    _break_selector(repo)
    assert repo.validate("--base", "HEAD").code == 1
    assert _scratch_is_empty()


@pytest.mark.process
def test_remote_base_is_refused_quickly_and_never_fetched(repo: Repo) -> None:
    repo.kustomization(
        "apps/remote",
        resources=[
            "https://github.com/example/never-fetched//deploy?ref=v1.0.0",
            "github.com/example/other/base",
        ],
    )
    cmd = [
        sys.executable,
        "-m",
        "resilience.cli",
        "validate",
        str(repo.path),
        "--base",
        "HEAD",
        "--format",
        "json",
    ]

    # A hang would be a TimeoutExpired failure here.
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False, cwd=repo.path)

    findings = json.loads(proc.stdout)
    assert proc.returncode == 1
    assert [(f["rule"], f["file"]) for f in findings] == [("remote-base", "apps/remote/kustomization.yaml")] * 2
    assert "github.com/example/never-fetched" in findings[0]["message"] + findings[1]["message"]
    assert "vendor the base" in findings[0]["message"]


@pytest.mark.process
def test_default_base_is_previous_commit(repo: Repo) -> None:
    _break_selector(repo)
    repo.commit("bad")
    app_root(repo, configmap({"a": "b"}), rel="apps/other")
    assert repo.validate().rules() == ["workload-selector"]
    repo.commit("unrelated")
    assert repo.validate().rules() == []


@pytest.mark.process
def test_default_base_is_merge_base_with_upstream(repo: Repo) -> None:
    repo.git("checkout", "-q", "-b", "feature")
    repo.git("branch", "-q", "--set-upstream-to=main")
    _break_selector(repo)
    repo.commit("bad")
    app_root(repo, configmap({"a": "b"}), rel="apps/other")
    repo.commit("unrelated")

    result = repo.validate(fmt="text")

    assert result.code == 1
    assert "compared with merge base with main" in result.out


@pytest.mark.process
def test_staged_mode_checks_the_index_not_the_working_tree(repo: Repo) -> None:
    _break_selector(repo)
    repo.git("add", "-A")
    app_root(repo, workload())  # working tree back to the committed state, index still bad

    assert repo.validate("--staged").rules() == ["workload-selector"]
    assert repo.validate("--base", "HEAD").rules() == []
    repo.git("add", "-A")
    assert repo.validate("--staged").rules() == []


@pytest.mark.process
def test_staged_mode_without_commits_builds_only(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "fresh")
    app_root(repo, workload())
    repo.git("add", "-A")

    result = repo.validate("--staged", fmt="text")

    assert result.code == 0
    assert "no base revision compared" in result.out


@pytest.mark.process
def test_untracked_files_count_as_changes(repo: Repo) -> None:
    repo.write_yaml(
        "apps/web/selector-patch.yaml",
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
         "spec": {"selector": {"matchLabels": {"app": "web", "x": "y"}},
                  "template": {"metadata": {"labels": {"x": "y"}}}}},
    )  # fmt: skip
    repo.kustomization("apps/web", resources=["deployment-0.yaml"], patches=[{"path": "selector-patch.yaml"}])

    assert repo.validate().rules() == ["workload-selector"]


@pytest.mark.process
def test_path_limits_the_check_to_a_subtree(repo: Repo) -> None:
    app_root(repo, workload(), rel="other/app")
    repo.commit("second root")
    app_root(repo, workload(labels={"app": "x"}), rel="other/app")

    assert repo.validate("--base", "HEAD", path=str(repo.path / "apps")).rules() == []
    assert repo.validate("--base", "HEAD", path=str(repo.path / "other")).rules() == ["workload-selector"]


@pytest.mark.process
def test_root_broken_at_the_base_is_a_warning_not_a_comparison(repo: Repo) -> None:
    repo.kustomization("apps/web", resources=["deployment-0.yaml", "deployment-0.yaml"])  # duplicate id
    repo.commit("broken")
    app_root(repo, workload(labels={"app": "other"}))  # fixed now, with a new selector

    result = repo.validate("--base", "HEAD")

    assert result.code == 0
    [finding] = result.findings
    assert (finding["rule"], finding["severity"], finding["file"]) == (
        "base-not-rendered",
        "warning",
        "apps/web/kustomization.yaml",
    )
    assert "immutable-field comparison skipped" in finding["message"]


def chart_only(r: Repo) -> None:
    r.write("charts/web/Chart.yaml", "apiVersion: v2\nname: web\nversion: 0.1.0\n")
    app_root(r, workload(), rel="charts/web/templates")


@pytest.mark.process
@pytest.mark.parametrize(
    "setup",
    [
        lambda r: None,
        lambda r: r.write("config/settings.yaml", "replicas: 3\n"),  # YAML, but no Kubernetes object
        lambda r: r.write_yaml(".github/ci.yaml", configmap({})),  # hidden directory
        lambda r: r.kustomization("comp", apiVersion="kustomize.config.k8s.io/v1alpha1", kind="Component"),
        chart_only,
    ],
    ids=["empty", "not-a-manifest", "hidden", "component-only", "chart-only"],
)
def test_nothing_to_validate_is_bad_input_not_a_pass(tmp_path: Path, setup) -> None:
    repo = Repo(tmp_path / "repo")
    setup(repo)
    repo.commit()

    for args in (["--base", "HEAD"], ["--no-diff"], ["--staged"]):
        result = repo.validate(*args)

        assert result.code == 2, (args, result.out)
        assert result.out == ""
        [line] = result.err.splitlines()
        assert line.startswith(f"resilience: error: {repo.path}: nothing to validate: no kustomization to build")
        assert "pass the directory of the GitOps tree" in line


@pytest.mark.process
def test_nothing_staged_below_the_path_names_the_index(repo: Repo) -> None:
    app_root(repo, workload(), rel="new/app")  # in the working tree, not in the index

    result = repo.validate("--staged", path=str(repo.path / "new"))

    assert result.code == 2
    assert "nothing to validate" in result.err and "in the staged index" in result.err


@pytest.mark.process
def test_a_hook_says_nothing_was_validated_and_lets_the_commit_through(repo: Repo) -> None:
    """A commit that stages no manifest (only .pre-commit-config.yaml, say) is not blocked with --allow-empty."""
    app_root(repo, workload(), rel="new/app")  # in the working tree, not in the index
    result = repo.validate("--staged", "--allow-empty", path=str(repo.path / "new"))
    assert result.code == 0 and result.out == ""
    assert "nothing to validate" in result.err and "(--allow-empty: not blocking)" in result.err


@pytest.mark.process
def test_plain_manifests_alone_are_something_to_validate(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "repo")
    repo.write_yaml("clusters/prod/settings.yaml", configmap({"a": "b"}))
    repo.commit()

    result = repo.validate("--no-diff", fmt="text")

    assert result.code == 0, result.err
    assert "0 kustomization root(s) built, 1 plain manifest(s) read" in result.out
