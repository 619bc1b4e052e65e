"""Flux dependsOn checks over the tree: cycles and dependencies that do not exist stall reconciliation.

Both stall silently in a cluster (Flux reports "dependency not ready/not found" and retries forever), so
they are cheaper to catch here, with the impact named: everything that transitively waits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from fluxmodel.graph import DependencyGraph, format_cycle, is_reconciled
from fluxmodel.kinds import ObjectRef
from validation.findings import CYCLE, ERROR, MISSING_DEP, Finding
from validation.render import Rendered

DEFAULT_NAMESPACE = "default"


def graph_findings(objects: Sequence[Rendered], display: Callable[[Path], str]) -> list[Finding]:
    """A finding per dependsOn cycle (naming it) and per dependency not defined in the tree."""
    flux = [r for r in objects if is_reconciled(r.obj)]
    where: dict[ObjectRef, Rendered] = {}
    for r in flux:
        where.setdefault(ObjectRef.of(r.obj, DEFAULT_NAMESPACE), r)
    graph = DependencyGraph.from_objects((r.obj for r in flux), DEFAULT_NAMESPACE)
    findings: list[Finding] = []

    def add(ref: ObjectRef, rule: str, message: str) -> None:
        r = where[ref]
        findings.append(
            Finding.about(
                r.obj, file=display(r.file), rule=rule, severity=ERROR, field="spec.dependsOn", message=message
            )
        )

    for cycle in graph.cycles():
        add(
            cycle[0],
            CYCLE,
            f"dependsOn cycle {format_cycle(cycle)}: each waits for the next to be Ready, so Flux reconciles "
            "none of them. Fix: remove one dependsOn entry of the cycle",
        )
    for missing in graph.missing():
        stalled = graph.dependents_of(missing.dependent)
        also = f" and the {len(stalled)} object(s) depending on it" if stalled else ""
        add(
            missing.dependent,
            MISSING_DEP,
            f"depends on {missing.dependency}, which is not defined in this tree: Flux holds "
            f"{missing.dependent}{also} with 'dependency not found'. Fix: correct the name or namespace (an "
            f"entry without namespace means {missing.dependent.namespace}), add the object, or remove the entry",
        )
    return findings
