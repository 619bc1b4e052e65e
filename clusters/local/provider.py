"""The default provider: Kubernetes, kwok and Flux from the build cache, run as local processes.

`up` validates everything it can before anything starts (name, binaries, ports, git), prepares the cluster
directory, starts the supervisor daemon and waits for it to report Ready. Any failure or Ctrl-C on the way
tears the cluster down again, so a failed `up` leaves no process and no directory behind (its logs are kept
under failed-logs/ for the post-mortem).
"""

from __future__ import annotations

import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Any

from clusters import build
from clusters.bootstrap import Bootstrap
from clusters.charts import BASE_CHARTS, ChartRepo
from clusters.gitops import GitOpsRepo
from clusters.local import lifecycle
from clusters.local.components import component_specs, monitoring_site
from clusters.local.layout import ClusterLayout, all_layouts
from clusters.local.pki import Identity, write_kubeconfig, write_pki
from clusters.local.ports import allocate, allocation_lock
from clusters.local.supervisor import read_restarts
from clusters.model import Cluster
from clusters.pins import COMPONENTS
from fluxmodel import tuned
from foundation.errors import HarnessError, UserError
from foundation.processes import process_start_time
from monitoring.facts.rules import rule_groups
from monitoring.stack import local as local_monitoring

# Binary -> the build component it comes from.
BINARIES = {
    "etcd": "etcd",
    "kube-apiserver": "kubernetes",
    "kube-controller-manager": "kubernetes",
    "kube-scheduler": "kubernetes",
    "kwok": "kwok",
    "source-controller": "source-controller",
    "kustomize-controller": "kustomize-controller",
    "helm-controller": "helm-controller",
    "helm": "helm",
}
FLUX_COMPONENTS = ("source-controller", "kustomize-controller", "helm-controller")
# The system under test's own CRD, installed with Flux's (`kubectl apply -k recovery/manifests` elsewhere).
STAGED_CRD = "stagedkustomization-crd.yaml"
IDENTITIES = [
    Identity("admin", "system:masters"),
    Identity("system:kube-controller-manager"),
    Identity("system:kube-scheduler"),
    Identity("kwok", "system:masters"),
    Identity("flux", "system:masters"),
]
# Which identity each component's kubeconfig carries.
COMPONENT_USERS = {
    "kube-controller-manager": "system:kube-controller-manager",
    "kube-scheduler": "system:kube-scheduler",
    "kwok": "kwok",
    "flux": "flux",
}


def versions(binaries: dict[str, str] | None = None) -> dict[str, str]:
    by_component = {c.name: c.version for c in COMPONENTS}
    return {binary: by_component[component] for binary, component in (binaries or BINARIES).items()}


class LocalProvider:
    name = "local"

    def up(
        self,
        name: str,
        *,
        owner_pid: int | None = None,
        api_port: int | None = None,
        nodes: int = 2,
        timeout: float = 180.0,
        monitoring: bool = False,
        alert_rules: Path | None = None,
        prometheus_port: int | None = None,
        alertmanager_port: int | None = None,
    ) -> Cluster:
        layout = ClusterLayout.named(name)
        lifecycle.sweep_stale(all_layouts())
        if layout.root.exists():
            if lifecycle.supervisor(layout) is not None:
                raise UserError(
                    f"a local cluster named {name!r} is already running: reuse it, or run "
                    f"`resilience cluster down --name {name}` first"
                )
            lifecycle.reap(layout)
        if nodes < 1:
            raise UserError(f"--nodes {nodes}: a cluster needs at least 1 node")
        if not monitoring and (alert_rules or prometheus_port or alertmanager_port):
            raise UserError("--alert-rules, --prometheus-port and --alertmanager-port need --monitoring")
        if alert_rules is not None:
            rule_groups(alert_rules)  # a file that cannot be read or parsed: before anything runs
        binaries = {binary: build.require(comp).binary(binary) for binary, comp in BINARIES.items()}
        crds = [str(p) for comp in FLUX_COMPONENTS for p in build.require(comp).crds]
        crds.append(str(resources.files("recovery") / "manifests" / STAGED_CRD))
        if monitoring:
            # Built on first use (a build failure is one line, and nothing has started yet).
            for binary, comp in local_monitoring.BINARIES.items():
                binaries[binary] = build.require(comp).binary(binary)
        if shutil.which("git") is None:
            raise UserError("git not found on PATH: install git (the GitOps repository is served from it)")
        fixed = {"kube-apiserver": api_port, "prometheus": prometheus_port, "alertmanager": alertmanager_port}
        with allocation_lock():
            reserved = [p for other in all_layouts() for p in (other.read_spec().get("ports") or {}).values()]
            ports = allocate({k: v for k, v in fixed.items() if v}, reserved)
            layout.root.mkdir(parents=True)
            layout.write_spec({"name": name, "ports": ports, "preparer": lifecycle.preparer()})
        try:
            promtool = binaries.pop("promtool", None)
            watched = (
                local_monitoring.prepare(monitoring_site(layout, ports), alert_rules, promtool) if promtool else None
            )
            return self._start(layout, ports, binaries, crds, owner_pid, nodes, timeout, watched)
        except BaseException:
            lifecycle.reap(layout)
            raise

    def _start(
        self,
        layout: ClusterLayout,
        ports: dict[str, int],
        binaries: dict[str, Path],
        crds: list[str],
        owner_pid: int | None,
        nodes: int,
        timeout: float,
        monitoring: dict[str, Any] | None = None,
    ) -> Cluster:
        started = time.monotonic()
        git_url = f"http://127.0.0.1:{ports['gitserver']}/gitops.git"
        chart_url = f"http://127.0.0.1:{ports['chartserver']}"
        charts = ChartRepo(layout.charts_dir, chart_url, binaries["helm"])
        # git and helm run as subprocesses: the repository and the charts are made while the certificates are.
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="prepare") as pool:
            made = pool.submit(GitOpsRepo.create, layout.git_dir, git_url, Bootstrap().initial_content())
            published = pool.submit(lambda: [charts.publish(chart, "1.0.0") for chart in BASE_CHARTS])
            self._write_config(layout, ports)
            repo = made.result()
            published.result()
        spec: dict[str, Any] = {
            "name": layout.name,
            "ports": ports,
            "binaries": {k: str(v) for k, v in binaries.items()},
            "crds": crds,
            "git_url": git_url,
            "chart_url": chart_url,
            "git_revision": repo.revision(),
            "nodes": nodes,
            "versions": versions(
                {**BINARIES, **({b: c for b, c in local_monitoring.BINARIES.items() if b in binaries})}
            ),
            "created": time.time(),
            "preparer": lifecycle.preparer(),
        }
        if monitoring is not None:
            spec["monitoring"] = monitoring
        if owner_pid:
            spec["owner"] = {"pid": owner_pid, "start_time": process_start_time(owner_pid)}
        layout.write_spec(spec)
        prepare_seconds = round(time.monotonic() - started, 3)
        status = lifecycle.wait_ready(layout, lifecycle.spawn(layout), timeout)
        phases = {"prepare": prepare_seconds, **status.get("phases", {})}
        phases["total"] = round(time.monotonic() - started, 3)
        return self._handle(layout, spec, repo, charts, phases)

    @staticmethod
    def _write_config(layout: ClusterLayout, ports: dict[str, int]) -> None:
        """Certificates, a kubeconfig per identity and the kwok configuration."""
        pki = write_pki(layout.pki_dir, IDENTITIES)
        server = f"https://127.0.0.1:{ports['kube-apiserver']}"
        context = f"resilience-{layout.name}"
        write_kubeconfig(layout.kubeconfig, pki, server, "admin", context)
        for component, user in COMPONENT_USERS.items():
            path = layout.component_kubeconfig(component)
            path.parent.mkdir(parents=True, exist_ok=True)
            write_kubeconfig(path, pki, server, user, context)
        layout.config_dir.mkdir()
        layout.storage_dir.mkdir()
        (layout.config_dir / "kwok.yaml").write_text((resources.files("clusters.local") / "kwok.yaml").read_text())

    def _handle(
        self,
        layout: ClusterLayout,
        spec: dict[str, Any],
        repo: GitOpsRepo,
        charts: ChartRepo,
        phases: dict[str, float],
    ) -> Cluster:
        names = list(component_specs(layout, spec["ports"], {k: Path(v) for k, v in spec["binaries"].items()}))
        return Cluster(
            name=layout.name,
            provider=self.name,
            kubeconfig=layout.kubeconfig,
            git=repo,
            charts=charts,
            bootstrap=Bootstrap(),
            versions=spec["versions"],
            ports=spec["ports"],
            logs={n: layout.log(n) for n in ["supervisor", *names]},
            phases=phases,
            control=lifecycle.LocalControl(layout),
            # A cluster started before the shard existed has none (its spec allocated no port for it).
            flux_shards=(tuned.MODE,) if f"{tuned.shard(tuned.SHARDED[0])}-health" in spec["ports"] else (),
            monitoring=local_monitoring.handle(monitoring_site(layout, spec["ports"]), spec.get("monitoring")),
        )

    def attach(self, name: str) -> Cluster:
        """A handle on a running local cluster (for tests reusing a cluster)."""
        layout = ClusterLayout.named(name)
        if lifecycle.supervisor(layout) is None or layout.read_status().get("phase") != "ready":
            raise UserError(f"no running local cluster named {name!r}: `resilience cluster list` shows what runs")
        spec = layout.read_spec()
        repo = GitOpsRepo(layout.git_dir / "gitops.git", layout.git_dir / "work", spec["git_url"])
        charts = ChartRepo(layout.charts_dir, spec["chart_url"], Path(spec["binaries"]["helm"]))
        return self._handle(layout, spec, repo, charts, layout.read_status().get("phases", {}))

    def down(self, name: str) -> None:
        layout = ClusterLayout.named(name)
        if not layout.root.exists():
            raise UserError(f"no local cluster named {name!r}: `resilience cluster list` shows what exists")
        lifecycle.reap(layout)

    def down_all(self) -> list[str]:
        layouts = all_layouts()
        for layout in layouts:
            lifecycle.reap(layout)
        return [layout.name for layout in layouts]

    def list(self) -> list[dict[str, Any]]:
        rows = []
        for layout in all_layouts():
            spec, status = layout.read_spec(), layout.read_status()
            running = lifecycle.supervisor(layout) is not None
            ports = spec.get("ports") or {}
            rows.append(
                {
                    "name": layout.name,
                    "provider": self.name,
                    "phase": status.get("phase", "preparing") if running else "dead",
                    "api": f"https://127.0.0.1:{ports['kube-apiserver']}" if ports else None,
                    "kubeconfig": str(layout.kubeconfig),
                    "owner_pid": (spec.get("owner") or {}).get("pid"),
                    "age_seconds": round(time.time() - float(spec.get("created", time.time()))),
                }
            )
        return rows

    def status(self, name: str) -> dict[str, Any]:
        layout = ClusterLayout.named(name)
        if not layout.root.exists():
            raise UserError(f"no local cluster named {name!r}: `resilience cluster list` shows what exists")
        status = layout.read_status()
        running = lifecycle.supervisor(layout) is not None
        live: dict[str, Any] = {}
        if running:
            try:
                live = lifecycle.LocalControl(layout).status()
            except HarnessError:
                live = {}
        return {
            "name": name,
            "phase": status.get("phase") if running else "dead",
            "phases_seconds": status.get("phases", {}),
            "error": status.get("error"),
            "components": live,
            "restarts": read_restarts(layout.restarts_file),
            "kubeconfig": str(layout.kubeconfig),
        }
