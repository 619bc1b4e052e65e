"""The kind and existing providers, each standing on the session's real local cluster.

kind cannot run here (no Docker engine), so docker, kind, kubectl and flux are stub executables on PATH that
record their arguments; the stub `kind create cluster` hands out the local cluster's kubeconfig, so
everything after the command sequence (git and chart servers, bootstrap, Flux pulling from them) is real.
"""

from __future__ import annotations

import shutil
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from clusters.existing import ExistingProvider
from clusters.hosted import layout_for
from clusters.kind import KindProvider
from clusters.model import Cluster
from fluxmodel.conditions import deployment_available, is_ready
from fluxmodel.kinds import KUSTOMIZATION
from foundation.waiting import poll

STUB = textwrap.dedent(
    """\
    #!/usr/bin/env bash
    echo "$(basename "$0") $*" >> "$STUB_LOG"
    case "$(basename "$0") $1 $2" in
      "docker info"*) echo 28.2.2 ;;
      "docker network inspect") echo "127.0.0.1 fc00:f853:ccd:e793::1" ;;
      "kind create cluster")
        for arg in "$@"; do
          case "$arg" in --kubeconfig=*) cp "$STUB_KUBECONFIG" "${arg#--kubeconfig=}" ;; esac
        done ;;
    esac
    exit 0
    """
)


@pytest.fixture
def stubs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cluster: Cluster) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("docker", "kind", "kubectl", "flux"):
        path = bindir / tool
        path.write_text(STUB)
        path.chmod(0o755)
    log = tmp_path / "calls.log"
    log.touch()
    git = shutil.which("git")
    assert git is not None
    monkeypatch.setenv("PATH", f"{bindir}:{Path(git).parent}:/usr/bin:/bin")
    monkeypatch.setenv("STUB_LOG", str(log))
    monkeypatch.setenv("STUB_KUBECONFIG", str(cluster.kubeconfig))
    monkeypatch.chdir(tmp_path)
    return log


def _bootstrap_ready(handle: Cluster) -> bool:
    ns = handle.bootstrap.flux_namespace
    ks = handle.kube.get(KUSTOMIZATION.api_version, "Kustomization", "demo", ns)
    dep = handle.kube.get("apps/v1", "Deployment", "demo", handle.bootstrap.demo_namespace)
    return bool(ks and is_ready(ks) and deployment_available(dep))


def test_kind_provider_runs_the_expected_commands_and_bootstraps(stubs: Path) -> None:
    provider = KindProvider()
    handle = provider.up("stubbed", timeout=120)
    try:
        assert _bootstrap_ready(handle)
        assert handle.git.url.startswith("http://127.0.0.1:")
        assert handle.bootstrap.flux_namespace == "resilience-stubbed"
    finally:
        provider.down("stubbed")
    calls = stubs.read_text().splitlines()
    kubeconfig = layout_for("kind", "stubbed").root / "kubeconfig"
    assert calls == [
        "docker info --format {{.ServerVersion}}",
        "kind get clusters",
        f"kind create cluster --name=resilience-stubbed --kubeconfig={kubeconfig}",
        f"flux install --components=source-controller,kustomize-controller,helm-controller --kubeconfig={kubeconfig}",
        "docker network inspect kind --format {{range .IPAM.Config}}{{.Gateway}} {{end}}",
        f"kind delete cluster --name=resilience-stubbed --kubeconfig={kubeconfig}",
    ]
    assert not layout_for("kind", "stubbed").root.exists()
    assert not (stubs.parent / ".pytest-kind").exists()
    # down removed the harness's namespace (and with it the demo app) from the cluster.
    assert _gone(handle, "Namespace", "resilience-stubbed")


def _gone(handle: Cluster, kind: str, name: str) -> bool:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        obj = handle.kube.get("v1", kind, name)
        if obj is None:
            return True
        time.sleep(0.5)
    return False


def test_existing_provider_uses_an_allowed_context_in_its_own_namespaces(cluster: Cluster) -> None:
    context = f"resilience-{cluster.name}"
    provider = ExistingProvider()
    handle = provider.up("reuse", kubeconfig=str(cluster.kubeconfig), context=context, allow_context=[context])
    try:
        assert handle.context == context
        assert _bootstrap_ready(handle)

        # The local cluster's own bootstrap is untouched. Its demo Kustomization reads the repository every test
        # commits to, so at any one moment it may be reconciling a new revision: Ready again, not Ready at once.
        def demo() -> dict[str, Any] | None:
            return cluster.kube.get(
                KUSTOMIZATION.api_version, "Kustomization", "demo", cluster.bootstrap.flux_namespace
            )

        ks = poll(demo, 60, 0.5, done=lambda obj: obj is not None and is_ready(obj))
        assert ks is not None and is_ready(ks), ks
    finally:
        provider.down("reuse")
    assert _gone(handle, "Namespace", "resilience-reuse")
    assert _gone(handle, "Namespace", "resilience-reuse-demo")
