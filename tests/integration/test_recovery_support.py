"""Helpers for the recovery integration tests: an app of one's own in Git and in Flux, the operator process.

Each test gets its own namespace, Git path, GitRepository (same repository, so a pin never touches another
test's source) and Kustomization, and removes them afterwards. The operator runs as a real process with a
state namespace of its own, so its Lease and reconciliation-state never meet another operator's.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from clusters.bootstrap import HELM_REPOSITORY_NAME
from clusters.model import Cluster
from fluxmodel.annotations import reconcile_request
from fluxmodel.conditions import condition, deployment_available, is_ready
from fluxmodel.kinds import FLUX_NAMESPACE, GIT_REPOSITORY, HELM_RELEASE, KUSTOMIZATION, ObjectRef
from fluxmodel.signatures import Signature
from kubeapi import Kube
from recovery.testing import OperatorProcess

TESTS_ARE_ISOLATED = True  # a marker for readers: nothing here is shared between tests but the cluster


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, log: Callable[[], str] | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    tail = f"\noperator log tail:\n{log()[-3000:]}" if log else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}{tail}")


def dump(*docs: dict[str, Any]) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False)


def deployment(
    name: str, ns: str, labels: dict[str, str], replicas: int = 2, behavior: str = "", image: str = "app:1"
) -> dict[str, Any]:
    template: dict[str, Any] = {
        "metadata": {"labels": dict(labels)},
        "spec": {"containers": [{"name": "app", "image": f"registry.local/{image}"}]},
    }
    if behavior:
        template["metadata"]["annotations"] = {"resilience.gitops.io/pod-behavior": behavior}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": dict(labels)},
        "spec": {"replicas": replicas, "selector": {"matchLabels": dict(labels)}, "template": template},
    }


def kustomize_file(resources: list[str], **extra: Any) -> dict[str, Any]:
    return {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": resources, **extra}


@dataclass
class App:
    """One test's workload: namespace (outside Git), files under apps/<name>, a GitRepository and a Kustomization."""

    cluster: Cluster
    name: str
    flux_objects: list[ObjectRef] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)

    @property
    def kube(self) -> Kube:
        return self.cluster.kube

    @property
    def ns(self) -> str:
        return self.name

    @property
    def path(self) -> str:
        return f"apps/{self.name}"

    @property
    def source(self) -> str:
        return self.name

    def setup(self, files: dict[str, str], *, kustomization: bool = True, **spec: Any) -> str:
        """Namespace, first commit, GitRepository and (unless told not to) the app's Kustomization."""
        self.kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.ns}})
        revision = self.commit("setup", files)
        source = self.cluster.bootstrap.git_repository(self.cluster.git.url)
        source["metadata"]["name"] = self.source
        self.kube.apply(source)
        self.flux_objects.append(ObjectRef(GIT_REPOSITORY.kind, FLUX_NAMESPACE, self.source))
        if kustomization:
            self.kustomization(self.name, self.path, **spec)
        return revision

    def kustomization(self, name: str, path: str, **spec: Any) -> ObjectRef:
        body = {
            "timeout": "30s",
            "retryInterval": "30s",
            "interval": "5m",
            "sourceRef": {"kind": "GitRepository", "name": self.source},
        }
        body.update(spec)
        obj = self.cluster.bootstrap.kustomization(name, path, **body)
        self.kube.apply(obj)
        ref = ObjectRef(KUSTOMIZATION.kind, FLUX_NAMESPACE, name)
        self.flux_objects.append(ref)
        return ref

    def commit(self, message: str, write: dict[str, str] | None = None, delete: list[str] | None = None) -> str:
        self.paths.extend(write or {})
        revision = self.cluster.git.commit(f"{self.name}: {message}", write=write, delete=delete)
        self.reconcile_source()
        return revision

    def reconcile_source(self) -> None:
        if self.kube.get(GIT_REPOSITORY.api_version, GIT_REPOSITORY.kind, self.source, FLUX_NAMESPACE):
            self.kube.merge_patch(
                GIT_REPOSITORY.api_version, GIT_REPOSITORY.kind, self.source, FLUX_NAMESPACE, reconcile_request()
            )

    def get(self, ref: ObjectRef) -> dict[str, Any] | None:
        kind = (
            KUSTOMIZATION
            if ref.kind == KUSTOMIZATION.kind
            else HELM_RELEASE
            if ref.kind == HELM_RELEASE.kind
            else GIT_REPOSITORY
        )
        return self.kube.get(kind.api_version, ref.kind, ref.name, ref.namespace)

    def ks(self, name: str | None = None) -> dict[str, Any] | None:
        return self.get(ObjectRef(KUSTOMIZATION.kind, FLUX_NAMESPACE, name or self.name))

    def ready(self, ref: ObjectRef, revision: str | None = None) -> bool:
        obj = self.get(ref)
        if obj is None or not is_ready(obj):
            return False
        stalled = condition(obj, "Stalled")
        if stalled is not None and stalled.true:
            return False
        return revision is None or (obj.get("status") or {}).get("lastAppliedRevision") == revision

    def shows(self, ref: ObjectRef, signature: Signature) -> bool:
        """The object shows the signature now, or its controller recorded it in an Event (the operator may have
        fixed it between two polls: the controller's Event is the lasting proof that the fault was real)."""
        obj = self.get(ref)
        if obj is not None and signature.matches(obj):
            return True
        controller = "helm-controller" if ref.kind == HELM_RELEASE.kind else "kustomize-controller"
        for event in self.events(ref):
            by = event.get("reportingComponent") or (event.get("source") or {}).get("component")
            if by == controller and signature.message.search(event.get("message") or ""):
                return True
        return False

    def available(self, name: str) -> bool:
        return deployment_available(self.kube.get("apps/v1", "Deployment", name, self.ns))

    def events(self, ref: ObjectRef, reason: str | None = None) -> list[dict[str, Any]]:
        out = []
        for event in self.kube.list("v1", "Event", ref.namespace):
            involved = event.get("involvedObject") or {}
            if involved.get("kind") == ref.kind and involved.get("name") == ref.name:
                if reason is None or event.get("reason") == reason:
                    out.append(event)
        return out

    def cleanup(self) -> None:
        for ref in reversed(self.flux_objects):
            if ref.kind == KUSTOMIZATION.kind:
                obj = self.get(ref)
                if obj is not None:
                    self.kube.merge_patch(
                        KUSTOMIZATION.api_version, ref.kind, ref.name, ref.namespace, {"spec": {"prune": True}}
                    )
                self.kube.delete(KUSTOMIZATION.api_version, ref.kind, ref.name, ref.namespace)
            elif ref.kind == HELM_RELEASE.kind:
                self.kube.delete(HELM_RELEASE.api_version, ref.kind, ref.name, ref.namespace)
        for ref in self.flux_objects:
            if ref.kind == GIT_REPOSITORY.kind:
                self.kube.delete(GIT_REPOSITORY.api_version, ref.kind, ref.name, ref.namespace)
                self.kube.delete(GIT_REPOSITORY.api_version, ref.kind, f"{ref.name}-head-probe", ref.namespace)
        self.kube.delete("v1", "Namespace", self.ns)
        if self.paths:
            self.cluster.git.commit(f"{self.name}: cleanup", delete=[self.path])


@pytest.fixture
def app(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[App]:
    prefix = request.node.name.removeprefix("test_")[:28].replace("_", "-").rstrip("-")
    instance = App(cluster, f"rc-{prefix}-{secrets.token_hex(3)}")
    yield instance
    instance.cleanup()


def start_operator(
    cluster: Cluster, tmp: Path, *args: str, state_namespace: str | None = None, kubeconfig: Path | None = None
) -> OperatorProcess:
    """`resilience recover` against the cluster, with a state namespace of its own (created here)."""
    ns = state_namespace or f"rc-state-{secrets.token_hex(3)}"
    cluster.kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    process = OperatorProcess(
        kubeconfig or cluster.kubeconfig,
        "--state-namespace",
        ns,
        "--log-format",
        "text",
        *args,
        log=tmp / f"operator-{ns}.log",
    )
    process.state_namespace = ns  # type: ignore[attr-defined]
    return process.start()


@pytest.fixture(scope="module")
def operator(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    """One operator for a test module (its objects are in per-test namespaces, so tests do not interfere)."""
    process = start_operator(cluster, tmp_path_factory.mktemp("operator"))
    yield process
    code = process.stop()
    cluster.kube.delete("v1", "Namespace", process.state_namespace)  # type: ignore[attr-defined]
    assert code == 0, f"the operator did not stop cleanly ({code}): {process.log()[-2000:]}"


def chart_release(name: str, ns: str, version: str, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "interval": "10m",
        "chart": {
            "spec": {
                "chart": "demo-app",
                "version": version,
                "sourceRef": {"kind": "HelmRepository", "name": HELM_REPOSITORY_NAME, "namespace": FLUX_NAMESPACE},
            }
        },
        "install": {"timeout": "30s"},
        "upgrade": {"timeout": "20s"},
    }
    body.update(spec)
    return {
        "apiVersion": HELM_RELEASE.api_version,
        "kind": "HelmRelease",
        "metadata": {"name": name, "namespace": ns},
        "spec": body,
    }


def publish(cluster: Cluster, **values: Any) -> str:
    """A new demo-app chart version (unique per call) with `values`, once the Helm repository serves it."""
    assert cluster.charts is not None
    version = f"1.{secrets.randbelow(10**6)}.{secrets.randbelow(1000)}"
    repo = cluster.kube.get("source.toolkit.fluxcd.io/v1", "HelmRepository", HELM_REPOSITORY_NAME, FLUX_NAMESPACE) or {}
    before = ((repo.get("status") or {}).get("artifact") or {}).get("revision")
    cluster.charts.publish("demo-app", version, values=values or None)
    cluster.kube.merge_patch(
        "source.toolkit.fluxcd.io/v1", "HelmRepository", HELM_REPOSITORY_NAME, FLUX_NAMESPACE, reconcile_request()
    )

    def indexed() -> bool:
        repo = (
            cluster.kube.get("source.toolkit.fluxcd.io/v1", "HelmRepository", HELM_REPOSITORY_NAME, FLUX_NAMESPACE)
            or {}
        )
        return ((repo.get("status") or {}).get("artifact") or {}).get("revision") not in (None, before)

    wait_for(indexed, 60, f"the Helm repository to serve demo-app {version}")
    return version
