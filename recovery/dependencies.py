"""Dependency chain resolution over the live dependsOn graph (fluxmodel.graph): readiness, order, impact, cycles.

Flux re-checks an object blocked by dependsOn every --requeue-dependency, and reports a cycle nowhere (the
kustomize-controller only logs it, and then enqueues no Kustomization of that source on a new revision).
Here: readiness by Flux's own rule, which blocked dependents may go now (dependencies first), how many
objects a failure holds back, and which Kustomizations a source change must reach despite a cycle.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fluxmodel.conditions import artifact_revision, condition, observed_current
from fluxmodel.graph import DependencyGraph, format_cycle
from fluxmodel.kinds import KUSTOMIZATION, ObjectRef
from recovery.lifecycle import weight

Objects = Mapping[ObjectRef, dict[str, Any]]


def source_ref(obj: dict[str, Any]) -> ObjectRef | None:
    """A Kustomization's spec.sourceRef (namespace defaults to its own); None for other kinds."""
    if obj.get("kind") != KUSTOMIZATION.kind:
        return None
    ref = ObjectRef.of(obj)
    src = (obj.get("spec") or {}).get("sourceRef") or {}
    if not src.get("name"):
        return None
    return ObjectRef(
        str(src.get("kind") or "GitRepository"), str(src.get("namespace") or ref.namespace), str(src["name"])
    )


def flux_ready(dependency: dict[str, Any] | None, dependent: dict[str, Any], sources: Objects) -> tuple[bool, str]:
    """Whether Flux itself would let `dependent` past `dependency` now (kustomize-controller checkDependencies)."""
    if dependency is None:
        return False, "does not exist"
    ready = condition(dependency, "Ready")
    if ready is None or not observed_current(dependency):
        return False, "not reconciled at its current generation"
    if not ready.true:
        return False, f"not Ready ({ready.reason})"
    dep_source, own_source = source_ref(dependency), source_ref(dependent)
    if dep_source is not None and dep_source == own_source:
        revision = artifact_revision(sources.get(dep_source) or {})
        applied = (dependency.get("status") or {}).get("lastAppliedRevision")
        if revision and applied != revision:
            return False, f"at {applied}, its source is at {revision}"
    return True, "Ready"


def dependencies_ready(ref: ObjectRef, graph: DependencyGraph, objects: Objects, sources: Objects) -> tuple[bool, str]:
    """(all dependencies Ready by Flux's rule, the first one that is not and why)."""
    obj = objects.get(ref)
    if obj is None:
        return False, "unknown object"
    for dep in graph.dependencies(ref):
        ok, why = flux_ready(objects.get(dep), obj, sources)
        if not ok:
            return False, f"{dep}: {why}"
    return True, "all dependencies Ready"


def order_key(graph: DependencyGraph, objects: Objects) -> dict[ObjectRef, tuple[int, int, ObjectRef]]:
    """Sort keys: depth in the graph (dependencies first), then dependency weight, then ref."""
    depth = graph.depths()
    return {ref: (depth[ref], weight(objects.get(ref)), ref) for ref in graph.nodes}


def dependents_to_reconcile(
    ready: ObjectRef, graph: DependencyGraph, objects: Objects, sources: Objects
) -> list[ObjectRef]:
    """Direct dependents of `ready` that are not Ready and whose dependencies all are: reconcile them now."""
    out = []
    for dependent in graph.dependents_of(ready):
        if ready not in graph.dependencies(dependent):
            continue
        obj = objects.get(dependent)
        ready_cond = condition(obj or {}, "Ready")
        if obj is None or (ready_cond is not None and ready_cond.true and observed_current(obj)):
            continue
        if dependencies_ready(dependent, graph, objects, sources)[0]:
            out.append(dependent)
    keys = order_key(graph, objects)
    return sorted(out, key=lambda r: keys.get(r, (0, 0, r)))


@dataclass(frozen=True)
class CycleReport:
    """Each object on a cycle, and the cycle as text (a -> b -> a)."""

    members: dict[ObjectRef, str]

    @classmethod
    def of(cls, graph: DependencyGraph) -> CycleReport:
        members: dict[ObjectRef, str] = {}
        for cycle in graph.cycles():
            text = format_cycle(cycle)
            for ref in cycle:
                members.setdefault(ref, text)
        return cls(members)


def blocked(graph: DependencyGraph, failing: set[ObjectRef]) -> dict[ObjectRef, int]:
    """Impact analysis: for each failing object, how many objects transitively wait for it."""
    return {ref: len(graph.dependents_of(ref)) for ref in sorted(failing) if graph.dependents_of(ref)}


def kick_after_source_change(
    source: ObjectRef, revision: str, graph: DependencyGraph, cycles: CycleReport, objects: Objects
) -> list[ObjectRef]:
    """Kustomizations of `source` not yet at `revision`, when a cycle among them stops Flux from enqueuing any."""
    of_source = [r for r, obj in objects.items() if source_ref(obj) == source]
    if not any(r in cycles.members for r in of_source):
        return []
    behind = [r for r in of_source if (objects[r].get("status") or {}).get("lastAttemptedRevision") != revision]
    keys = order_key(graph, objects)
    return sorted(behind, key=lambda r: (r in cycles.members, keys.get(r, (0, 0, r))))
