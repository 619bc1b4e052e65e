"""Immutable-field comparison of two renders: pairs objects and asks fluxmodel.immutable what is refused.

Objects are paired by API group, kind, namespace and name (the version may change: the server stores one
object whatever version it is written in), first within the same root, then across roots so an object
moved between roots is still compared. A refusal on an object Flux will force-recreate (force
annotation or label, or a Flux Kustomization with spec.force) is a warning: it will not stall, but it
costs downtime and, for StatefulSets and PVCs, possibly data.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Any

from fluxmodel.immutable import api_group, immutable_changes, is_forced
from fluxmodel.kinds import KUSTOMIZATION
from validation.findings import ERROR, WARNING, Finding
from validation.render import Rendered
from validation.tree import KUSTOMIZATION_FILES

Key = tuple[str, str, str, str]
Display = Callable[[Path], str]

_DATA_KINDS = {"StatefulSet", "PersistentVolumeClaim"}


def object_key(obj: dict[str, Any]) -> Key:
    """apiGroup, kind, namespace, name: the identity the API server keeps across apiVersion changes."""
    meta = obj.get("metadata") or {}
    return (
        api_group(str(obj.get("apiVersion", ""))),
        str(obj.get("kind", "")),
        str(meta.get("namespace") or ""),
        str(meta.get("name") or ""),
    )


def compare(
    base: Sequence[Rendered],
    new: Sequence[Rendered],
    *,
    base_unit: Callable[[Rendered], str],
    new_unit: Callable[[Rendered], str],
    display: Display,
    forced_units: AbstractSet[str] = frozenset(),
) -> list[Finding]:
    """Findings for every refused change from a `base` object to its `new` counterpart."""
    by_key: dict[Key, list[Rendered]] = {}
    for r in base:
        by_key.setdefault(object_key(r.obj), []).append(r)
    findings: set[Finding] = set()
    for r in new:
        candidates = by_key.get(object_key(r.obj))
        if not candidates:
            continue
        unit = new_unit(r)
        old = next((c for c in candidates if base_unit(c) == unit), candidates[0])
        forced = is_forced(r.obj) or unit in forced_units
        for change in immutable_changes(old.obj, r.obj):
            message = change.message
            if r.unit != r.file:
                message = f"built by {display(r.unit)}: {message}"
            if forced:
                loss = " and its data" if r.obj.get("kind") in _DATA_KINDS else ""
                message = f"Flux will delete and recreate the object{loss} (force is enabled). {message}"
            findings.add(
                Finding.about(
                    r.obj,
                    file=display(r.file),
                    rule=change.rule.id,
                    severity=WARNING if forced else ERROR,
                    field=change.field,
                    message=message,
                )
            )
    return sorted(findings)


def forced_units(flux_objects: Iterable[dict[str, Any]], top: Path, units: Iterable[Path]) -> set[Path]:
    """Units (roots or plain manifests) applied by a Flux Kustomization with spec.force: true.

    spec.path is taken relative to the repository top (a GitRepository source). A path holding a
    kustomization covers that root; a path without one covers everything below it, as Flux generates a
    kustomization there.
    """
    paths: list[Path] = []
    for obj in flux_objects:
        if obj.get("kind") != KUSTOMIZATION.kind or api_group(str(obj.get("apiVersion", ""))) != KUSTOMIZATION.group:
            continue
        spec = obj.get("spec") or {}
        if spec.get("force") is True:
            paths.append(Path(os.path.normpath(top / str(spec.get("path") or ".").lstrip("/"))))
    covered: set[Path] = set()
    for unit in units:
        for path in paths:
            has_kustomization = any((path / n).is_file() for n in KUSTOMIZATION_FILES)
            if unit == path or (not has_kustomization and path in unit.parents):
                covered.add(unit)
    return covered
