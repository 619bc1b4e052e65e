"""Resource lifecycle: which update strategy replaces an object the API server refuses to change in place.

The design's annotations (gitops.flux.io/*, with flux.weave.works/* aliases) on the live object decide:
blue-green keeps the old pods serving from a temporary copy until the new Deployment is Available; recreate
deletes and lets Flux create the object again (StatefulSets always with orphan propagation, so pods and
PVCs survive); rolling means "in place only", so an immutable change is escalated. Several objects are
replaced in order of dependency weight (lower first).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from fluxmodel.annotations import DEPENDENCY_WEIGHT, IMMUTABLE_FIELDS, UPDATE_STRATEGY, annotation
from fluxmodel.immutable import rule_for_error

BLUE_GREEN = "blue-green"
RECREATE = "recreate"
ROLLING = "rolling"
ORPHAN = "orphan"  # recreate without cascading: dependents (pods, PVC owner refs) stay
STRATEGIES = (BLUE_GREEN, RECREATE, ROLLING)
COPY_LABEL = "gitops.flux.io/blue-green-copy-of"
DEFAULT_API_VERSIONS = {
    "Deployment": "apps/v1",
    "StatefulSet": "apps/v1",
    "DaemonSet": "apps/v1",
    "ReplicaSet": "apps/v1",
    "Service": "v1",
    "ConfigMap": "v1",
    "Job": "batch/v1",
    "CronJob": "batch/v1",
    "PodDisruptionBudget": "policy/v1",
    "Ingress": "networking.k8s.io/v1",
}


class StrategyRefused(ValueError):
    """The object's annotations forbid replacing it (rolling, or the field is not declared replaceable)."""


@dataclass(frozen=True)
class Plan:
    """How one object is replaced: strategy, delete propagation, and why."""

    strategy: str
    propagation: str
    why: str


def strategy_for(obj: dict[str, Any], default: str) -> Plan:
    """The replacement plan for a live object; StrategyRefused when its annotations say no."""
    kind = str(obj.get("kind", ""))
    declared = (annotation(obj, UPDATE_STRATEGY) or "").strip().lower()
    if declared and declared not in STRATEGIES:
        raise StrategyRefused(f"{UPDATE_STRATEGY}: {declared!r} is not one of {', '.join(STRATEGIES)}")
    if declared == ROLLING:
        raise StrategyRefused(
            f"{UPDATE_STRATEGY}: rolling asks for in-place updates only, and this change needs a new object"
        )
    if kind == "StatefulSet":
        why = "StatefulSets are re-created with orphan propagation so pods and PVCs survive"
        return Plan(ORPHAN, "Orphan", why if not declared else f"{why} (annotation {declared!r} noted)")
    chosen = declared or default
    if chosen == BLUE_GREEN and kind != "Deployment":
        return Plan(RECREATE, "Background", f"blue-green needs a Deployment; {kind} is re-created")
    source = "annotation" if declared else "default"
    return Plan(chosen, "Background", f"{chosen} ({source})")


def check_declared_fields(obj: dict[str, Any], message: str) -> None:
    """If the object lists gitops.flux.io/immutable-fields, the refused field must be one of them."""
    declared = annotation(obj, IMMUTABLE_FIELDS)
    if not declared:
        return
    allowed = {f.strip() for f in declared.split(",") if f.strip()}
    rule = rule_for_error(str(obj.get("kind", "")), message, str(obj.get("apiVersion", "")))
    fields = set(rule.fields) if rule else set()
    if fields and not fields & allowed:
        raise StrategyRefused(
            f"the refused field ({', '.join(sorted(fields))}) is not in {IMMUTABLE_FIELDS} ({declared}): "
            "the owner did not declare it replaceable"
        )


def weight(obj: dict[str, Any] | None) -> int:
    """The object's dependency weight (gitops.flux.io/dependency-weight or flux.weave.works/dependency-order)."""
    if not obj:
        return 0
    try:
        return int(annotation(obj, DEPENDENCY_WEIGHT) or 0)
    except ValueError:
        return 0


def replacement_order(objects: Iterable[tuple[str, dict[str, Any] | None]]) -> list[str]:
    """Keys of (key, live object) pairs, lower dependency weight first, then by key."""
    return [key for key, _ in sorted(objects, key=lambda pair: (weight(pair[1]), pair[0]))]


def copy_name(name: str, uid: str) -> str:
    """The blue-green copy's name: deterministic per original incarnation, so a restart finds it."""
    suffix = hashlib.sha256(uid.encode()).hexdigest()[:6]
    return f"{name[:240]}-bg-{suffix}"


def blue_green_copy(original: dict[str, Any], name: str) -> dict[str, Any]:
    """A Deployment running the original's pod template under its own selector label (no Flux labels)."""
    meta = original.get("metadata") or {}
    spec = original.get("spec") or {}
    template = dict(spec.get("template") or {})
    tmeta = dict(template.get("metadata") or {})
    tmeta["labels"] = {**(tmeta.get("labels") or {}), COPY_LABEL: meta.get("name", "")}
    template["metadata"] = tmeta
    match_labels = {**((spec.get("selector") or {}).get("matchLabels") or {}), COPY_LABEL: meta.get("name", "")}
    labels = {
        k: v for k, v in (meta.get("labels") or {}).items() if not k.startswith(("kustomize.toolkit", "helm.toolkit"))
    }
    copy_spec: dict[str, Any] = {
        "replicas": spec.get("replicas", 1),
        "selector": {"matchLabels": match_labels},
        "template": template,
    }
    for key in ("minReadySeconds", "strategy"):
        if key in spec:
            copy_spec[key] = spec[key]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": meta.get("namespace"),
            "labels": {**labels, COPY_LABEL: meta.get("name", "")},
            "annotations": {COPY_LABEL: f"{meta.get('name')} uid={meta.get('uid')}"},
        },
        "spec": copy_spec,
    }
