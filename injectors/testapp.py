"""A Flux app of one's own, for the integration tests and the benchmarks: Git files, GitRepository, Kustomization.

Each app has its own namespace, path in the GitOps repository and GitRepository (the same repository, so a pin
by the operator never touches anyone else's source), and removes all of it in cleanup(). It needs only what
every provider's cluster has (kube, the GitOps repository, optionally the chart repository), so the
integration tests and benchmarks can use it on any cluster.
"""

from __future__ import annotations

import contextlib
import functools
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ctlruntime.timeparse import parse_time
from fluxmodel.annotations import reconcile_request
from fluxmodel.conditions import condition, deployment_available, is_ready
from fluxmodel.kinds import FLUX_NAMESPACE, GIT_REPOSITORY, HELM_RELEASE, HELM_REPOSITORY, KUSTOMIZATION, ObjectRef
from fluxmodel.signatures import Signature
from foundation.waiting import wait_until
from kubeapi import ApiError, Kube, NotFound

HELM_REPOSITORY_NAME = "local-charts"


class ClusterLike(Protocol):
    """What a harness cluster offers (clusters.model.Cluster satisfies it)."""

    @property
    def kube(self) -> Kube: ...

    @property
    def git(self) -> Any: ...

    @property
    def charts(self) -> Any: ...


@dataclass
class App:
    """One test's workload: namespace (outside Git), files under apps/<name>, a GitRepository and a Kustomization."""

    cluster: ClusterLike
    name: str
    flux_objects: list[ObjectRef] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    last_commit_at: float = 0.0

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
        self.kube.apply(
            {
                "apiVersion": GIT_REPOSITORY.api_version,
                "kind": GIT_REPOSITORY.kind,
                "metadata": {"name": self.source, "namespace": FLUX_NAMESPACE},
                "spec": {"url": self.cluster.git.url, "interval": "1m", "ref": {"branch": "main"}, "timeout": "20s"},
            }
        )
        self.flux_objects.append(ObjectRef(GIT_REPOSITORY.kind, FLUX_NAMESPACE, self.source))
        if kustomization:
            self.kustomization(self.name, self.path, **spec)
        return revision

    def manifest(self, name: str, path: str, *, depends_on: tuple[str, ...] = (), **spec: Any) -> dict[str, Any]:
        """A Flux Kustomization of this app's source (to apply, or to commit for a parent Kustomization)."""
        body: dict[str, Any] = {
            "interval": "5m",
            "retryInterval": "30s",
            "path": f"./{path.lstrip('./')}",
            "prune": True,
            "wait": True,
            "timeout": "30s",
            "sourceRef": {"kind": GIT_REPOSITORY.kind, "name": self.source},
        }
        if depends_on:
            body["dependsOn"] = [{"name": d} for d in depends_on]
        body.update(spec)
        return {
            "apiVersion": KUSTOMIZATION.api_version,
            "kind": KUSTOMIZATION.kind,
            "metadata": {"name": name, "namespace": FLUX_NAMESPACE},
            "spec": body,
        }

    def kustomization(self, name: str, path: str, **spec: Any) -> ObjectRef:
        """Apply a Flux Kustomization (see manifest) and remember it for cleanup."""
        self.kube.apply(self.manifest(name, path, **spec))
        ref = ObjectRef(KUSTOMIZATION.kind, FLUX_NAMESPACE, name)
        self.flux_objects.append(ref)
        return ref

    def commit(self, message: str, write: dict[str, str] | None = None, delete: list[str] | None = None) -> str:
        self.paths.extend(write or {})
        self.last_commit_at = time.time()
        revision = str(self.cluster.git.commit(f"{self.name}: {message}", write=write, delete=delete))
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
        """The object shows the signature now, or its controller recorded it in an Event since the last commit
        (the operator may fix it between two polls: the controller's Event is the lasting proof)."""
        obj = self.get(ref)
        if obj is not None and signature.matches(obj):
            return True
        controller = "helm-controller" if ref.kind == HELM_RELEASE.kind else "kustomize-controller"
        since = int(self.last_commit_at)  # Event times have whole seconds
        for event in self.events(ref):
            by = event.get("reportingComponent") or (event.get("source") or {}).get("component")
            at = parse_time(event.get("lastTimestamp") or event.get("eventTime")) or 0.0
            if by == controller and at >= since and signature.message.search(event.get("message") or ""):
                return True
        return False

    def available(self, name: str) -> bool:
        return deployment_available(self.kube.get("apps/v1", "Deployment", name, self.ns))

    def events(self, ref: ObjectRef, reason: str | None = None) -> list[dict[str, Any]]:
        out = []
        for event in self.kube.list("v1", "Event", ref.namespace):
            involved = event.get("involvedObject") or {}
            same = involved.get("kind") == ref.kind and involved.get("name") == ref.name
            if same and (reason is None or event.get("reason") == reason):
                out.append(event)
        return out

    def cleanup(self) -> None:
        """Remove everything the app created; every step runs even if an earlier one failed."""
        steps: list[Callable[[], object]] = []
        for ref in reversed(self.flux_objects):
            if ref.kind == KUSTOMIZATION.kind:
                steps.append(functools.partial(self._delete_kustomization, ref))
            elif ref.kind == HELM_RELEASE.kind:
                steps.append(
                    functools.partial(self.kube.delete, HELM_RELEASE.api_version, ref.kind, ref.name, ref.namespace)
                )
        for ref in self.flux_objects:
            if ref.kind == GIT_REPOSITORY.kind:
                for name in (ref.name, f"{ref.name}-head-probe"):
                    steps.append(
                        functools.partial(
                            self.kube.delete, GIT_REPOSITORY.api_version, GIT_REPOSITORY.kind, name, FLUX_NAMESPACE
                        )
                    )
        steps.append(lambda: self.kube.delete("v1", "Namespace", self.ns))
        if self.paths:
            steps.append(lambda: self.cluster.git.commit(f"{self.name}: cleanup", delete=[self.path]))
        errors = []
        for step in steps:
            try:
                step()
            except ApiError as e:
                errors.append(str(e))
        if errors:
            raise RuntimeError(f"cleanup of {self.name} left things behind: {'; '.join(errors)}")

    def _delete_kustomization(self, ref: ObjectRef) -> None:
        """Prune on: deleting the Kustomization deletes what it applied (not the namespace, made outside Git)."""
        with contextlib.suppress(NotFound):
            self.kube.merge_patch(
                KUSTOMIZATION.api_version, ref.kind, ref.name, ref.namespace, {"spec": {"prune": True}}
            )
        self.kube.delete(KUSTOMIZATION.api_version, ref.kind, ref.name, ref.namespace)


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


def publish(cluster: ClusterLike, **values: Any) -> str:
    """A new demo-app chart version (unique per call) with `values`, once the Helm repository serves it."""
    assert cluster.charts is not None
    version = f"1.{secrets.randbelow(10**6)}.{secrets.randbelow(1000)}"
    repo = (
        cluster.kube.get(HELM_REPOSITORY.api_version, HELM_REPOSITORY.kind, HELM_REPOSITORY_NAME, FLUX_NAMESPACE) or {}
    )
    before = ((repo.get("status") or {}).get("artifact") or {}).get("revision")
    cluster.charts.publish("demo-app", version, values=values or None)
    cluster.kube.merge_patch(
        HELM_REPOSITORY.api_version, HELM_REPOSITORY.kind, HELM_REPOSITORY_NAME, FLUX_NAMESPACE, reconcile_request()
    )

    def indexed() -> bool:
        repo = (
            cluster.kube.get(HELM_REPOSITORY.api_version, HELM_REPOSITORY.kind, HELM_REPOSITORY_NAME, FLUX_NAMESPACE)
            or {}
        )
        return ((repo.get("status") or {}).get("artifact") or {}).get("revision") not in (None, before)

    wait_until(indexed, 60, f"the Helm repository to serve demo-app {version}")
    return version
