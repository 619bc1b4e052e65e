"""fluxmodel.graph: dependsOn graphs of Kustomizations and HelmReleases; examples and properties."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fluxmodel.graph import CycleError, DependencyGraph, MissingDependency, depends_on, format_cycle
from fluxmodel.kinds import ObjectRef


def ks(name: str, *deps: str | dict[str, str], namespace: str = "flux-system") -> dict[str, Any]:
    entries = [d if isinstance(d, dict) else {"name": d} for d in deps]
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"dependsOn": entries},
    }


def K(name: str, namespace: str = "flux-system") -> ObjectRef:
    return ObjectRef("Kustomization", namespace, name)


def test_from_objects_reads_both_kinds_and_ignores_others() -> None:
    hr = {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": "web", "namespace": "apps"},
        "spec": {"dependsOn": [{"name": "db"}, {"name": "cache", "namespace": "infra"}]},
    }
    foreign = {"apiVersion": "example.com/v1", "kind": "Kustomization", "metadata": {"name": "x"}}
    other = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}}
    nameless = {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization", "metadata": {}}

    graph = DependencyGraph.from_objects([hr, ks("a", "b"), foreign, other, nameless])

    assert graph.nodes == {ObjectRef("HelmRelease", "apps", "web"), K("a")}
    assert graph.dependencies(ObjectRef("HelmRelease", "apps", "web")) == (
        ObjectRef("HelmRelease", "apps", "db"),
        ObjectRef("HelmRelease", "infra", "cache"),
    )


def test_depends_on_defaults_to_own_namespace() -> None:
    assert depends_on(ks("a", "b", {"name": "c", "namespace": "other"}, namespace="team")) == [
        K("b", "team"),
        K("c", "other"),
    ]


def test_cycles_are_closed_and_start_at_the_least_ref() -> None:
    graph = DependencyGraph.from_objects([ks("c", "a"), ks("a", "b"), ks("b", "c"), ks("self", "self"), ks("d", "a")])

    assert graph.cycles() == [[K("a"), K("b"), K("c"), K("a")], [K("self"), K("self")]]
    assert format_cycle(graph.cycles()[1]) == "Kustomization/flux-system/self -> Kustomization/flux-system/self"
    with pytest.raises(CycleError, match="Kustomization/flux-system/a -> Kustomization/flux-system/b"):
        graph.topological_order()


def test_missing_dependencies() -> None:
    graph = DependencyGraph.from_objects([ks("apps", "infra", "crds"), ks("crds")])
    assert graph.missing() == [MissingDependency(K("apps"), K("infra"))]


def test_topological_order_puts_dependencies_first_with_stable_ties() -> None:
    graph = DependencyGraph.from_objects([ks("web", "db", "cache"), ks("db", "crds"), ks("cache"), ks("crds")])
    assert graph.topological_order() == [K("cache"), K("crds"), K("db"), K("web")]


def test_dependents_of_is_transitive_impact() -> None:
    graph = DependencyGraph.from_objects([ks("web", "db"), ks("api", "db"), ks("db", "crds"), ks("edge", "web")])
    assert graph.dependents_of(K("crds")) == [K("api"), K("db"), K("edge"), K("web")]
    assert graph.dependents_of(K("web")) == [K("edge")]
    assert graph.dependents_of(K("edge")) == []


def test_deep_chain_does_not_hit_the_recursion_limit() -> None:
    n = 5000
    graph = DependencyGraph()
    for i in range(n):
        graph.add_node(K(f"n{i:05d}"))
        if i:
            graph.add_edge(K(f"n{i:05d}"), K(f"n{i - 1:05d}"))
    graph.add_edge(K("n00000"), K(f"n{n - 1:05d}"))
    [cycle] = graph.cycles()
    assert len(cycle) == n + 1


# --- properties -------------------------------------------------------------------------------------

NAMES = [f"k{i}" for i in range(8)]
edge_lists = st.lists(st.tuples(st.sampled_from(NAMES), st.sampled_from(NAMES)), max_size=30)


def _graph(edges: list[tuple[str, str]], nodes: list[str] = NAMES) -> DependencyGraph:
    graph = DependencyGraph()
    for n in nodes:
        graph.add_node(K(n))
    for a, b in edges:
        graph.add_edge(K(a), K(b))
    return graph


def _acyclic(edges: set[tuple[str, str]]) -> bool:
    """Reference check: repeatedly remove nodes with no outgoing edge."""
    remaining = {n for e in edges for n in e}
    live = set(edges)
    while True:
        sinks = {n for n in remaining if not any(a == n for a, _ in live)}
        if not sinks:
            return not remaining
        remaining -= sinks
        live = {(a, b) for a, b in live if b not in sinks}


def _reaches(edges: set[tuple[str, str]], start: str) -> set[str]:
    seen: set[str] = set()
    stack = [start]
    while stack:
        node = stack.pop()
        for a, b in edges:
            if b == node and a not in seen:
                seen.add(a)
                stack.append(a)
    return seen - {start}


@given(edge_lists)
def test_every_reported_cycle_is_a_real_cycle(edges: list[tuple[str, str]]) -> None:
    graph = _graph(edges)
    edge_set = {(K(a), K(b)) for a, b in edges}
    for cycle in graph.cycles():
        assert cycle[0] == cycle[-1]
        assert len(set(cycle[:-1])) == len(cycle) - 1, "a simple cycle visits each node once"
        assert all((a, b) in edge_set for a, b in itertools.pairwise(cycle))


@given(edge_lists)
def test_cycles_found_iff_graph_is_cyclic(edges: list[tuple[str, str]]) -> None:
    assert (not _graph(edges).cycles()) == _acyclic(set(edges))


@given(edge_lists)
def test_topological_order_respects_every_edge_or_raises(edges: list[tuple[str, str]]) -> None:
    graph = _graph(edges)
    if not _acyclic(set(edges)):
        with pytest.raises(CycleError):
            graph.topological_order()
        return
    order = graph.topological_order()
    assert sorted(order) == sorted(graph.nodes)
    position = {ref: i for i, ref in enumerate(order)}
    for dependent, dependency in edges:
        assert position[K(dependency)] < position[K(dependent)]


@given(st.lists(st.tuples(st.integers(0, 9), st.integers(0, 9)), max_size=30))
def test_dags_have_no_cycles_and_a_full_order(pairs: list[tuple[int, int]]) -> None:
    edges = [(f"k{max(a, b)}", f"k{min(a, b)}") for a, b in pairs if a != b]  # always to a lower index
    graph = _graph(edges, [f"k{i}" for i in range(10)])
    assert graph.cycles() == []
    assert len(graph.topological_order()) == 10


@given(edge_lists)
def test_depths_put_dependencies_deeper_than_nothing_and_share_a_cycle(edges: list[tuple[str, str]]) -> None:
    graph = _graph(edges)
    depth = graph.depths()
    assert set(depth) == graph.nodes
    for dependent, dependency in edges:
        a, b = K(dependent), K(dependency)
        mutual = a == b or (a in graph.dependents_of(b) and b in graph.dependents_of(a))
        assert depth[a] == depth[b] if mutual else depth[a] > depth[b], (a, b)


@given(edge_lists, st.sampled_from(NAMES))
def test_dependents_of_matches_reverse_reachability(edges: list[tuple[str, str]], start: str) -> None:
    expected = sorted(K(n) for n in _reaches(set(edges), start))
    assert _graph(edges).dependents_of(K(start)) == expected


@given(edge_lists, st.sets(st.sampled_from(NAMES)))
def test_missing_lists_exactly_the_undefined_targets(edges: list[tuple[str, str]], defined: set[str]) -> None:
    graph = _graph([(a, b) for a, b in edges if a in defined], sorted(defined))
    expected = sorted({MissingDependency(K(a), K(b)) for a, b in edges if a in defined and b not in defined})
    assert graph.missing() == expected
