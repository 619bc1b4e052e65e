"""HelmRelease faults: an upgrade the API server rejects, an upgrade whose pods never become Ready, and
failures beyond the remediation retries whose cause goes away afterwards.

Releases live in Git (applied by the run's Kustomization), as on a real platform; chart versions are
published to the cluster's chart repository by the harness, like a chart author would. The release serves a good
chart version once its Deployment is available with that version's pod template (each version's values mark it);
Flux reports the truth once the HelmRelease is Ready=True there, or its remediation rolled back to the last good
release and says so (RollbackSucceeded).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from assertions.steady import (
    AtLeast,
    Check,
    Revision,
    deployment_available,
    helmrelease_ready,
    helmrelease_rolled_back,
    kustomization_ready,
)
from clusters.bootstrap import HELM_REPOSITORY_NAME
from fluxmodel.annotations import reconcile_request
from fluxmodel.kinds import HELM_RELEASE, HELM_REPOSITORY, ObjectRef
from fluxmodel.signatures import HELM_RETRIES_EXHAUSTED, HELM_UPGRADE_FAILED, Signature
from injectors import apps
from injectors.base import Fault, FaultContext, NextCommit, serves_spec, standard_setup

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


# The next commit after recovery: a values change, so helm-controller must upgrade again (a new pod template).
NEXT_VALUES: dict[str, Any] = {"podLabels": {"next-commit": "1"}}


def _template_marks(values: Mapping[str, Any]) -> dict[str, str]:
    """What a version's values put in the pod template: its labels and annotations (the chart's templates)."""
    marks = {f"label {k}": str(v) for k, v in (values.get("podLabels") or {}).items()}
    marks |= {f"annotation {k}": str(v) for k, v in (values.get("podAnnotations") or {}).items()}
    if values.get("podBehavior"):
        marks[f"annotation {apps.POD_BEHAVIOR}"] = str(values["podBehavior"])
    return marks


_MARKED = {key for values in CHARTS.values() for key in _template_marks(values)}


def at_chart(version: str, values: Mapping[str, Any] | None = None) -> Callable[[dict[str, Any]], bool]:
    """Whether a Deployment of the release runs demo-app `version` (with `values` over it): its pod template holds
    exactly the marks that version's values set, of all the marks any published version sets."""
    want = _template_marks(CHARTS.get(version) or {}) | _template_marks(values or {})
    keys = _MARKED | set(want)

    def check(obj: dict[str, Any]) -> bool:
        meta = apps.pod_template(obj).get("metadata") or {}
        live = _template_marks({"podLabels": meta.get("labels"), "podAnnotations": meta.get("annotations")})
        return {k: v for k, v in live.items() if k in keys} == want

    return check


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

    def release(self, ctx: FaultContext, version: str, values: dict[str, Any] | None = None) -> dict[str, Any]:
        hr = apps.helm_release(RELEASE, ctx.namespace, ctx.flux_namespace, version, values, **self.release_spec)
        return ctx.decorate(hr)

    def files(self, ctx: FaultContext, version: str, values: dict[str, Any] | None = None) -> dict[str, str]:
        return {
            f"{ctx.path}/helmrelease.yaml": apps.dump(self.release(ctx, version, values)),
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

    def good_version(self) -> str:
        """The chart version a recovered release runs: the fault's own when it is good, else the last good one."""
        return self.version if self.desired_state_valid else BASE_VERSION

    def serving(self, ctx: FaultContext) -> Check:
        version = self.good_version()
        return serves_spec(ctx.namespace, RELEASE, f"at demo-app {version}", at_chart(version))

    def reporting(self, ctx: FaultContext) -> Check:
        """The Kustomization and the release Ready=True (the release at the fault's version when it is good); or the
        release's remediation rolled the failed upgrade back to the last good release and says so (the Kustomization
        health-checking it then reports the same failure, HealthCheckFailed: true as well)."""
        wanted = self.version if self.desired_state_valid else None
        ready = kustomization_ready(ctx.flux_namespace, ctx.app, self.recovery_revision(ctx)) & helmrelease_ready(
            ctx.namespace, RELEASE, wanted
        )
        return ready | helmrelease_rolled_back(ctx.namespace, RELEASE, BASE_VERSION)

    def next_commit(self, ctx: FaultContext) -> NextCommit:
        """A values change at the good chart version, so helm-controller upgrades again: taken once the Kustomization
        applied it and the release is Ready at that version with the new values live."""
        version = self.good_version()
        what = f"at demo-app {version} with the next values"
        taken = (
            kustomization_ready(ctx.flux_namespace, ctx.app, AtLeast(ctx.head, ctx.cluster.git.includes))
            & helmrelease_ready(ctx.namespace, RELEASE, version)
            & serves_spec(ctx.namespace, RELEASE, what, at_chart(version, NEXT_VALUES))
        )
        files = self.files(ctx, version, NEXT_VALUES)
        return NextCommit(f"Change {RELEASE}'s values at demo-app {version}", files, taken)

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

    def after_proof(self, ctx: FaultContext) -> None:
        ctx.kube.delete("v1", "ResourceQuota", "pods-frozen", ctx.namespace)
