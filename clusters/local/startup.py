"""The start-up sequence of a local cluster, run inside its supervisor, with the time each phase took.

Order matters for speed on two cores: etcd, the API server and the file servers start together, and the CRD
files are parsed and the Kubernetes client imported while the API server comes up; kube components, nodes and
CRDs (all at once) go in as soon as the API answers; the Flux controllers start once their CRDs are Established
(controller-runtime exits on unknown kinds), and the bootstrap objects are applied while they start, so the
controllers' first list finds them; then Flux reconciling them proves the whole path.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from clusters.local.components import FLUX_CONTROLLERS
from clusters.local.supervisor import Supervisor
from fluxmodel.conditions import condition
from foundation.errors import HarnessError
from foundation.waiting import poll
from monitoring.stack.local import COMPONENTS as MONITORING

if TYPE_CHECKING:
    from clusters.bootstrap import Bootstrap
    from kubeapi import Kube

KWOK_NODE_LABEL = {"type": "kwok"}
FILE_SERVERS = ("gitserver", "chartserver")
KUBE_COMPONENTS = ("kube-controller-manager", "kube-scheduler", "kwok")
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class Phases:
    """Wall time per start-up phase, reported by `cluster up --json`."""

    def __init__(self, on_change: Callable[[dict[str, float]], None]):
        self.seconds: dict[str, float] = {}
        self._on_change = on_change

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        yield
        self.seconds[name] = round(time.monotonic() - started, 3)
        self._on_change(dict(self.seconds))


def node(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {**KWOK_NODE_LABEL, "kubernetes.io/hostname": name, "kubernetes.io/os": "linux"},
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": {},
    }


def _true(obj: dict[str, Any] | None, condition_type: str) -> bool:
    cond = condition(obj or {}, condition_type)
    return cond is not None and cond.true


def crd_documents(crd_files: list[Path]) -> list[dict[str, Any]]:
    """The CustomResourceDefinitions in the files, parsed with libyaml (pure-Python PyYAML takes seconds on Flux's)."""
    docs = (doc for path in crd_files for doc in yaml.load_all(path.read_text(), Loader=_LOADER))
    return [doc for doc in docs if doc and doc.get("kind") == "CustomResourceDefinition"]


def install_crds(kube: Kube, crds: list[dict[str, Any]], timeout: float) -> None:
    """Apply the CRDs side by side (the API server handles each on its own) and wait until all are Established."""
    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="crd") as pool:
        list(pool.map(kube.apply, crds))
    pending = [doc["metadata"]["name"] for doc in crds]

    def unestablished() -> list[str]:
        """The CRDs not Established yet; one that is stays so and is not asked again."""
        nonlocal pending
        crd = ("apiextensions.k8s.io/v1", "CustomResourceDefinition")
        pending = [n for n in pending if not _true(kube.get(*crd, n), "Established")]
        return pending

    left = poll(unestablished, timeout, interval=0.05, done=lambda left: not left)
    if left:
        raise HarnessError(f"CRDs not Established after {timeout:.0f}s: {', '.join(left)}")


def wait_nodes_ready(kube: Kube, names: list[str], timeout: float) -> None:
    def unready() -> list[str]:
        return [name for name in names if not _true(kube.get("v1", "Node", name), "Ready")]

    left = poll(unready, timeout, interval=0.1, done=lambda left: not left)
    if left:
        raise HarnessError(f"kwok nodes not Ready after {timeout:.0f}s: {sorted(left)}")


def start_cluster(
    sup: Supervisor, spec: dict[str, Any], phases: Phases, kubeconfig: Path, crd_files: list[Path]
) -> None:
    """Bring every component up and bootstrap Flux; raises HarnessError naming what did not come up."""
    nodes = [f"kwok-node-{i}" for i in range(int(spec.get("nodes", 2)))]
    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="startup") as pool:
        with phases.phase("control-plane"):
            sup.start_all(["etcd", "kube-apiserver", *FILE_SERVERS])
            crds = pool.submit(crd_documents, crd_files)
            client = pool.submit(_client_modules)  # the Kubernetes client's import: a second of CPU, meanwhile
            sup.wait_ready(["etcd"], timeout=30)
            sup.wait_ready(["kube-apiserver"], timeout=90)
        connect, bootstrap = client.result()
        kube = connect(kubeconfig)
        try:
            with phases.phase("crds-and-nodes"):
                sup.start_all(KUBE_COMPONENTS)
                created = [pool.submit(kube.apply, node(name)) for name in nodes]
                install_crds(kube, crds.result(), timeout=60)
                for future in created:
                    future.result()
            with phases.phase("flux-controllers"):
                sup.start_all(FLUX_CONTROLLERS)
                bootstrap.apply(kube, spec["git_url"], spec.get("chart_url"))
                sup.wait_ready([*KUBE_COMPONENTS, *FILE_SERVERS, *FLUX_CONTROLLERS], timeout=60)
                wait_nodes_ready(kube, nodes, timeout=30)
            with phases.phase("bootstrap"):
                bootstrap.wait(kube, spec["git_revision"], timeout=float(spec.get("bootstrap_timeout", 120)))
            monitoring = [name for name in MONITORING if name in sup.specs]
            if monitoring:
                with phases.phase("monitoring"):
                    sup.start_all(monitoring)
                    sup.wait_ready(monitoring, timeout=60)
        finally:
            kube.close()


def _client_modules() -> tuple[Callable[[Path], Kube], Bootstrap]:
    """kubeapi's connect and a Bootstrap, imported here (not at the top) so the daemon starts etcd and the API server
    before it loads the Kubernetes client, and loads it while they come up."""
    from clusters.bootstrap import Bootstrap
    from kubeapi import connect

    return connect, Bootstrap()


def start_servers(sup: Supervisor, phases: Phases) -> None:
    """Servers-only mode, for clusters the harness does not run (kind, existing): git and chart servers."""
    with phases.phase("servers"):
        sup.start_all(FILE_SERVERS)
        sup.wait_ready(FILE_SERVERS, timeout=30)
