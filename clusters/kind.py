"""The `kind` provider, for hosts with Docker: pytest-kind's KindCluster, Flux from the user's flux CLI.

The git and chart servers run on this host, bound to the kind network's gateway address so the cluster's
Flux can reach them. Every external command is checked for before anything is created, so a host without
Docker gets one clear line instead of a half-made cluster.
"""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
from pathlib import Path
from typing import Any

from clusters import hosted
from clusters.model import Cluster
from foundation.errors import HarnessError, UserError

PROVIDER = "kind"
FLUX_COMPONENTS = "source-controller,kustomize-controller,helm-controller"
TOOLS = {
    "docker": "install Docker (the kind provider runs nodes as containers) or use --provider local",
    "kind": "install kind (https://kind.sigs.k8s.io) or use --provider local",
    "kubectl": "install kubectl",
    "flux": "install the flux CLI (https://fluxcd.io/flux/installation/) or use --provider local",
}


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise UserError(f"{name} not found on PATH: {TOOLS[name]}")
    return path


def _run(argv: list[str], what: str, timeout: float = 600) -> str:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise HarnessError(f"{what}: `{' '.join(argv)}` did not finish in {timeout:.0f}s") from e
    if proc.returncode != 0:
        raise HarnessError(f"{what}: `{' '.join(argv)}` failed: {proc.stderr.strip()[-400:]}")
    return proc.stdout


def check_tools() -> dict[str, str]:
    """Every tool the provider runs, and a reachable Docker engine; UserError naming what is missing."""
    tools = {name: _tool(name) for name in TOOLS}
    proc = subprocess.run([tools["docker"], "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True)
    if proc.returncode != 0:
        detail = (proc.stderr.strip().splitlines() or ["no answer"])[-1]
        raise UserError(f"Docker engine not reachable (`docker info`: {detail}): start Docker or use --provider local")
    return tools


def network_gateway(docker: str) -> str:
    """The IPv4 gateway of the `kind` Docker network: where containers reach this host."""
    out = _run(
        [docker, "network", "inspect", "kind", "--format", "{{range .IPAM.Config}}{{.Gateway}} {{end}}"],
        "find the kind network gateway",
    )
    for candidate in out.split():
        try:
            if ipaddress.ip_address(candidate).version == 4:
                return candidate
        except ValueError:
            continue
    raise HarnessError(f"the kind Docker network has no IPv4 gateway (got {out.strip()!r})")


def _kind_cluster(name: str, kubeconfig: Path, tools: dict[str, str]) -> Any:
    from pytest_kind import KindCluster

    return KindCluster(name, kubeconfig=kubeconfig, kind_path=Path(tools["kind"]), kubectl_path=Path(tools["kubectl"]))


class KindProvider:
    name = PROVIDER

    def up(self, name: str, *, owner_pid: int | None = None, timeout: float = 600.0) -> Cluster:
        tools = check_tools()
        layout, ports = hosted.prepare(PROVIDER, name)
        kubeconfig = layout.root / "kubeconfig"
        kind = _kind_cluster(f"resilience-{name}", kubeconfig, tools)
        try:
            kind.create()
            _run(
                [tools["flux"], "install", f"--components={FLUX_COMPONENTS}", f"--kubeconfig={kubeconfig}"],
                "install Flux",
            )
            host = network_gateway(tools["docker"])
            extra = {"kind_cluster": kind.name}
            return hosted.start(PROVIDER, layout, ports, kubeconfig, None, host, owner_pid, timeout, extra)
        except BaseException:
            kind.delete()
            hosted.stop(PROVIDER, name)
            raise
        finally:
            _forget_pytest_kind_dir(kind)

    def down(self, name: str) -> None:
        layout = hosted.layout_for(PROVIDER, name)
        if not layout.root.exists():
            raise UserError(f"no kind cluster named {name!r}: `resilience cluster list --provider kind`")
        tools = {n: _tool(n) for n in ("kind", "kubectl")}
        kind = _kind_cluster(f"resilience-{name}", layout.root / "kubeconfig", tools)
        kind.delete()
        _forget_pytest_kind_dir(kind)
        hosted.stop(PROVIDER, name)

    def down_all(self) -> list[str]:
        names = [layout.name for layout in hosted.layouts(PROVIDER)]
        for name in names:
            self.down(name)
        return names

    def list(self) -> list[dict[str, Any]]:
        return hosted.rows(PROVIDER)

    def status(self, name: str) -> dict[str, Any]:
        return hosted.status(PROVIDER, name)


def _forget_pytest_kind_dir(kind: Any) -> None:
    """KindCluster makes .pytest-kind/NAME in the working directory even with explicit paths: drop it."""
    for path in (Path(kind.path), Path(kind.path).parent):
        try:
            path.rmdir()
        except OSError:
            break
