"""Immutable-field faults beyond selectors: a Service's clusterIP, a Job's template, a StatefulSet's claims.

Each is proven real before it lands (the API server refuses the change in a server-side dry-run), shows up
on the Kustomization as kustomize-controller's dry-run failure, and is recovered once the new desired state
is live: the app serves once the changed object carries the new value of its immutable field. The StatefulSet's
PersistentVolumeClaims hold data: they must survive whatever recovery does.
"""

from __future__ import annotations

import ipaddress
import secrets
from typing import Any

from assertions.steady import (
    Check,
    Revision,
    deployment_available,
    exists,
    kustomization_ready,
    spec_matches,
    statefulset_ready,
)
from assertions.watch import Target
from fluxmodel.signatures import IMMUTABLE_FIELD
from injectors import apps
from injectors.base import Fault, FaultContext, standard_setup


def _random_cluster_ip() -> str:
    """An address in the local provider's service range (10.96.0.0/16), away from the low allocations."""
    network = ipaddress.ip_network("10.96.0.0/16")
    return str(network[4096 + secrets.randbelow(60000)])


class _ImmutableObject(Fault):
    family = "immutable-field"
    signature = IMMUTABLE_FIELD
    refusal: tuple[str, ...]

    def objects(self, ctx: FaultContext, changed: bool) -> dict[str, dict[str, Any]]:
        """File name -> object, before (changed=False) and after the fault."""
        raise NotImplementedError

    def field(self, obj: dict[str, Any]) -> Any:
        """The immutable field the fault changes, as an object holds it."""
        raise NotImplementedError

    def changed_object(self, ctx: FaultContext) -> dict[str, Any]:
        """The object whose immutable field the fault changes, as Git holds it after the fault."""
        return next(obj for name, obj in self.objects(ctx, changed=True).items() if name != "deployment.yaml")

    def workload(self, ctx: FaultContext) -> Check:
        return deployment_available(ctx.namespace, "web")

    def serving(self, ctx: FaultContext) -> Check:
        """The workload available and the changed object at the new value Git holds."""
        target = self.changed_object(ctx)
        want, meta = self.field(target), target["metadata"]
        live = spec_matches(
            target["apiVersion"],
            target["kind"],
            meta["namespace"],
            meta["name"],
            f"at {want}",
            lambda obj: self.field(obj) == want,
        )
        return self.workload(ctx) & live

    def files(self, ctx: FaultContext, changed: bool) -> dict[str, str]:
        objs = self.objects(ctx, changed)
        out = {f"{ctx.path}/{name}": apps.dump(obj) for name, obj in objs.items()}
        out[f"{ctx.path}/kustomization.yaml"] = apps.dump(apps.kustomization_file(sorted(objs)))
        return out

    def setup(self, ctx: FaultContext) -> None:
        standard_setup(ctx, self.files(ctx, changed=False))

    def inject(self, ctx: FaultContext) -> None:
        target = self.changed_object(ctx)
        ctx.prove(ctx.refused(target, *self.refusal), f"a change to an immutable field of {target['kind']}")
        ctx.commit(f"{self.summary}", write=self.files(ctx, changed=True))
        ctx.reconcile(ctx.kustomization_ref())


class ServiceClusterIP(_ImmutableObject):
    name = "immutable-service-clusterip"
    summary = "a Service's spec.clusterIP changes in Git"
    refusal = ("may not change once set",)

    def objects(self, ctx: FaultContext, changed: bool) -> dict[str, dict[str, Any]]:
        key = "changed_ip" if changed else "ip"
        ip = ctx.state.setdefault(key, _random_cluster_ip())
        return {
            "deployment.yaml": apps.deployment("web", ctx.namespace),
            "service.yaml": apps.service("web", ctx.namespace, cluster_ip=ip),
        }

    def field(self, obj: dict[str, Any]) -> Any:
        return f"clusterIP {(obj.get('spec') or {}).get('clusterIP')}"

    def steady(self, ctx: FaultContext, revision: Revision) -> Check:
        return super().steady(ctx, revision) & exists("v1", "Service", ctx.namespace, "web")


class JobTemplate(_ImmutableObject):
    name = "immutable-job-template"
    summary = "a Job's pod template (its image) changes in Git"
    refusal = ("spec.template", "field is immutable")

    def field(self, obj: dict[str, Any]) -> Any:
        return f"images {', '.join(apps.images(obj))}"

    def objects(self, ctx: FaultContext, changed: bool) -> dict[str, dict[str, Any]]:
        image = "registry.local/migrate:2" if changed else "registry.local/migrate:1"
        return {
            "deployment.yaml": apps.deployment("web", ctx.namespace),
            "job.yaml": apps.job("migrate", ctx.namespace, image),
        }


class StatefulSetClaims(_ImmutableObject):
    name = "immutable-statefulset-claims"
    summary = "a StatefulSet's volumeClaimTemplates (storage request) change in Git"
    refusal = ("Forbidden", "updates to statefulset spec")

    def setup(self, ctx: FaultContext) -> None:
        # A static volume pre-bound to the claim the StatefulSet will make, so its pod can be scheduled.
        volume = apps.persistent_volume(f"{ctx.app}-data")
        volume["spec"]["claimRef"] = {"namespace": ctx.namespace, "name": "data-db-0"}
        ctx.apply(volume)
        super().setup(ctx)

    def objects(self, ctx: FaultContext, changed: bool) -> dict[str, dict[str, Any]]:
        return {"statefulset.yaml": apps.statefulset("db", ctx.namespace, storage="2Gi" if changed else "1Gi")}

    def field(self, obj: dict[str, Any]) -> Any:
        claims = (obj.get("spec") or {}).get("volumeClaimTemplates") or []
        sizes = [((c.get("spec") or {}).get("resources") or {}).get("requests", {}).get("storage") for c in claims]
        return f"claim storage {', '.join(map(str, sizes))}"

    def workload(self, ctx: FaultContext) -> Check:
        return statefulset_ready(ctx.namespace, "db")

    def steady(self, ctx: FaultContext, revision: Revision) -> Check:
        return kustomization_ready(ctx.flux_namespace, ctx.app, revision) & self.workload(ctx)

    def targets(self, ctx: FaultContext) -> list[Target]:
        return [*super().targets(ctx), Target("apps/v1", "StatefulSet", ctx.namespace)]
