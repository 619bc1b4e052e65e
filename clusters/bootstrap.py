"""What every provider puts in a fresh cluster: the GitOps repository's first commit and the Flux objects.

Ready means the path works end to end: source-controller fetched the repository, kustomize-controller
applied it at that revision (its Kustomization Ready), and the demo Deployment it applied became Available. The
demo Kustomization does not `wait`: kustomize-controller polls its health checks every 5 s (a constant in its
code), which held Ready back 4 s after a Deployment Available a second after the apply; `Bootstrap.wait` checks
the Deployment itself. On clusters the harness does not own (kind, existing) its objects live in namespaces of
their own, so nothing of the user's is touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from fluxmodel.conditions import condition, deployment_available, is_ready, last_applied_revision
from fluxmodel.kinds import FLUX_NAMESPACE, GIT_REPOSITORY, HELM_REPOSITORY, KUSTOMIZATION
from foundation.errors import HarnessError
from foundation.waiting import poll
from kubeapi import Kube, TemporaryApiError

GIT_REPOSITORY_NAME = "gitops"
HELM_REPOSITORY_NAME = "local-charts"
DEMO_KUSTOMIZATION = "demo"
DEMO_DEPLOYMENT = "demo"
DEMO_PATH = "apps/demo"


def _dump(*docs: dict[str, Any]) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False)


@dataclass(frozen=True)
class Bootstrap:
    """Names of the harness's Flux objects and demo app in one cluster, and how to create them."""

    flux_namespace: str = FLUX_NAMESPACE
    demo_namespace: str = "demo"

    @classmethod
    def isolated(cls, cluster_name: str) -> Bootstrap:
        """Namespaces of its own, for clusters that also hold the user's workloads."""
        return cls(flux_namespace=f"resilience-{cluster_name}", demo_namespace=f"resilience-{cluster_name}-demo")

    def initial_content(self) -> dict[str, str]:
        """Files of the GitOps repository's first commit: one demo app under apps/demo."""
        labels = {"app": DEMO_DEPLOYMENT}
        deployment = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": DEMO_DEPLOYMENT, "namespace": self.demo_namespace, "labels": labels},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "app", "image": "registry.local/demo:1.0.0"}]},
                },
            },
        }
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.demo_namespace}}
        kustomization = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": ["namespace.yaml", "deployment.yaml"],
        }
        return {
            f"{DEMO_PATH}/namespace.yaml": _dump(namespace),
            f"{DEMO_PATH}/deployment.yaml": _dump(deployment),
            f"{DEMO_PATH}/kustomization.yaml": _dump(kustomization),
            "README.md": "GitOps repository of a resilience test cluster; faults are commits.\n",
        }

    def git_repository(self, url: str, interval: str = "1m") -> dict[str, Any]:
        return {
            "apiVersion": GIT_REPOSITORY.api_version,
            "kind": GIT_REPOSITORY.kind,
            "metadata": {"name": GIT_REPOSITORY_NAME, "namespace": self.flux_namespace},
            "spec": {"url": url, "interval": interval, "ref": {"branch": "main"}, "timeout": "20s"},
        }

    def helm_repository(self, url: str, interval: str = "1m") -> dict[str, Any]:
        return {
            "apiVersion": HELM_REPOSITORY.api_version,
            "kind": HELM_REPOSITORY.kind,
            "metadata": {"name": HELM_REPOSITORY_NAME, "namespace": self.flux_namespace},
            "spec": {"url": url, "interval": interval, "timeout": "20s"},
        }

    def kustomization(
        self,
        name: str,
        path: str,
        *,
        wait: bool = True,
        timeout: str = "2m",
        interval: str = "10m",
        **spec: Any,
    ) -> dict[str, Any]:
        """A Flux Kustomization of the GitOps repository; `spec` adds or overrides fields (dependsOn...)."""
        body: dict[str, Any] = {
            "interval": interval,
            "path": f"./{path.lstrip('./')}",
            "prune": True,
            "wait": wait,
            "timeout": timeout,
            "sourceRef": {"kind": GIT_REPOSITORY.kind, "name": GIT_REPOSITORY_NAME},
        }
        body.update(spec)
        return {
            "apiVersion": KUSTOMIZATION.api_version,
            "kind": KUSTOMIZATION.kind,
            "metadata": {"name": name, "namespace": self.flux_namespace},
            "spec": body,
        }

    def objects(self, git_url: str, chart_url: str | None) -> list[dict[str, Any]]:
        objs = [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.flux_namespace}},
            self.git_repository(git_url),
            self.kustomization(DEMO_KUSTOMIZATION, DEMO_PATH, wait=False),
        ]
        if chart_url:
            objs.append(self.helm_repository(chart_url))
        return objs

    def apply(self, kube: Kube, git_url: str, chart_url: str | None, timeout: float = 5.0) -> None:
        """Apply the objects, retrying for up to `timeout` seconds while the API server is still settling."""

        def attempt() -> TemporaryApiError | None:
            try:
                for obj in self.objects(git_url, chart_url):
                    kube.apply(obj)
            except TemporaryApiError as e:
                return e
            return None

        error = poll(attempt, timeout, interval=0.25, done=lambda e: e is None)
        if error is not None:
            raise error

    def wait(self, kube: Kube, revision: str, timeout: float) -> None:
        """Wait until the demo Kustomization applied `revision` and the demo Deployment is Available."""

        def unready() -> str | None:
            """What is not there yet, or None when it all is."""
            try:
                ks = kube.get(KUSTOMIZATION.api_version, KUSTOMIZATION.kind, DEMO_KUSTOMIZATION, self.flux_namespace)
                dep = kube.get("apps/v1", "Deployment", DEMO_DEPLOYMENT, self.demo_namespace)
            except TemporaryApiError as e:
                return str(e)
            if ks and is_ready(ks) and last_applied_revision(ks) == revision and deployment_available(dep):
                return None
            ready = condition(ks or {}, "Ready")
            detail = f"{ready.reason}: {ready.message}" if ready else "no status"
            return f"Kustomization {self.flux_namespace}/{DEMO_KUSTOMIZATION}: {detail}"

        last = poll(unready, timeout, done=lambda seen: seen is None)
        if last is not None:
            raise HarnessError(f"bootstrap not Ready after {timeout:.0f}s: {last}")

    def teardown(self, kube: Kube) -> None:
        """Remove only what `apply` created: the demo Kustomization (pruning its objects), the namespace."""
        kube.delete(KUSTOMIZATION.api_version, KUSTOMIZATION.kind, DEMO_KUSTOMIZATION, self.flux_namespace)
        kube.delete("v1", "Namespace", self.flux_namespace)
