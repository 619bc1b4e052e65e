"""The processes of a local cluster: command line, environment and readiness probe of each, in one table.

The supervisor knows nothing about Kubernetes flags; it starts what this module describes. Ports come from
clusters.local.ports, binaries from the build cache.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from clusters.local.layout import ClusterLayout
from fluxmodel import tuned
from monitoring.stack import local as monitoring

# Flux controllers are what the chaos faults crash; they are also the ones a kubelet would restart. The last two
# are the `flux-tuned` shard (fluxmodel.tuned): the same binaries with Flux's recovery gates, watching only the
# objects of flux-tuned runs, which the default ones leave alone.
FLUX_CONTROLLERS: tuple[str, ...] = tuned.CONTROLLER_PROCESSES
SERVICE_CIDR = "10.96.0.0/16"


@dataclass(frozen=True)
class Probe:
    """How the supervisor knows a component is serving: an HTTP(S) URL answering 200, or a TCP port."""

    url: str | None = None
    tcp: tuple[str, int] | None = None
    # Client certificate (cert, key) and CA for probing the API server's /readyz.
    client_cert: tuple[Path, Path] | None = None
    ca: Path | None = None


@dataclass(frozen=True)
class ComponentSpec:
    name: str
    argv: list[str]
    probe: Probe
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None


def _flux_common(name: str, ports: dict[str, int], log_level: str) -> list[str]:
    return [
        f"--metrics-addr=127.0.0.1:{ports[name + '-metrics']}",
        f"--health-addr=127.0.0.1:{ports[name + '-health']}",
        f"--log-level={log_level}",
        "--log-encoding=json",
        "--watch-all-namespaces=true",
    ]


def file_servers(layout: ClusterLayout, ports: dict[str, int], host: str = "127.0.0.1") -> list[ComponentSpec]:
    """The git and chart servers; `host` is the address the cluster's Flux reaches them on."""
    return [
        ComponentSpec(
            "gitserver",
            [
                sys.executable,
                "-m",
                "clusters.local.gitserver",
                f"--root={layout.git_dir}",
                f"--host={host}",
                f"--port={ports['gitserver']}",
            ],
            Probe(tcp=(host, ports["gitserver"])),
        ),
        ComponentSpec(
            "chartserver",
            [
                sys.executable,
                "-m",
                "clusters.local.chartserver",
                f"--dir={layout.charts_dir}",
                f"--host={host}",
                f"--port={ports['chartserver']}",
            ],
            Probe(url=f"http://{host}:{ports['chartserver']}/index.yaml"),
        ),
    ]


def monitoring_site(layout: ClusterLayout, ports: dict[str, int]) -> monitoring.Site:
    """Where a local cluster's monitoring stack lives and what it scrapes."""
    return monitoring.Site(layout.monitoring_dir, ports, layout.pki_dir, FLUX_CONTROLLERS)


def component_specs(
    layout: ClusterLayout,
    ports: dict[str, int],
    binaries: dict[str, Path],
    log_level: str = "info",
    serve_host: str = "127.0.0.1",
) -> dict[str, ComponentSpec]:
    """Every process by name (only the file servers without binaries); the supervisor orders them."""
    servers = file_servers(layout, ports, serve_host)
    if not binaries:
        return {spec.name: spec for spec in servers}
    if monitoring.PROMETHEUS in binaries:  # a cluster started with monitoring
        site = monitoring_site(layout, ports)
        servers += [ComponentSpec(p.name, p.argv, Probe(url=p.ready_url)) for p in monitoring.processes(site, binaries)]
    pki = layout.pki_dir
    api = f"https://127.0.0.1:{ports['kube-apiserver']}"

    def kubeconfig(component: str) -> str:
        return str(layout.component_kubeconfig(component))

    def health(port_name: str, path: str = "/healthz", scheme: str = "http") -> Probe:
        return Probe(url=f"{scheme}://127.0.0.1:{ports[port_name]}{path}")

    specs = [
        ComponentSpec(
            "etcd",
            [
                str(binaries["etcd"]),
                "--name=default",
                f"--data-dir={layout.etcd_dir}",
                f"--listen-client-urls=http://127.0.0.1:{ports['etcd-client']}",
                f"--advertise-client-urls=http://127.0.0.1:{ports['etcd-client']}",
                f"--listen-peer-urls=http://127.0.0.1:{ports['etcd-peer']}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{ports['etcd-peer']}",
                f"--initial-cluster=default=http://127.0.0.1:{ports['etcd-peer']}",
                "--unsafe-no-fsync",
                "--quota-backend-bytes=2147483648",
                "--log-level=warn",
            ],
            health("etcd-client", "/health"),
        ),
        ComponentSpec(
            "kube-apiserver",
            [
                str(binaries["kube-apiserver"]),
                f"--etcd-servers=http://127.0.0.1:{ports['etcd-client']}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={ports['kube-apiserver']}",
                f"--tls-cert-file={pki / 'apiserver.crt'}",
                f"--tls-private-key-file={pki / 'apiserver.key'}",
                f"--client-ca-file={pki / 'ca.crt'}",
                f"--service-account-key-file={pki / 'sa.pub'}",
                f"--service-account-signing-key-file={pki / 'sa.key'}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--authorization-mode=Node,RBAC",
                "--allow-privileged=true",
                "--endpoint-reconciler-type=none",
                "--profiling=false",
                "--v=1",
            ],
            Probe(
                url=f"{api}/readyz",
                client_cert=(pki / "admin.crt", pki / "admin.key"),
                ca=pki / "ca.crt",
            ),
        ),
        ComponentSpec(
            "kube-controller-manager",
            [
                str(binaries["kube-controller-manager"]),
                f"--kubeconfig={kubeconfig('kube-controller-manager')}",
                f"--authentication-kubeconfig={kubeconfig('kube-controller-manager')}",
                f"--authorization-kubeconfig={kubeconfig('kube-controller-manager')}",
                "--bind-address=127.0.0.1",
                f"--secure-port={ports['kube-controller-manager']}",
                "--leader-elect=false",
                f"--service-account-private-key-file={pki / 'sa.key'}",
                f"--root-ca-file={pki / 'ca.crt'}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--use-service-account-credentials=true",
                "--concurrent-deployment-syncs=10",
                "--profiling=false",
                "--v=1",
            ],
            health("kube-controller-manager", scheme="https"),
        ),
        ComponentSpec(
            "kube-scheduler",
            [
                str(binaries["kube-scheduler"]),
                f"--kubeconfig={kubeconfig('kube-scheduler')}",
                f"--authentication-kubeconfig={kubeconfig('kube-scheduler')}",
                f"--authorization-kubeconfig={kubeconfig('kube-scheduler')}",
                "--bind-address=127.0.0.1",
                f"--secure-port={ports['kube-scheduler']}",
                "--leader-elect=false",
                "--profiling=false",
                "--v=1",
            ],
            health("kube-scheduler", scheme="https"),
        ),
        ComponentSpec(
            "kwok",
            [
                str(binaries["kwok"]),
                f"--kubeconfig={kubeconfig('kwok')}",
                f"--config={layout.config_dir / 'kwok.yaml'}",
                f"--server-address=127.0.0.1:{ports['kwok']}",
                "--node-ip=10.0.0.1",
            ],
            health("kwok"),
        ),
        ComponentSpec(
            "source-controller",
            [
                str(binaries["source-controller"]),
                *_flux_common("source-controller", ports, log_level),
                f"--storage-path={layout.storage_dir}",
                f"--storage-addr=127.0.0.1:{ports['source-controller-storage']}",
                f"--storage-adv-addr=127.0.0.1:{ports['source-controller-storage']}",
            ],
            health("source-controller-health", "/readyz"),
            env={"KUBECONFIG": kubeconfig("flux")},
            cwd=layout.root,
        ),
        *(_sharded(component, binaries, ports, log_level, layout) for component in tuned.SHARDED),
        *(
            _sharded(component, binaries, ports, log_level, layout, shard=True)
            for component in tuned.SHARDED
            if f"{tuned.shard(component)}-health" in ports  # not on a cluster started before the shard existed
        ),
        *servers,
    ]
    return {spec.name: spec for spec in specs}


def _sharded(
    component: str,
    binaries: dict[str, Path],
    ports: dict[str, int],
    log_level: str,
    layout: ClusterLayout,
    shard: bool = False,
) -> ComponentSpec:
    """kustomize- or helm-controller: the default instance (every object but the flux-tuned shard's), or the shard."""
    name = tuned.shard(component) if shard else component
    flags = tuned.controller_flags(component) if shard else [f"--watch-label-selector={tuned.default_selector()}"]
    extra = ["--no-remote-bases=true"] if component == "kustomize-controller" else []
    env = {"KUBECONFIG": str(layout.component_kubeconfig("flux"))}
    if component == "helm-controller":
        env["HOME"] = str(layout.root)
    return ComponentSpec(
        name,
        [str(binaries[component]), *_flux_common(name, ports, log_level), *extra, *flags],
        Probe(url=f"http://127.0.0.1:{ports[name + '-health']}/readyz"),
        env=env,
        cwd=layout.root,
    )
