"""Dependency chain resolution: Flux's readiness rule, order and weights, impact, cycles, sources past a cycle."""

from __future__ import annotations

from typing import Any

from fluxmodel.graph import DependencyGraph
from fluxmodel.kinds import ObjectRef
from recovery.dependencies import (
    CycleReport,
    blocked,
    dependencies_ready,
    dependents_to_reconcile,
    flux_ready,
    kick_after_source_change,
)

REV = "main@sha1:" + "a" * 40
NEW = "main@sha1:" + "b" * 40
SOURCE = ObjectRef("GitRepository", "flux-system", "gitops")


def ks(
    name: str,
    ready: bool = True,
    deps: tuple[str, ...] = (),
    applied: str = REV,
    weight: int | None = None,
    generation: int = 1,
    observed: int = 1,
    attempted: str | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "flux-system", "generation": generation}
    if weight is not None:
        meta["annotations"] = {"gitops.flux.io/dependency-weight": str(weight)}
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": meta,
        "spec": {"sourceRef": {"kind": "GitRepository", "name": "gitops"}, "dependsOn": [{"name": d} for d in deps]},
        "status": {
            "observedGeneration": observed,
            "lastAppliedRevision": applied,
            "lastAttemptedRevision": attempted or applied,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False", "reason": "x", "message": "m"}],
        },
    }


def world(
    *objs: dict[str, Any], revision: str = REV
) -> tuple[DependencyGraph, dict[ObjectRef, Any], dict[ObjectRef, Any]]:
    objects = {ObjectRef.of(o): o for o in objs}
    sources = {SOURCE: {"status": {"artifact": {"revision": revision}}}}
    return DependencyGraph.from_objects(objs), objects, sources


def ref(name: str) -> ObjectRef:
    return ObjectRef("Kustomization", "flux-system", name)


def test_readiness_follows_flux_rule() -> None:
    _, _, sources = world()
    dependent = ks("app", deps=("infra",))
    assert flux_ready(ks("infra"), dependent, sources) == (True, "Ready")
    assert flux_ready(None, dependent, sources)[1] == "does not exist"
    assert "not Ready" in flux_ready(ks("infra", ready=False), dependent, sources)[1]
    assert "generation" in flux_ready(ks("infra", generation=2, observed=1), dependent, sources)[1]
    _, _, moved = world(revision=NEW)
    assert "its source is at" in flux_ready(ks("infra"), dependent, moved)[1]  # "revision is not up to date"


def test_dependents_go_in_order_of_depth_then_weight() -> None:
    graph, objects, sources = world(
        ks("root"),
        ks("heavy", ready=False, deps=("root",), weight=10),
        ks("light", ready=False, deps=("root",), weight=1),
        ks("deeper", ready=False, deps=("light",)),
    )
    assert dependents_to_reconcile(ref("root"), graph, objects, sources) == [ref("light"), ref("heavy")]
    assert not dependencies_ready(ref("deeper"), graph, objects, sources)[0]
    assert blocked(graph, {ref("root"), ref("light")}) == {ref("root"): 3, ref("light"): 1}


def test_cycles_name_every_member() -> None:
    graph, _, _ = world(ks("a", ready=False, deps=("b",)), ks("b", ready=False, deps=("a",)), ks("c", deps=("a",)))
    report = CycleReport.of(graph)
    assert set(report.members) == {ref("a"), ref("b")}
    assert (
        report.members[ref("a")]
        == "Kustomization/flux-system/a -> Kustomization/flux-system/b -> Kustomization/flux-system/a"
    )


def test_a_source_change_reaches_its_kustomizations_only_when_a_cycle_blocks_flux() -> None:
    acyclic = world(ks("parent"), ks("x", deps=("parent",)))
    assert kick_after_source_change(SOURCE, NEW, acyclic[0], CycleReport.of(acyclic[0]), acyclic[1]) == []
    graph, objects, _ = world(
        ks("parent"), ks("a", ready=False, deps=("b",)), ks("b", ready=False, deps=("a",)), ks("done", attempted=NEW)
    )
    kicked = kick_after_source_change(SOURCE, NEW, graph, CycleReport.of(graph), objects)
    assert kicked == [ref("parent"), ref("a"), ref("b")]  # not "done" (already at NEW); cycle members last
