"""Flux's own recovery knobs as `flux-native` sets them on a run's objects (the mode's one definition, which the
baseline store's key reads too)."""

from __future__ import annotations

from typing import Any

from fluxmodel.kinds import HELM_RELEASE, KUSTOMIZATION

MODE = "flux-native"
# HelmRelease install and upgrade: retry instead of remediating, every 30 s.
RETRY = {"name": "RetryOnFailure", "retryInterval": "30s"}


def decorate(obj: dict[str, Any]) -> dict[str, Any]:
    """Kustomization force (re-create on immutable errors), HelmRelease RetryOnFailure."""
    if obj.get("kind") == KUSTOMIZATION.kind:
        obj.setdefault("spec", {})["force"] = True
    elif obj.get("kind") == HELM_RELEASE.kind:
        spec = obj.setdefault("spec", {})
        spec.setdefault("install", {})["strategy"] = dict(RETRY)
        spec.setdefault("upgrade", {})["strategy"] = dict(RETRY)
    return obj
