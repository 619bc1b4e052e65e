"""What every provider puts in a fresh cluster: the GitOps repository's first commit and the Flux objects.

Ready means Flux itself proved the path end to end: source-controller fetched the repository,
kustomize-controller applied it at that revision, and the demo Deployment became Available.
"""

from __future__ import annotations

import time
from typing import Any

import yaml

from fluxmodel.conditions import condition, deployment_available, is_ready, last_applied_revision
from fluxmodel.kinds import FLUX_NAMESPACE, GIT_REPOSITORY, HELM_REPOSITORY, KUSTOMIZATION
from kubeapi import Kube, TemporaryApiError
from resilience.errors import HarnessError

GIT_REPOSITORY_NAME = "gitops"
HELM_REPOSITORY_NAME = "local-charts"
DEMO_KUSTOMIZATION = "demo"
DEMO_NAMESPACE = "demo"
DEMO_PATH = "apps/demo"


def _dump(*docs: dict[str, Any]) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False)


def initial_content() -> dict[str, str]:
    """Files of the GitOps repository's first commit: one demo app under apps/demo."""
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "demo", "namespace": DEMO_NAMESPACE, "labels": {"app": "demo"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "demo"}},
            "template": {
                "metadata": {"labels": {"app": "demo"}},
                "spec": {"containers": [{"name": "app", "image": "registry.local/demo:1.0.0"}]},
            },
        },
    }
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": DEMO_NAMESPACE}}
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": ["namespace.yaml", "deployment.yaml"],
    }
    return {
        f"{DEMO_PATH}/namespace.yaml": _dump(namespace),
        f"{DEMO_PATH}/deployment.yaml": _dump(deployment),
        f"{DEMO_PATH}/kustomization.yaml": _dump(kustomization),
        "README.md": "GitOps repository of a gitops-resilience cluster. The harness commits faults here.\n",
    }


def git_repository(url: str, interval: str = "1m") -> dict[str, Any]:
    return {
        "apiVersion": GIT_REPOSITORY.api_version,
        "kind": GIT_REPOSITORY.kind,
        "metadata": {"name": GIT_REPOSITORY_NAME, "namespace": FLUX_NAMESPACE},
        "spec": {"url": url, "interval": interval, "ref": {"branch": "main"}, "timeout": "20s"},
    }


def helm_repository(url: str, interval: str = "1m") -> dict[str, Any]:
    return {
        "apiVersion": HELM_REPOSITORY.api_version,
        "kind": HELM_REPOSITORY.kind,
        "metadata": {"name": HELM_REPOSITORY_NAME, "namespace": FLUX_NAMESPACE},
        "spec": {"url": url, "interval": interval, "timeout": "20s"},
    }


def kustomization(
    name: str, path: str, *, wait: bool = True, timeout: str = "2m", interval: str = "10m", **spec: Any
) -> dict[str, Any]:
    """A Flux Kustomization of the GitOps repository; `spec` adds or overrides fields (dependsOn, force...)."""
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
        "metadata": {"name": name, "namespace": FLUX_NAMESPACE},
        "spec": body,
    }


def bootstrap_objects(git_url: str, chart_url: str | None) -> list[dict[str, Any]]:
    objs = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": FLUX_NAMESPACE}},
        git_repository(git_url),
        kustomization(DEMO_KUSTOMIZATION, DEMO_PATH),
    ]
    if chart_url:
        objs.append(helm_repository(chart_url))
    return objs


def apply_bootstrap(kube: Kube, git_url: str, chart_url: str | None) -> None:
    for obj in bootstrap_objects(git_url, chart_url):
        kube.apply(obj)


def wait_bootstrapped(kube: Kube, revision: str, timeout: float) -> None:
    """Wait until the demo Kustomization applied `revision` and the demo Deployment is Available."""
    deadline = time.monotonic() + timeout
    last = "nothing observed yet"
    while time.monotonic() < deadline:
        try:
            ks = kube.get(KUSTOMIZATION.api_version, KUSTOMIZATION.kind, DEMO_KUSTOMIZATION, FLUX_NAMESPACE)
            dep = kube.get("apps/v1", "Deployment", "demo", DEMO_NAMESPACE)
        except TemporaryApiError as e:
            last = str(e)
        else:
            if ks and is_ready(ks) and last_applied_revision(ks) == revision and deployment_available(dep):
                return
            ready = condition(ks or {}, "Ready")
            last = f"Kustomization {DEMO_KUSTOMIZATION}: {ready.reason + ': ' + ready.message if ready else 'no status'}"
        time.sleep(0.2)
    raise HarnessError(f"bootstrap not Ready after {timeout:.0f}s: {last}")
