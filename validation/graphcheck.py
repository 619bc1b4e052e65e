"""Flux dependsOn checks over the tree: cycles and dependencies that do not exist stall reconciliation.

Both stall silently in a cluster (Flux reports "dependency not ready/not found" and retries forever), so
they are cheaper to catch here, with the impact named: everything that transitively waits. The stages of a
StagedKustomization are a graph too: a cycle, a dependsOn naming no stage, a stage whose Kustomization is not
in the tree, or one whose source the stage controller cannot hold apart (fluxmodel.staged.source_problem, the
controller's own rule) would hold every revision back (Ready=False), so they are reported here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from fluxmodel import staged
from fluxmodel.graph import DependencyGraph, format_cycle, is_reconciled
from fluxmodel.kinds import KUSTOMIZATION, ObjectRef, source_ref
from validation.findings import CYCLE, ERROR, MISSING_DEP, STAGED_MISSING, STAGED_PREFIX, Finding
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


def staged_findings(objects: Sequence[Rendered], display: Callable[[Path], str]) -> list[Finding]:
    """A finding per StagedKustomization problem (naming the stage), per stage whose Kustomization is not
    defined in the tree, and per stage whose Kustomization's source the controller cannot pin for it alone."""
    defined = {
        ObjectRef.of(r.obj, DEFAULT_NAMESPACE): r.obj
        for r in objects
        if is_reconciled(r.obj) and r.obj.get("kind") == KUSTOMIZATION.kind
    }
    findings: list[Finding] = []
    for r in objects:
        if not staged.is_staged(r.obj) or not (r.obj.get("metadata") or {}).get("name"):
            continue
        spec = staged.parse(r.obj, DEFAULT_NAMESPACE)

        def add(rule: str, message: str, r: Rendered = r) -> None:
            findings.append(
                Finding.about(
                    r.obj, file=display(r.file), rule=rule, severity=ERROR, field="spec.stages", message=message
                )
            )

        def refuse(problem: staged.Problem) -> None:
            add(STAGED_PREFIX + problem.code, f"{problem}; no revision would be promoted (Ready=False)")

        for problem in spec.problems:
            refuse(problem)
        readers: dict[ObjectRef, str] = {}  # each GitRepository a stage reads, and the stage
        for stage in spec.stages:
            ref = stage.kustomization
            if not ref.name:
                continue
            if ref not in defined:
                add(
                    STAGED_MISSING,
                    f"stage {stage.name}: Kustomization {ref.namespace}/{ref.name} is not defined in this tree: the "
                    "stage would stay Ready=False (KustomizationNotFound) and hold every revision. Fix: correct "
                    f"kustomizationRef (without namespace it means {spec.ref.namespace}) or add the Kustomization",
                )
                continue
            source = source_ref(defined[ref], DEFAULT_NAMESPACE)
            unpinnable = staged.source_problem(stage, source, readers)
            if unpinnable is None:
                readers[source] = stage.name
            else:
                refuse(unpinnable)
    return findings
