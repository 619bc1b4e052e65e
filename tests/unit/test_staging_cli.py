"""`resilience stage`: bad input is one line naming the flag and the fix, exit 2, before anything connects."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "resilience.cli", "stage", *args],
        capture_output=True,
        text=True,
        env=env or {k: v for k, v in os.environ.items() if k != "KUBECONFIG"},
        timeout=60,
    )


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Path:
    """A kubeconfig pointing at a closed port: nothing may get as far as connecting."""
    path = tmp_path / "kubeconfig"
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:9'}}]\n"
        "users: [{name: u, user: {token: t}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\n"
    )
    return path


@pytest.mark.process
@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (("--workers", "0"), ["--workers '0'", "from 1 to 64"]),
        (("--lease-duration", "nan"), ["--lease-duration 'nan'", "a plain number"]),
        (("--metrics-addr", "nowhere"), ["--metrics-addr 'nowhere'", "HOST:PORT"]),
        (("--selector", "a==b==c"), ["--selector 'a==b==c'", "label selector like"]),
        (("--namespace", "Shop"), ["--namespace 'Shop'", "like flux-system"]),
        (("--dry-run-as", " "), ["--dry-run-as", "system:serviceaccount:flux-system:kustomize-controller"]),
        (("--log-format", "xml"), ["stage: argument --log-format", "resilience stage --help"]),
    ],
)
def test_bad_flags_are_one_line_and_exit_2(kubeconfig: Path, args: tuple[str, ...], fragments: list[str]) -> None:
    proc = run("--kubeconfig", str(kubeconfig), "--startup-timeout", "0", *args)
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert all(f in line for f in fragments), line


@pytest.mark.process
def test_without_a_kubeconfig_outside_a_cluster_it_says_what_to_pass() -> None:
    proc = run()
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert "not running in a cluster" in line and "--kubeconfig" in line


@pytest.mark.process
def test_an_api_server_that_never_answers_is_exit_3_naming_it(kubeconfig: Path) -> None:
    proc = run("--kubeconfig", str(kubeconfig), "--startup-timeout", "0", "--metrics-addr", "off")
    assert proc.returncode == 3, proc.stderr
    assert "https://127.0.0.1:9" in proc.stderr.strip().splitlines()[-1]
