"""Flux API kinds the project touches, with their group, version and plural, and object references."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FluxKind:
    """One Flux custom resource kind at the API version the pinned controllers serve."""

    kind: str
    group: str
    version: str
    plural: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"


KUSTOMIZATION = FluxKind("Kustomization", "kustomize.toolkit.fluxcd.io", "v1", "kustomizations")
HELM_RELEASE = FluxKind("HelmRelease", "helm.toolkit.fluxcd.io", "v2", "helmreleases")
GIT_REPOSITORY = FluxKind("GitRepository", "source.toolkit.fluxcd.io", "v1", "gitrepositories")
HELM_REPOSITORY = FluxKind("HelmRepository", "source.toolkit.fluxcd.io", "v1", "helmrepositories")
HELM_CHART = FluxKind("HelmChart", "source.toolkit.fluxcd.io", "v1", "helmcharts")
# The design document's staged rollout of Kustomizations (this project's CRD, in the design's API group).
STAGED_KUSTOMIZATION = FluxKind("StagedKustomization", "flux.weave.works", "v1", "stagedkustomizations")

FLUX_KINDS: dict[str, FluxKind] = {
    k.kind: k for k in (KUSTOMIZATION, HELM_RELEASE, GIT_REPOSITORY, HELM_REPOSITORY, HELM_CHART, STAGED_KUSTOMIZATION)
}
# Kinds that take part in dependsOn graphs and that the recovery engine watches.
RECONCILED_KINDS: tuple[FluxKind, ...] = (KUSTOMIZATION, HELM_RELEASE)

FLUX_NAMESPACE = "flux-system"


def flux_kind(kind: str) -> FluxKind:
    """The FluxKind for a kind name; KeyError names the known kinds."""
    try:
        return FLUX_KINDS[kind]
    except KeyError:
        raise KeyError(f"unknown Flux kind {kind!r}; known: {', '.join(sorted(FLUX_KINDS))}") from None


@dataclass(frozen=True, order=True)
class ObjectRef:
    """kind/namespace/name of one object; the identity used in graphs, state keys and reports."""

    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"

    @property
    def key(self) -> str:
        """A label-safe key, e.g. for ConfigMap data keys: kind.namespace.name."""
        return f"{self.kind.lower()}.{self.namespace}.{self.name}"

    @classmethod
    def of(cls, obj: dict[str, Any], default_namespace: str = "default") -> ObjectRef:
        meta = obj.get("metadata") or {}
        return cls(str(obj.get("kind", "")), str(meta.get("namespace") or default_namespace), str(meta["name"]))

    @classmethod
    def parse(
        cls, text: str, default_kind: str = "Kustomization", default_namespace: str = FLUX_NAMESPACE
    ) -> ObjectRef:
        """Parse kind/ns/name, ns/name or name."""
        parts = text.split("/")
        if len(parts) == 3:
            return cls(parts[0], parts[1], parts[2])
        if len(parts) == 2:
            return cls(default_kind, parts[0], parts[1])
        if len(parts) == 1 and parts[0]:
            return cls(default_kind, default_namespace, parts[0])
        raise ValueError(f"bad object reference {text!r}: expected kind/namespace/name, namespace/name or name")


def source_ref(kustomization: dict[str, Any], default_namespace: str = "default") -> ObjectRef:
    """The source a Kustomization reads (its spec.sourceRef; namespace defaults to the Kustomization's own)."""
    own = (kustomization.get("metadata") or {}).get("namespace") or default_namespace
    src = (kustomization.get("spec") or {}).get("sourceRef") or {}
    return ObjectRef(str(src.get("kind") or ""), str(src.get("namespace") or own), str(src.get("name") or ""))
