"""User data must survive every recovery action: PVCs, Secrets and ConfigMaps keep their identity and data.

A snapshot before injection is compared with the state after recovery; a recreated PVC (new UID) is lost
data even if it has the same name, so identity counts, not just presence. ConfigMaps and Secrets that Flux or
Helm apply from Git are the desired state, which a fault may change on purpose: only the others (data that
lives nowhere else) are compared. PVCs are compared whoever made them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kubeapi import Kube

DATA_KINDS: tuple[str, ...] = ("PersistentVolumeClaim", "Secret", "ConfigMap")
# Managed by Kubernetes itself, re-created at will.
_IGNORED = {("ConfigMap", "kube-root-ca.crt")}
# Controllers' own state, rewritten on every release or token rotation: not user data.
_IGNORED_SECRET_TYPES = {"helm.sh/release.v1", "kubernetes.io/service-account-token"}
# Labels that say an object is applied from Git (by kustomize-controller, or by Helm for helm-controller).
_FROM_GIT = ("kustomize.toolkit.fluxcd.io/name", "helm.toolkit.fluxcd.io/name")


def _from_git(obj: dict[str, Any]) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return any(key in labels for key in _FROM_GIT) or labels.get("app.kubernetes.io/managed-by") == "Helm"


@dataclass(frozen=True)
class DataRecord:
    uid: str
    digest: str


def _digest(obj: dict[str, Any]) -> str:
    if obj.get("kind") == "PersistentVolumeClaim":
        payload: Any = {"volumeName": (obj.get("spec") or {}).get("volumeName")}
    else:
        payload = {"data": obj.get("data"), "binaryData": obj.get("binaryData"), "stringData": obj.get("stringData")}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def snapshot(kube: Kube, namespaces: Iterable[str]) -> dict[str, DataRecord]:
    """`Kind/namespace/name` -> identity and data digest of every data object in the namespaces."""
    out: dict[str, DataRecord] = {}
    for namespace in namespaces:
        for kind in DATA_KINDS:
            for obj in kube.list("v1", kind, namespace):
                name = str(obj["metadata"]["name"])
                if (kind, name) in _IGNORED or obj.get("type") in _IGNORED_SECRET_TYPES:
                    continue
                if kind != "PersistentVolumeClaim" and _from_git(obj):
                    continue
                out[f"{kind}/{namespace}/{name}"] = DataRecord(str(obj["metadata"].get("uid")), _digest(obj))
    return out


def violations(before: dict[str, DataRecord], after: dict[str, DataRecord]) -> list[str]:
    """What changed between two snapshots: deleted, re-created (new UID) or rewritten data objects."""
    problems = []
    for ref, record in sorted(before.items()):
        now = after.get(ref)
        if now is None:
            problems.append(f"{ref} was deleted")
        elif now.uid != record.uid:
            problems.append(f"{ref} was re-created (its data is a new object)")
        elif now.digest != record.digest:
            problems.append(f"{ref} data changed")
    return problems
