"""The dependsOn graph of Flux Kustomizations and HelmReleases: cycles, missing dependencies, order, impact.

Flux holds back an object until everything in its spec.dependsOn is Ready, so a cycle or a dependency
that does not exist stalls that object and every dependent forever. validation/ reports those before
commit; the recovery operator uses the order (dependencies first) and the dependents (impact analysis).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from fluxmodel.kinds import RECONCILED_KINDS, ObjectRef

_RECONCILED = {k.kind: k.group for k in RECONCILED_KINDS}


@dataclass(frozen=True, order=True)
class MissingDependency:
    """`dependent` lists `dependency` in spec.dependsOn, but no such object is defined."""

    dependent: ObjectRef
    dependency: ObjectRef


class CycleError(ValueError):
    """The graph has dependsOn cycles, so it has no topological order."""

    def __init__(self, cycles: list[list[ObjectRef]]) -> None:
        self.cycles = cycles
        super().__init__("dependsOn cycle: " + "; ".join(format_cycle(c) for c in cycles))


def format_cycle(cycle: Iterable[ObjectRef]) -> str:
    """a -> b -> a."""
    return " -> ".join(str(r) for r in cycle)


def is_reconciled(obj: Mapping[str, Any]) -> bool:
    """Whether the object is a named Flux Kustomization or HelmRelease (any version of their API group)."""
    group = _RECONCILED.get(str(obj.get("kind", "")))
    named = bool((obj.get("metadata") or {}).get("name"))
    return named and group is not None and str(obj.get("apiVersion", "")).partition("/")[0] == group


def depends_on(obj: Mapping[str, Any], default_namespace: str = "default") -> list[ObjectRef]:
    """The refs in an object's spec.dependsOn; an entry without namespace means the object's own namespace."""
    ref = ObjectRef.of(dict(obj), default_namespace)
    out: list[ObjectRef] = []
    for entry in (obj.get("spec") or {}).get("dependsOn") or []:
        if isinstance(entry, Mapping) and entry.get("name"):
            kind = str(entry.get("kind") or ref.kind)
            out.append(ObjectRef(kind, str(entry.get("namespace") or ref.namespace), str(entry["name"])))
    return out


class DependencyGraph:
    """Nodes are defined objects; an edge dependent -> dependency per dependsOn entry."""

    def __init__(self) -> None:
        self._nodes: set[ObjectRef] = set()
        self._deps: dict[ObjectRef, list[ObjectRef]] = {}

    @classmethod
    def from_objects(cls, objects: Iterable[Mapping[str, Any]], default_namespace: str = "default") -> DependencyGraph:
        """The graph of every Kustomization and HelmRelease among `objects` (other kinds are ignored)."""
        graph = cls()
        for obj in objects:
            if not is_reconciled(obj):
                continue
            ref = ObjectRef.of(dict(obj), default_namespace)
            graph.add_node(ref)
            for dep in depends_on(obj, default_namespace):
                graph.add_edge(ref, dep)
        return graph

    def add_node(self, ref: ObjectRef) -> None:
        self._nodes.add(ref)
        self._deps.setdefault(ref, [])

    def add_edge(self, dependent: ObjectRef, dependency: ObjectRef) -> None:
        """Record that `dependent` waits for `dependency` (which need not be defined)."""
        deps = self._deps.setdefault(dependent, [])
        if dependency not in deps:
            deps.append(dependency)

    @property
    def nodes(self) -> frozenset[ObjectRef]:
        return frozenset(self._nodes)

    def dependencies(self, ref: ObjectRef) -> tuple[ObjectRef, ...]:
        return tuple(self._deps.get(ref, ()))

    def edges(self) -> list[tuple[ObjectRef, ObjectRef]]:
        return [(a, b) for a in sorted(self._deps) for b in self._deps[a]]

    def missing(self) -> list[MissingDependency]:
        """Every dependsOn entry that names an object not in the graph."""
        return sorted(
            MissingDependency(a, b)
            for a, deps in self._deps.items()
            if a in self._nodes
            for b in deps
            if b not in self._nodes
        )

    def cycles(self) -> list[list[ObjectRef]]:
        """One cycle per strongly connected component that has one, closed: [a, b, a], a its least ref."""
        out: list[list[ObjectRef]] = []
        for component in self._components():
            members = set(component)
            start = min(component)
            if len(component) == 1 and start not in self._deps.get(start, ()):
                continue
            out.append(self._cycle_through(start, members))
        return sorted(out)

    def topological_order(self) -> list[ObjectRef]:
        """Defined nodes with every dependency before its dependents (ties by ref); CycleError on cycles."""
        cycles = self.cycles()
        if cycles:
            raise CycleError(cycles)
        waiting = {n: sum(1 for d in self._deps.get(n, ()) if d in self._nodes) for n in self._nodes}
        users: dict[ObjectRef, list[ObjectRef]] = {}
        for node in self._nodes:
            for dep in self._deps.get(node, ()):
                users.setdefault(dep, []).append(node)
        ready = [n for n, count in waiting.items() if count == 0]
        heapq.heapify(ready)
        order: list[ObjectRef] = []
        while ready:
            node = heapq.heappop(ready)
            order.append(node)
            for user in users.get(node, ()):
                waiting[user] -= 1
                if waiting[user] == 0:
                    heapq.heappush(ready, user)
        return order

    def depths(self) -> dict[ObjectRef, int]:
        """Each node's depth (0: depends on nothing); a cycle's members share one, so they order by ref."""
        depth: dict[ObjectRef, int] = {}
        for component in self._components():  # Tarjan emits a component after every component it depends on
            members = set(component)
            outside = (depth.get(d, 0) for n in component for d in self._deps.get(n, ()) if d not in members)
            value = 1 + max(outside, default=-1)
            depth.update(dict.fromkeys(component, value))
        return {n: depth.get(n, 0) for n in self._nodes}

    def dependents_of(self, ref: ObjectRef) -> list[ObjectRef]:
        """Everything that transitively waits for `ref` (impact analysis), sorted, without `ref` itself."""
        users: dict[ObjectRef, list[ObjectRef]] = {}
        for node, deps in self._deps.items():
            for dep in deps:
                users.setdefault(dep, []).append(node)
        seen: set[ObjectRef] = set()
        stack = [ref]
        while stack:
            for user in users.get(stack.pop(), ()):
                if user not in seen:
                    seen.add(user)
                    stack.append(user)
        seen.discard(ref)
        return sorted(seen)

    def _components(self) -> list[list[ObjectRef]]:
        """Tarjan's strongly connected components, iterative so deep graphs cannot hit the recursion limit."""
        index: dict[ObjectRef, int] = {}
        low: dict[ObjectRef, int] = {}
        on_stack: set[ObjectRef] = set()
        stack: list[ObjectRef] = []
        result: list[list[ObjectRef]] = []
        for root in sorted(self._deps):
            if root in index:
                continue
            work: list[tuple[ObjectRef, int]] = [(root, 0)]
            while work:
                node, i = work.pop()
                if i == 0:
                    index[node] = low[node] = len(index)
                    stack.append(node)
                    on_stack.add(node)
                deps = self._deps.get(node, [])
                if i < len(deps):
                    work.append((node, i + 1))
                    dep = deps[i]
                    if dep not in index:
                        work.append((dep, 0))
                    elif dep in on_stack:
                        low[node] = min(low[node], index[dep])
                    continue
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component: list[ObjectRef] = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    result.append(component)
        return result

    def _cycle_through(self, start: ObjectRef, members: set[ObjectRef]) -> list[ObjectRef]:
        """A shortest cycle from `start` back to itself inside one strongly connected component."""
        previous: dict[ObjectRef, ObjectRef] = {}
        frontier = [start]
        while frontier:
            following: list[ObjectRef] = []
            for node in frontier:
                for dep in self._deps.get(node, ()):
                    if dep == start:
                        path = [start, node]
                        while path[-1] != start:
                            path.append(previous[path[-1]])
                        path.reverse()
                        return path if node != start else [start, start]
                    if dep in members and dep not in previous:
                        previous[dep] = node
                        following.append(dep)
            frontier = following
        raise AssertionError(f"{start} is in a strongly connected component but on no cycle")
