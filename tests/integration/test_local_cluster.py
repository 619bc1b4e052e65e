"""The local provider against the real API server and the real Flux controllers."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import pytest
import yaml

from clusters.bootstrap import DEMO_KUSTOMIZATION, DEMO_PATH, HELM_REPOSITORY_NAME
from clusters.model import Cluster
from fluxmodel.annotations import reconcile_request
from fluxmodel.conditions import condition, deployment_available, is_ready, last_applied_revision
from fluxmodel.kinds import FLUX_NAMESPACE, GIT_REPOSITORY, HELM_RELEASE, KUSTOMIZATION
from foundation.waiting import wait_until
from kubeapi import Invalid, Kube


def namespace(kube: Kube, prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name


def deployment(name: str, ns: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "registry.local/app:1"}]},
            },
        },
    }


def test_bootstrap_is_ready_at_the_git_head(cluster: Cluster) -> None:
    kube, head = cluster.kube, cluster.git.revision()  # the session's other tests may have pushed since start-up
    kube.merge_patch(GIT_REPOSITORY.api_version, "GitRepository", "gitops", FLUX_NAMESPACE, reconcile_request())
    kube.merge_patch(
        KUSTOMIZATION.api_version, "Kustomization", DEMO_KUSTOMIZATION, FLUX_NAMESPACE, reconcile_request()
    )

    def demo_at_head() -> bool:
        ks = kube.get(KUSTOMIZATION.api_version, "Kustomization", DEMO_KUSTOMIZATION, FLUX_NAMESPACE)
        return ks is not None and is_ready(ks) and last_applied_revision(ks) == head

    wait_until(demo_at_head, 60, f"the bootstrap Kustomization Ready at the git head {head}")
    assert deployment_available(cluster.kube.get("apps/v1", "Deployment", "demo", "demo"))
    nodes = cluster.kube.list("v1", "Node")
    assert len(nodes) >= 2
    assert all(condition(n, "Ready") and condition(n, "Ready").true for n in nodes)  # type: ignore[union-attr]


def test_changed_selector_is_refused_as_immutable(cluster: Cluster) -> None:
    kube = cluster.kube
    ns = namespace(kube, "immutable")
    kube.apply(deployment("web", ns, {"app": "web"}))
    changed = deployment("web", ns, {"app": "web", "tier": "frontend"})
    with pytest.raises(Invalid) as err:
        kube.apply(changed)
    assert err.value.status == 422
    assert "spec.selector" in err.value.message
    assert "field is immutable" in err.value.message
    kube.delete("v1", "Namespace", ns)


def test_pushed_commit_is_applied_by_kustomize_controller(cluster: Cluster) -> None:
    kube = cluster.kube
    marker = uuid.uuid4().hex[:8]
    kustomization = yaml.safe_load(cluster.git.read(f"{DEMO_PATH}/kustomization.yaml") or "")
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "from-git", "namespace": "demo"},
        "data": {"marker": marker},
    }
    updated = copy.deepcopy(kustomization)
    if "configmap.yaml" not in updated["resources"]:
        updated["resources"].append("configmap.yaml")
    revision = cluster.git.commit(
        f"Add ConfigMap {marker}",
        write={
            f"{DEMO_PATH}/configmap.yaml": yaml.safe_dump(configmap),
            f"{DEMO_PATH}/kustomization.yaml": yaml.safe_dump(updated),
        },
    )
    kube.merge_patch(GIT_REPOSITORY.api_version, "GitRepository", "gitops", FLUX_NAMESPACE, reconcile_request())
    kube.merge_patch(
        KUSTOMIZATION.api_version, "Kustomization", DEMO_KUSTOMIZATION, FLUX_NAMESPACE, reconcile_request()
    )

    def applied() -> bool:
        ks = kube.get(KUSTOMIZATION.api_version, "Kustomization", DEMO_KUSTOMIZATION, FLUX_NAMESPACE)
        return bool(ks and is_ready(ks) and last_applied_revision(ks) == revision)

    wait_until(applied, 60, f"Kustomization {DEMO_KUSTOMIZATION} to apply {revision}")
    cm = kube.get("v1", "ConfigMap", "from-git", "demo")
    assert cm is not None and cm["data"]["marker"] == marker


def test_helmrelease_from_local_chart_repo_installs(cluster: Cluster) -> None:
    kube = cluster.kube
    ns = namespace(kube, "helm")
    release = {
        "apiVersion": HELM_RELEASE.api_version,
        "kind": "HelmRelease",
        "metadata": {"name": "web", "namespace": ns},
        "spec": {
            "interval": "10m",
            "chart": {
                "spec": {
                    "chart": "demo-app",
                    "version": "1.0.0",
                    "sourceRef": {
                        "kind": "HelmRepository",
                        "name": HELM_REPOSITORY_NAME,
                        "namespace": FLUX_NAMESPACE,
                    },
                }
            },
            "install": {"timeout": "2m"},
        },
    }
    kube.apply(release)
    hr = wait_until(
        lambda: kube.get(HELM_RELEASE.api_version, "HelmRelease", "web", ns),
        120,
        "HelmRelease web Ready",
        done=lambda obj: obj is not None and is_ready(obj),
    )
    assert hr is not None and last_applied_revision(hr) == "1.0.0"
    assert wait_until(lambda: deployment_available(kube.get("apps/v1", "Deployment", "web", ns)), 60, "web Available")
    kube.delete(HELM_RELEASE.api_version, "HelmRelease", "web", ns)


def test_crashed_controller_is_restarted_and_recorded(cluster: Cluster) -> None:
    assert cluster.control is not None
    before = len(cluster.control.restarts())
    pid = cluster.control.kill("kustomize-controller")

    def restarted() -> bool:
        status = cluster.control.status()["kustomize-controller"]  # type: ignore[union-attr]
        return bool(status["running"] and status["pid"] != pid)

    wait_until(restarted, 30, "kustomize-controller to be restarted")
    events = cluster.control.restarts()[before:]
    assert [e["component"] for e in events] == ["kustomize-controller"]
    assert events[0]["signal"] == "SIGKILL" and events[0]["pid"] == pid
