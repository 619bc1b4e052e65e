"""Annotations Flux honours and the ones this project defines, with the design document's aliases."""

from __future__ import annotations

import datetime
from typing import Any

# Flux: reconcile now; and, for HelmReleases, force one release / reset failure counters. forceAt and
# resetAt only take effect when equal to the requestedAt value set with them.
REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"
FORCE_AT = "reconcile.fluxcd.io/forceAt"
RESET_AT = "reconcile.fluxcd.io/resetAt"
# kustomize-controller: delete and re-create this object on an immutable-field error.
KUSTOMIZE_FORCE = "kustomize.toolkit.fluxcd.io/force"
# Origin labels the controllers put on every object they apply: which Flux object owns it.
KUSTOMIZE_NAME_LABEL = "kustomize.toolkit.fluxcd.io/name"
KUSTOMIZE_NAMESPACE_LABEL = "kustomize.toolkit.fluxcd.io/namespace"
HELM_NAME_LABEL = "helm.toolkit.fluxcd.io/name"
HELM_NAMESPACE_LABEL = "helm.toolkit.fluxcd.io/namespace"

# The recovery operator's marks, read by the harness too: the component on its Events, the annotations on a
# GitRepository pinned to a commit (spec.ref.commit) and who pinned it (`Kind/namespace/name`), the annotation
# on an object recovery gave up on.
OPERATOR_COMPONENT = "gitops-resilience-operator"
PINNED_BY = "gitops.flux.io/pinned-by"
PINNED_FROM = "gitops.flux.io/pinned-from"
RECOVERY_ESCALATED = "gitops.flux.io/recovery-escalated"
# The stage controller (`resilience stage`): the component on its Events. It holds a stage back with the same
# pin (PINNED_BY names its StagedKustomization).
STAGES_COMPONENT = "gitops-resilience-stages"
# The recovery mode a chaos run's Flux objects are measured under; an operator scoped with
# `--selector resilience.gitops.io/recovery=operator` acts on those runs only.
RECOVERY_MODE_LABEL = "resilience.gitops.io/recovery"

# The design document's annotations, and the older names it also uses.
UPDATE_STRATEGY = "gitops.flux.io/update-strategy"
IMMUTABLE_FIELDS = "gitops.flux.io/immutable-fields"
DEPENDENCY_WEIGHT = "gitops.flux.io/dependency-weight"
RECOVERY_POLICY = "gitops.flux.io/recovery-policy"
ALIASES = {
    UPDATE_STRATEGY: ("flux.weave.works/update-strategy",),
    DEPENDENCY_WEIGHT: ("flux.weave.works/dependency-order",),
}


def now_token() -> str:
    """A fresh value for requestedAt/forceAt/resetAt (Flux compares them as opaque strings)."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def annotation(obj: dict[str, Any], key: str) -> str | None:
    """An annotation by its gitops.flux.io name, falling back to its design-document aliases."""
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    for name in (key, *ALIASES.get(key, ())):
        if name in annotations:
            return str(annotations[name])
    return None


def owner(obj: dict[str, Any]) -> tuple[str, str, str] | None:
    """(Flux kind, namespace, name) of the Kustomization or HelmRelease that applied `obj`, from its origin labels."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    for kind, name_label, ns_label in (
        ("HelmRelease", HELM_NAME_LABEL, HELM_NAMESPACE_LABEL),
        ("Kustomization", KUSTOMIZE_NAME_LABEL, KUSTOMIZE_NAMESPACE_LABEL),
    ):
        if labels.get(name_label) and labels.get(ns_label):
            return kind, str(labels[ns_label]), str(labels[name_label])
    return None


def reconcile_request(token: str | None = None, force: bool = False, reset: bool = False) -> dict[str, Any]:
    """A merge patch asking a Flux controller to reconcile now (optionally force/reset a HelmRelease)."""
    value = token or now_token()
    annotations = {REQUESTED_AT: value}
    if force:
        annotations[FORCE_AT] = value
    if reset:
        annotations[RESET_AT] = value
    return {"metadata": {"annotations": annotations}}
