"""What a provider hands to scenarios: a running cluster with Flux, its GitOps and chart repositories.

Scenarios only see this interface, so the same test runs on the local provider, kind or an existing cluster.
`control` is the local provider's process supervisor (crash a controller, hold the git server down); other
providers have none, and faults that need it say so.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from clusters.bootstrap import Bootstrap
from clusters.charts import ChartRepo
from clusters.gitops import GitOpsRepo
from kubeapi import Kube, connect
from monitoring.stack.handle import Monitoring


class ComponentControl(Protocol):
    """Process-level control of cluster components (local provider only)."""

    def kill(self, component: str, signal: int = 9) -> int: ...

    def hold(self, component: str, seconds: float | None = None) -> None: ...

    def release(self, component: str) -> None: ...

    def restarts(self) -> list[dict[str, Any]]: ...

    def status(self) -> dict[str, Any]: ...

    def command_line(self, component: str) -> list[str] | None: ...


@dataclass
class Cluster:
    name: str
    provider: str
    kubeconfig: Path
    git: GitOpsRepo
    charts: ChartRepo | None = None
    bootstrap: Bootstrap = field(default_factory=Bootstrap)
    context: str | None = None
    versions: dict[str, str] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)
    phases: dict[str, float] = field(default_factory=dict)
    control: ComponentControl | None = None
    # The recovery modes with a Flux shard of their own on this cluster (clusters.providers.SHARDED_MODES).
    flux_shards: tuple[str, ...] = ()
    # Prometheus, Alertmanager and the alert receiver, when the cluster was started with them.
    monitoring: Monitoring | None = None
    # How `kube` is made from the kubeconfig and context (unit tests hand in an in-memory API).
    connector: Callable[[Path, str | None], Kube] = field(default=connect, repr=False, compare=False)

    @functools.cached_property
    def kube(self) -> Kube:
        return self.connector(self.kubeconfig, self.context)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "provider": self.provider,
            "kubeconfig": str(self.kubeconfig),
            "context": self.context,
            "versions": self.versions,
            "ports": self.ports,
            "logs": {k: str(v) for k, v in self.logs.items()},
            "phases_seconds": self.phases,
            "git": {"url": self.git.url, "bare": str(self.git.bare), "revision": self.git.revision()},
            "namespaces": {"flux": self.bootstrap.flux_namespace, "demo": self.bootstrap.demo_namespace},
            "charts": {"url": self.charts.url, "directory": str(self.charts.directory)} if self.charts else None,
            "monitoring": self.monitoring.to_json() if self.monitoring else None,
            "flux_shards": list(self.flux_shards),
        }
