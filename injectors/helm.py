"""HelmRelease faults: an upgrade the API server rejects, an upgrade whose pods never become Ready, and
failures beyond the remediation retries whose cause goes away afterwards.

Releases live in Git (applied by the run's Kustomization), as on a real platform; chart versions are
published to the cluster's chart repository by the harness, like a chart author would.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from assertions.steady import Check, Revision, deployment_available, helmrelease_ready, kustomization_ready
from clusters.bootstrap import HELM_REPOSITORY_NAME
from fluxmodel.annotations import reconcile_request
from fluxmodel.kinds import HELM_RELEASE, HELM_REPOSITORY, ObjectRef
from fluxmodel.signatures import HELM_RETRIES_EXHAUSTED, HELM_UPGRADE_FAILED, Signature
from injectors import apps
from injectors.base import Fault, FaultContext, standard_setup

RELEASE = "web"
RELEASE_PODS: Mapping[str, str] = {"app.kubernetes.io/name": RELEASE}  # the demo-app chart's pod labels
BASE_VERSION = "1.0.0"
# Chart versions the faults publish (shared by all runs; publishing is idempotent).
CHARTS: dict[str, dict[str, Any]] = {
    "1.1.0": {"replicaCount": -1},  # rendered `replicas: -1`: the API server rejects the manifest
    "1.2.0": {"podBehavior": "never-ready"},  # pods run but never become Ready
    "1.3.0": {"podLabels": {"release-train": "2"}},  # a harmless template change
    "1.4.0": {"podAnnotations": {"pod-ready.stage.kwok.x-k8s.io/delay": "4s"}},  # pods Ready after 4 s
}


def publish(ctx: FaultContext, version: str) -> None:
    charts = ctx.cluster.charts
    if charts is None:
        raise RuntimeError("this cluster has no chart repository")
    if version not in charts.versions("demo-app"):
        charts.publish("demo-app", version, CHARTS.get(version))
    ctx.kube.merge_patch(
        HELM_REPOSITORY.api_version, HELM_REPOSITORY.kind, HELM_REPOSITORY_NAME, ctx.flux_namespace, reconcile_request()
    )


class _HelmFault(Fault):
    family = "helm"
    signature: ClassVar[Signature | None] = HELM_UPGRADE_FAILED
    desired_state_valid = False
    version: ClassVar[str]
    release_spec: ClassVar[dict[str, Any]] = {}
    serves = RELEASE_PODS

    def release(self, ctx: FaultContext, version: str) -> dict[str, Any]:
        hr = apps.helm_release(RELEASE, ctx.namespace, ctx.flux_namespace, version, **self.release_spec)
        return ctx.decorate(hr)

    def files(self, ctx: FaultContext, version: str) -> dict[str, str]:
        return {
            f"{ctx.path}/helmrelease.yaml": apps.dump(self.release(ctx, version)),
            f"{ctx.path}/kustomization.yaml": apps.dump(apps.kustomization_file(["helmrelease.yaml"])),
        }

    def setup(self, ctx: FaultContext) -> None:
        standard_setup(ctx, self.files(ctx, BASE_VERSION), timeout="60s")

    def steady(self, ctx: FaultContext, revision: Revision) -> Check:
        return (
            kustomization_ready(ctx.flux_namespace, ctx.app, revision)
            & helmrelease_ready(ctx.namespace, RELEASE)
            & deployment_available(ctx.namespace, RELEASE)
        )

    def target(self, ctx: FaultContext) -> ObjectRef:
        return ObjectRef(HELM_RELEASE.kind, ctx.namespace, RELEASE)

    def watched_refs(self, ctx: FaultContext) -> set[str]:
        return {str(self.target(ctx)), str(ctx.kustomization_ref())}

    def inject(self, ctx: FaultContext) -> None:
        publish(ctx, self.version)
        ctx.commit(f"Upgrade {RELEASE} to demo-app {self.version}", write=self.files(ctx, self.version))
        ctx.reconcile(ctx.kustomization_ref())


class HelmUpgradeBroken(_HelmFault):
    name = "helm-upgrade-broken"
    summary = "a HelmRelease moved to a chart version whose manifest the API server rejects"
    version = "1.1.0"


class HelmUpgradeUnready(_HelmFault):
    name = "helm-upgrade-unready"
    summary = "a HelmRelease moved to a chart version whose pods never become Ready (upgrade timeout)"
    version = "1.2.0"


class HelmRetriesExhausted(_HelmFault):
    """The upgrade is fine, but a ResourceQuota blocks its new pods; the quota is lifted once proven."""

    name = "helm-retries-exhausted"
    summary = "upgrade failures beyond the remediation retries (Stalled, RetriesExceeded), then the cause goes away"
    signature = HELM_RETRIES_EXHAUSTED
    desired_state_valid = True  # the new chart version is good: recovered means it is live
    version = "1.3.0"
    release_spec: ClassVar[dict[str, Any]] = {"upgrade": {"remediation": {"retries": 1}}}
    prove_within = 150.0

    def quota(self, ctx: FaultContext) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {"name": "pods-frozen", "namespace": ctx.namespace},
            "spec": {"hard": {"pods": "2"}},
        }

    def inject(self, ctx: FaultContext) -> None:
        ctx.apply(self.quota(ctx))
        probe = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "quota-probe", "namespace": ctx.namespace},
            "spec": {"containers": [{"name": "c", "image": "registry.local/probe:1"}]},
        }
        ctx.prove(ctx.wait_refused(probe, "exceeded quota"), "pods blocked by a ResourceQuota")
        super().inject(ctx)

    def recovered(self, ctx: FaultContext) -> Check:
        return super().recovered(ctx) & helmrelease_ready(ctx.namespace, RELEASE, self.version)

    def after_proof(self, ctx: FaultContext) -> None:
        ctx.kube.delete("v1", "ResourceQuota", "pods-frozen", ctx.namespace)
