"""dependsOn faults: a cycle (Kustomizations, and HelmReleases), and a 3-deep chain whose root breaks.

The dependent Flux objects live in Git, applied by the run's parent Kustomization, so a cycle is "fixed in
Git" like a person would fix it: a commit, and nothing but the source being told a new commit exists (what
a webhook receiver does). Flux reports no cycle on any object, and kustomize-controller stops event-driven
reconciles of every Kustomization of that source while one exists. The fix is the good revision: the app serves
once its objects hold the fix's content (ConfigMaps, or the releases' Deployments at the fix's replicas).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, ClassVar

from assertions.steady import AtLeast, Check, Revision, helmrelease_ready, kustomization_ready, spec_matches
from fluxmodel.graph import DependencyGraph, format_cycle
from fluxmodel.kinds import HELM_RELEASE, KUSTOMIZATION, ObjectRef
from fluxmodel.signatures import DEPENDENCY_NOT_READY
from foundation.waiting import wait_until
from injectors import apps
from injectors.base import Fault, FaultContext, NextCommit, serves_spec, standard_setup
from injectors.helm import BASE_VERSION, publish

FIXED = "v3"  # the content the fix in Git rolls out (v1 before the fault, v2 the commit it locks up)
FIXED_REPLICAS, NEXT_REPLICAS = 3, 2  # the releases' replicas after the fix, and in the next commit after it


def _configmap(ctx: FaultContext, name: str, value: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ctx.namespace},
        "data": {"value": value},
    }


class _Chain(Fault):
    """Child Kustomizations `<app>-<x>` in Git under apps/<app>/flux, each applying apps/<app>/<x>."""

    family = "dependency"
    signature = DEPENDENCY_NOT_READY
    children: ClassVar[tuple[str, ...]]
    # Seconds between proof and the fix in Git: time for a recovery to report the problem first.
    fix_after: ClassVar[float] = 5.0

    def child(self, ctx: FaultContext, name: str, depends: list[str]) -> dict[str, Any]:
        spec: dict[str, Any] = {"timeout": "30s"}
        if depends:
            spec["dependsOn"] = [{"name": f"{ctx.app}-{d}"} for d in depends]
        return ctx.kustomization(f"{ctx.app}-{name}", f"{ctx.path}/{name}", **spec)

    def files(
        self, ctx: FaultContext, graph: dict[str, list[str]], content: str, broken: str | None = None
    ) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, depends in graph.items():
            out[f"{ctx.path}/flux/{name}.yaml"] = apps.dump(self.child(ctx, name, depends))
            out[f"{ctx.path}/{name}/configmap.yaml"] = apps.dump(_configmap(ctx, name, content))
            resources = ["configmap.yaml", "missing.yaml"] if name == broken else ["configmap.yaml"]
            out[f"{ctx.path}/{name}/kustomization.yaml"] = apps.dump(apps.kustomization_file(resources))
        out[f"{ctx.path}/flux/kustomization.yaml"] = apps.dump(apps.kustomization_file([f"{n}.yaml" for n in graph]))
        return out

    def initial(self) -> dict[str, list[str]]:
        raise NotImplementedError

    def setup(self, ctx: FaultContext) -> None:
        # The parent applies the child Flux objects (apps/<app>/flux), not workloads, and like Flux's own
        # flux-system Kustomization it does not wait for them: each child reports for itself.
        standard_setup(ctx, self.files(ctx, self.initial(), "v1"), path=f"{ctx.path}/flux", wait=False)

    def steady(self, ctx: FaultContext, revision: Revision) -> Check:
        check = kustomization_ready(ctx.flux_namespace, ctx.app, revision)
        for name in self.children:
            check = check & kustomization_ready(ctx.flux_namespace, f"{ctx.app}-{name}", revision)
        return check

    def watched_refs(self, ctx: FaultContext) -> set[str]:
        return {str(ctx.kustomization_ref(f"{ctx.app}-{n}")) for n in self.children} | {str(ctx.kustomization_ref())}

    def serving(self, ctx: FaultContext) -> Check:
        """Every child's ConfigMap holds the fix's content."""

        def fixed(obj: dict[str, Any]) -> bool:
            return (obj.get("data") or {}).get("value") == FIXED

        checks = [spec_matches("v1", "ConfigMap", ctx.namespace, name, f"at {FIXED}", fixed) for name in self.children]
        out = checks[0]
        for check in checks[1:]:
            out = out & check
        return out

    def reporting(self, ctx: FaultContext) -> Check:
        return self.steady(ctx, self.recovery_revision(ctx))

    def next_commit(self, ctx: FaultContext) -> NextCommit:
        """Taken when the parent and every child are Ready at it: no Kustomization of the source is left behind."""
        taken = self.steady(ctx, AtLeast(ctx.head, ctx.cluster.git.includes))
        return dataclasses.replace(super().next_commit(ctx), taken=taken)

    def fix(self, ctx: FaultContext, files: dict[str, str], message: str) -> None:
        time.sleep(self.fix_after)
        ctx.commit(message, write=files)
        ctx.reconcile()  # the source only: as a webhook receiver would


class DependencyCycle(_Chain):
    name = "dependency-cycle"
    summary = "Kustomizations A -> B -> A: every object of the source stops reconciling; fixed in Git later"
    children = ("a", "b")

    def initial(self) -> dict[str, list[str]]:
        return {"a": [], "b": ["a"]}

    def target(self, ctx: FaultContext) -> ObjectRef:
        return ctx.kustomization_ref(f"{ctx.app}-b")

    def inject(self, ctx: FaultContext) -> None:
        """The cycle lands first; the next commit is what it locks up.

        Children already at the head when the cycle arrives pass each other's dependency check, so the cycle
        alone proves nothing. Once it is in place, a new revision cannot be applied by either child, and
        kustomize-controller stops enqueuing every Kustomization of the source on revision changes.
        """
        cyclic = {"a": ["b"], "b": ["a"]}
        graph = DependencyGraph.from_objects([self.child(ctx, n, d) for n, d in cyclic.items()])
        ctx.prove("; ".join(format_cycle(c) for c in graph.cycles()) or None, "a dependsOn cycle")
        ctx.commit("Make a depend on b", write=self.files(ctx, cyclic, "v1"))
        ctx.reconcile(ctx.kustomization_ref())

        def cycle_applied() -> bool:
            ks = ctx.kube.get(KUSTOMIZATION.api_version, KUSTOMIZATION.kind, f"{ctx.app}-a", ctx.flux_namespace)
            return bool(ks and (ks.get("spec") or {}).get("dependsOn"))

        wait_until(cycle_applied, 60, "the parent to apply the cycle", interval=0.02)
        ctx.commit("Roll v2 through a and b", write=self.files(ctx, cyclic, "v2"))
        # What each child's own interval would do, now: both wait for each other from here on.
        for name in self.children:
            ctx.reconcile(ctx.kustomization_ref(f"{ctx.app}-{name}"))

    def after_proof(self, ctx: FaultContext) -> None:
        self.fix(ctx, self.files(ctx, self.initial(), FIXED), "Break the a <-> b cycle")


class DependencyChainBlocked(_Chain):
    name = "dependency-chain-blocked"
    summary = "the root of a 3-deep dependsOn chain breaks (build failure), then is fixed in Git"
    children = ("root", "mid", "leaf")

    def initial(self) -> dict[str, list[str]]:
        return {"root": [], "mid": ["root"], "leaf": ["mid"]}

    def target(self, ctx: FaultContext) -> ObjectRef:
        return ctx.kustomization_ref(f"{ctx.app}-mid")

    def inject(self, ctx: FaultContext) -> None:
        files = self.files(ctx, self.initial(), "v2", broken="root")
        ctx.state["proof"] = f"{ctx.path}/root/kustomization.yaml lists missing.yaml: kustomize cannot build it"
        ctx.commit("Roll v2 through the chain (root broken)", write=files)
        ctx.reconcile(ctx.kustomization_ref())

    def after_proof(self, ctx: FaultContext) -> None:
        self.fix(ctx, self.files(ctx, self.initial(), FIXED), "Fix the chain's root")


class HelmDependencyCycle(Fault):
    """HelmReleases a <-> b: both wait for each other once both specs change."""

    name = "dependency-cycle-helm"
    family = "dependency"
    summary = "HelmReleases A -> B -> A; fixed in Git later"
    signature = DEPENDENCY_NOT_READY
    fix_after: ClassVar[float] = 5.0

    def release(self, ctx: FaultContext, name: str, depends: list[str], replicas: int) -> dict[str, Any]:
        spec: dict[str, Any] = {}
        if depends:
            spec["dependsOn"] = [{"name": d} for d in depends]
        hr = apps.helm_release(
            name, ctx.namespace, ctx.flux_namespace, BASE_VERSION, {"replicaCount": replicas}, **spec
        )
        return ctx.decorate(hr)

    def files(self, ctx: FaultContext, graph: dict[str, list[str]], replicas: int) -> dict[str, str]:
        out = {f"{ctx.path}/{n}.yaml": apps.dump(self.release(ctx, n, d, replicas)) for n, d in graph.items()}
        out[f"{ctx.path}/kustomization.yaml"] = apps.dump(apps.kustomization_file([f"{n}.yaml" for n in graph]))
        return out

    def setup(self, ctx: FaultContext) -> None:
        publish(ctx, BASE_VERSION)
        standard_setup(ctx, self.files(ctx, {"a": [], "b": ["a"]}, 1), wait=False)

    def steady(self, ctx: FaultContext, revision: Revision) -> Check:
        return (
            kustomization_ready(ctx.flux_namespace, ctx.app, revision)
            & helmrelease_ready(ctx.namespace, "a")
            & helmrelease_ready(ctx.namespace, "b")
        )

    def serving(self, ctx: FaultContext) -> Check:
        return self._releases_at(ctx, FIXED_REPLICAS)

    def _releases_at(self, ctx: FaultContext, replicas: int) -> Check:
        """Both releases' Deployments available at `replicas` (the values of the commit that set them)."""

        def scaled(obj: dict[str, Any]) -> bool:
            return (obj.get("spec") or {}).get("replicas") == replicas

        def at(name: str) -> Check:
            return serves_spec(ctx.namespace, name, f"at {replicas} replicas", scaled)

        return at("a") & at("b")

    def reporting(self, ctx: FaultContext) -> Check:
        # Both releases must have acted on the fix, not merely still be Ready from before the cycle.
        def reconciled(reader: Any) -> tuple[bool, str]:
            for name in ("a", "b"):
                hr = reader.get(HELM_RELEASE.api_version, HELM_RELEASE.kind, name, ctx.namespace) or {}
                meta, status = hr.get("metadata") or {}, hr.get("status") or {}
                if meta.get("generation") != status.get("observedGeneration"):
                    return False, f"HelmRelease {name} has not reconciled its latest spec"
            return True, "both releases reconciled their latest spec"

        return self.steady(ctx, self.recovery_revision(ctx)) & Check("releases reconciled", reconciled)

    def next_commit(self, ctx: FaultContext) -> NextCommit:
        """A values change of both releases (their replicas), so helm-controller upgrades each again."""
        taken = self.steady(ctx, AtLeast(ctx.head, ctx.cluster.git.includes)) & self._releases_at(ctx, NEXT_REPLICAS)
        files = self.files(ctx, {"a": [], "b": ["a"]}, NEXT_REPLICAS)
        return NextCommit(f"Scale releases a and b to {NEXT_REPLICAS}", files, taken)

    def target(self, ctx: FaultContext) -> ObjectRef:
        return ObjectRef(HELM_RELEASE.kind, ctx.namespace, "b")

    def watched_refs(self, ctx: FaultContext) -> set[str]:
        return {f"HelmRelease/{ctx.namespace}/a", f"HelmRelease/{ctx.namespace}/b", str(ctx.kustomization_ref())}

    def inject(self, ctx: FaultContext) -> None:
        cyclic = {"a": ["b"], "b": ["a"]}
        graph = DependencyGraph.from_objects([self.release(ctx, n, d, 2) for n, d in cyclic.items()])
        ctx.prove("; ".join(format_cycle(c) for c in graph.cycles()) or None, "a dependsOn cycle")
        ctx.commit("Make a depend on b; scale both", write=self.files(ctx, cyclic, 2))
        ctx.reconcile(ctx.kustomization_ref())

    def after_proof(self, ctx: FaultContext) -> None:
        time.sleep(self.fix_after)
        ctx.commit("Break the a <-> b release cycle", write=self.files(ctx, {"a": [], "b": ["a"]}, FIXED_REPLICAS))
        ctx.reconcile()
