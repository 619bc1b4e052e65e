"""Shared by the providers whose cluster the harness does not run (kind, existing).

The harness still serves the GitOps repository and the chart repository from this host, under a small
supervisor daemon (servers-only mode), bound to an address the cluster's Flux can reach; the harness's
Flux objects live in namespaces of their own (Bootstrap.isolated) and are the only thing `down` deletes.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from clusters import build
from clusters.bootstrap import Bootstrap
from clusters.charts import BASE_CHARTS, ChartRepo
from clusters.gitops import GitOpsRepo
from clusters.local import lifecycle
from clusters.local.layout import ClusterLayout, all_layouts, check_name
from clusters.local.ports import allocate, allocation_lock
from clusters.model import Cluster
from clusters.paths import state_root
from fluxmodel.kinds import KUSTOMIZATION
from foundation.errors import UserError
from foundation.processes import process_start_time
from kubeapi import ApiError, Kube, NotFound, TemporaryApiError, connect

FLUX_CRDS = (
    "gitrepositories.source.toolkit.fluxcd.io",
    "helmrepositories.source.toolkit.fluxcd.io",
    "kustomizations.kustomize.toolkit.fluxcd.io",
    "helmreleases.helm.toolkit.fluxcd.io",
)


def layouts(provider: str) -> list[ClusterLayout]:
    root = state_root() / provider
    return [ClusterLayout(p) for p in sorted(root.iterdir()) if p.is_dir()] if root.is_dir() else []


def layout_for(provider: str, name: str) -> ClusterLayout:
    return ClusterLayout(state_root() / provider / check_name(name))


def require_flux(kube: Kube, where: str) -> None:
    """UserError unless the cluster answers and has the Flux CRDs this harness drives."""
    try:
        missing = [
            crd for crd in FLUX_CRDS if kube.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", crd) is None
        ]
    except (TemporaryApiError, ApiError) as e:
        raise UserError(f"cannot reach the API server of {where}: {e}") from e
    if missing:
        raise UserError(
            f"Flux is not installed in {where} (missing CRDs: {', '.join(missing)}): "
            "install it with `flux install` first"
        )


def prepare(provider: str, name: str) -> tuple[ClusterLayout, dict[str, int]]:
    """Claim the cluster directory and the two server ports; UserError if the name is taken."""
    layout = layout_for(provider, name)
    lifecycle.sweep_stale(layouts(provider))
    if layout.root.exists():
        if lifecycle.supervisor(layout) is not None:
            raise UserError(
                f"a {provider} cluster named {name!r} is already set up: "
                f"run `resilience cluster down --provider {provider} --name {name}` first"
            )
        lifecycle.reap(layout)
    build.require("helm")
    with allocation_lock():
        reserved = [p for other in all_layouts() for p in (other.read_spec().get("ports") or {}).values()]
        reserved += [p for other in layouts(provider) for p in (other.read_spec().get("ports") or {}).values()]
        ports = {k: v for k, v in allocate({}, reserved).items() if k in ("gitserver", "chartserver")}
        layout.root.mkdir(parents=True)
        layout.write_spec({"name": name, "ports": ports, "preparer": lifecycle.preparer()})
    return layout, ports


def start(
    provider: str,
    layout: ClusterLayout,
    ports: dict[str, int],
    kubeconfig: Path,
    context: str | None,
    serve_host: str,
    owner_pid: int | None,
    timeout: float,
    extra_spec: dict[str, Any],
) -> Cluster:
    """Serve the repositories, apply the isolated bootstrap and wait until Flux made it Ready.

    The caller reaps the layout if this raises.
    """
    started = time.monotonic()
    helm = build.require("helm").binary("helm")
    bootstrap = Bootstrap.isolated(layout.name)
    git_url = f"http://{serve_host}:{ports['gitserver']}/gitops.git"
    chart_url = f"http://{serve_host}:{ports['chartserver']}"
    repo = GitOpsRepo.create(layout.git_dir, git_url, bootstrap.initial_content())
    charts = ChartRepo(layout.charts_dir, chart_url, helm)
    for chart in BASE_CHARTS:
        charts.publish(chart, "1.0.0")
    spec: dict[str, Any] = {
        "name": layout.name,
        "mode": "servers",
        "provider": provider,
        "ports": ports,
        "serve_host": serve_host,
        "kubeconfig": str(kubeconfig),
        "context": context,
        "git_url": git_url,
        "chart_url": chart_url,
        "created": time.time(),
        "preparer": lifecycle.preparer(),
        **extra_spec,
    }
    if owner_pid:
        spec["owner"] = {"pid": owner_pid, "start_time": process_start_time(owner_pid)}
    layout.write_spec(spec)
    status = lifecycle.wait_ready(layout, lifecycle.spawn(layout), timeout)
    kube = connect(kubeconfig, context)
    with_bootstrap = time.monotonic()
    try:
        bootstrap.apply(kube, git_url, chart_url)
        bootstrap.wait(kube, repo.revision(), timeout)
    finally:
        kube.close()
    phases = {**status.get("phases", {}), "bootstrap": round(time.monotonic() - with_bootstrap, 3)}
    phases["total"] = round(time.monotonic() - started, 3)
    return Cluster(
        name=layout.name,
        provider=provider,
        kubeconfig=kubeconfig,
        context=context,
        git=repo,
        charts=charts,
        bootstrap=bootstrap,
        ports=ports,
        logs={n: layout.log(n) for n in ("supervisor", "gitserver", "chartserver")},
        phases=phases,
    )


def stop(provider: str, name: str) -> ClusterLayout:
    """Delete the harness's objects from the cluster, stop the servers, remove the directory."""
    layout = layout_for(provider, name)
    if not layout.root.exists():
        raise UserError(f"no {provider} cluster named {name!r}: `resilience cluster list --provider {provider}`")
    spec = layout.read_spec()
    if spec.get("kubeconfig"):
        try:
            kube = connect(spec["kubeconfig"], spec.get("context"))
            Bootstrap.isolated(name).teardown(kube)
            kube.close()
        except (ApiError, ValueError):
            pass  # the cluster may already be gone; the local side is still removed
    lifecycle.reap(layout)
    return layout


def rows(provider: str) -> list[dict[str, Any]]:
    out = []
    for layout in layouts(provider):
        spec = layout.read_spec()
        running = lifecycle.supervisor(layout) is not None
        out.append(
            {
                "name": layout.name,
                "provider": provider,
                "phase": layout.read_status().get("phase", "preparing") if running else "dead",
                "api": spec.get("context"),
                "kubeconfig": spec.get("kubeconfig"),
                "owner_pid": (spec.get("owner") or {}).get("pid"),
                "age_seconds": round(time.time() - float(spec.get("created", time.time()))),
            }
        )
    return out


def status(provider: str, name: str) -> dict[str, Any]:
    layout = layout_for(provider, name)
    if not layout.root.exists():
        raise UserError(f"no {provider} cluster named {name!r}: `resilience cluster list --provider {provider}`")
    spec = layout.read_spec()
    result: dict[str, Any] = {"name": name, "provider": provider, "context": spec.get("context")}
    try:
        kube = connect(spec["kubeconfig"], spec.get("context"))
        ks = kube.get(KUSTOMIZATION.api_version, KUSTOMIZATION.kind, "demo", Bootstrap.isolated(name).flux_namespace)
        result["bootstrap_ready"] = bool(ks)
    except (ApiError, NotFound, ValueError, KeyError) as e:
        result["error"] = str(e)
    result["servers_running"] = lifecycle.supervisor(layout) is not None
    return result
