"""Bad input to the cluster commands: one line naming the culprit and the fix, exit 2, nothing left behind."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest


def run(args: list[str], env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "resilience.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """Isolated state and cache directories, so nothing of a real run is seen or touched."""
    return {
        **os.environ,
        "RESILIENCE_STATE": str(tmp_path / "state"),
        "RESILIENCE_CACHE": str(tmp_path / "cache"),
    }


def assert_clean_error(proc: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("resilience: error: ")]
    # Progress lines may come first; the error is exactly one line, and the last.
    assert len(errors) == 1 and lines[-1] == errors[0], proc.stderr
    for fragment in fragments:
        assert fragment in errors[0]


def assert_nothing_left(env: dict[str, str]) -> None:
    clusters = Path(env["RESILIENCE_STATE"]) / "clusters"
    assert not clusters.exists() or not any(clusters.iterdir())
    leftover = subprocess.run(["pgrep", "-f", env["RESILIENCE_STATE"]], capture_output=True, text=True)
    assert leftover.stdout == ""


def stub_bin(tmp_path: Path, tools: dict[str, str]) -> str:
    """A PATH holding only the given stub tools plus git and the basics."""
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    for name, script in tools.items():
        path = bindir / name
        path.write_text("#!/bin/sh\n" + script + "\n")
        path.chmod(0o755)
    return f"{bindir}:/usr/bin:/bin"


def test_unknown_provider(env: dict[str, str]) -> None:
    proc = run(["cluster", "up", "--provider", "minikube"], env)
    assert_clean_error(proc, "unknown provider 'minikube'", "local, kind, existing")
    assert_nothing_left(env)


def test_bad_cluster_name(env: dict[str, str]) -> None:
    proc = run(["cluster", "up", "--name", "Bad_Name"], env)
    assert_clean_error(proc, "bad cluster name 'Bad_Name'")
    assert_nothing_left(env)


def test_unbuilt_binaries_name_the_build_command(env: dict[str, str]) -> None:
    proc = run(["cluster", "up", "--name", "x"], env)
    assert_clean_error(proc, "is not built yet", "resilience build")
    assert_nothing_left(env)


def test_missing_go(env: dict[str, str], tmp_path: Path) -> None:
    env = {**env, "PATH": stub_bin(tmp_path, {})}
    env.pop("RESILIENCE_GO", None)
    proc = run(["build", "--component", "kwok"], env)
    assert_clean_error(proc, "Go toolchain not found", "RESILIENCE_GO")
    assert not (Path(env["RESILIENCE_CACHE"]) / "upstream").exists() or not any(
        p.is_dir() for p in (Path(env["RESILIENCE_CACHE"]) / "upstream").iterdir()
    )


def test_unreachable_proxy_names_the_component_and_leaves_no_partial_build(env: dict[str, str], tmp_path: Path) -> None:
    env = {
        **env,
        "GOPROXY": "http://127.0.0.1:9",
        "GOSUMDB": "off",
        "GOMODCACHE": str(tmp_path / "gomod"),
        "GOFLAGS": "-modcacherw",
    }
    proc = run(["build", "--component", "kwok"], env)
    assert_clean_error(proc, "kwok v0.8.0", "Go module proxy is unreachable", "GOPROXY=http://127.0.0.1:9")
    upstream = Path(env["RESILIENCE_CACHE"]) / "upstream"
    assert [p.name for p in upstream.iterdir() if p.is_dir()] == []


def test_kind_without_docker(env: dict[str, str], tmp_path: Path) -> None:
    env = {**env, "PATH": stub_bin(tmp_path, {"kind": "exit 0", "kubectl": "exit 0", "flux": "exit 0"})}
    proc = run(["cluster", "up", "--provider", "kind", "--name", "k"], env)
    assert_clean_error(proc, "docker not found on PATH", "--provider local")
    assert_nothing_left(env)


def test_kind_without_kind(env: dict[str, str], tmp_path: Path) -> None:
    env = {**env, "PATH": stub_bin(tmp_path, {"docker": "exit 0", "kubectl": "exit 0", "flux": "exit 0"})}
    proc = run(["cluster", "up", "--provider", "kind", "--name", "k"], env)
    assert_clean_error(proc, "kind not found on PATH")
    assert_nothing_left(env)


def test_kind_with_docker_engine_down(env: dict[str, str], tmp_path: Path) -> None:
    docker = "echo 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock' >&2; exit 1"
    path = stub_bin(tmp_path, {"docker": docker, "kind": "exit 0", "kubectl": "exit 0", "flux": "exit 0"})
    proc = run(["cluster", "up", "--provider", "kind", "--name", "k"], {**env, "PATH": path})
    assert_clean_error(proc, "Docker engine not reachable", "Cannot connect to the Docker daemon")
    assert_nothing_left(env)


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(
        textwrap.dedent(
            """\
            apiVersion: v1
            kind: Config
            clusters:
            - name: prod
              cluster: {server: "https://127.0.0.1:9"}
            users:
            - name: prod
              user: {token: secret}
            contexts:
            - name: prod
              context: {cluster: prod, user: prod}
            current-context: prod
            """
        )
    )
    return path


def test_existing_context_not_allowed(env: dict[str, str], kubeconfig: Path) -> None:
    proc = run(["cluster", "up", "--provider", "existing", "--kubeconfig", str(kubeconfig)], env)
    assert_clean_error(proc, "context 'prod' is not allowed", "--allow-context prod")
    assert_nothing_left(env)


def test_existing_unknown_context(env: dict[str, str], kubeconfig: Path) -> None:
    args = ["--kubeconfig", str(kubeconfig), "--context", "staging", "--allow-context", "staging"]
    proc = run(["cluster", "up", "--provider", "existing", *args], env)
    assert_clean_error(proc, "context 'staging' is not in", "prod")


def test_existing_missing_kubeconfig(env: dict[str, str], tmp_path: Path) -> None:
    proc = run(["cluster", "up", "--provider", "existing", "--kubeconfig", str(tmp_path / "nope")], env)
    assert_clean_error(proc, "does not exist", "--kubeconfig")


def test_existing_unreachable_cluster(env: dict[str, str], kubeconfig: Path) -> None:
    proc = run(
        [
            "cluster",
            "up",
            "--provider",
            "existing",
            "--kubeconfig",
            str(kubeconfig),
            "--allow-context",
            "prod",
        ],
        env,
    )
    assert_clean_error(proc, "cannot reach the API server of context 'prod'")
    assert_nothing_left(env)


def test_down_unknown_cluster(env: dict[str, str]) -> None:
    proc = run(["cluster", "down", "--name", "ghost"], env)
    assert_clean_error(proc, "no local cluster named 'ghost'")


def test_local_only_flags_refused_for_other_providers(env: dict[str, str], kubeconfig: Path) -> None:
    proc = run(["cluster", "up", "--provider", "existing", "--api-port", "6443"], env)
    assert_clean_error(proc, "--api-port and --nodes apply to the local provider only")


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (["recover", "--settle", "nan"], ["--settle 'nan'", "a plain number"]),
        (["recover", "--selector", "a==b==c"], ["--selector 'a==b==c'", "label selector like"]),
        (["recover", "--namespace", "Shop"], ["--namespace 'Shop'", "like flux-system"]),
        (["recover", "--log-format", "xml"], ["recover: argument --log-format", "resilience recover --help"]),
        (["explain", "--kind", "HelmRelease", "--message", " "], ["--message", "paste"]),
        (["explain", "--kind", "HelmRelease", "--message", "m", "--format", "yaml"], ["--format", "'json', 'text'"]),
    ],
)
def test_recovery_commands_refuse_bad_flags_in_one_line(
    env: dict[str, str], kubeconfig: Path, argv: list[str], fragments: list[str]
) -> None:
    proc = run([*argv, *(["--kubeconfig", str(kubeconfig)] if argv[0] == "recover" else [])], env)
    assert_clean_error(proc, *fragments)
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_recover_names_the_kubeconfig_variable_it_used(env: dict[str, str], tmp_path: Path) -> None:
    listed = f"{tmp_path / 'a'}{os.pathsep}{tmp_path / 'b'}"
    proc = run(["recover"], {**env, "KUBECONFIG": listed})
    assert_clean_error(proc, f"KUBECONFIG={listed}: none of these files exists", "fix KUBECONFIG")
    assert "--kubeconfig " + listed not in proc.stderr
