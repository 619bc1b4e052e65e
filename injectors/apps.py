"""Manifests of the small workloads faults are injected into, as plain dicts and YAML.

One builder per kind keeps the scenario modules about the fault, not about YAML.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

POD_BEHAVIOR = "resilience.gitops.io/pod-behavior"
READY_DELAY = "pod-ready.stage.kwok.x-k8s.io/delay"
# Releases of the app: the good one a fault's commit rolls out, the one whose pods never become Ready (with
# POD_BEHAVIOR never-ready), and the good one a team rolls forward to after it.
NEW_IMAGE = "registry.local/app:2.0.0"
NEVER_READY_IMAGE = "registry.local/app:2.0.0-rc1"
FIXED_IMAGE = "registry.local/app:2.0.1"


def dump(*docs: dict[str, Any]) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False)


def meta(name: str, namespace: str | None = None, **labels: str) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name}
    if namespace:
        out["namespace"] = namespace
    if labels:
        out["labels"] = dict(labels)
    return out


def deployment(
    name: str,
    namespace: str,
    labels: dict[str, str] | None = None,
    replicas: int = 2,
    image: str = "registry.local/app:1.0.0",
    behavior: str | None = None,
) -> dict[str, Any]:
    """A Deployment whose selector and template labels are `labels` (default app=NAME)."""
    labels = labels or {"app": name}
    template_meta: dict[str, Any] = {"labels": dict(labels)}
    if behavior:
        template_meta["annotations"] = {POD_BEHAVIOR: behavior}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta(name, namespace),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(labels)},
            "template": {"metadata": template_meta, "spec": {"containers": [{"name": "app", "image": image}]}},
        },
    }


def pod_template(obj: dict[str, Any]) -> dict[str, Any]:
    """A workload's pod template (empty when it has none)."""
    return dict((obj.get("spec") or {}).get("template") or {})


def images(obj: dict[str, Any]) -> list[str]:
    """The images of a workload's containers, in order."""
    return [str(c.get("image")) for c in (pod_template(obj).get("spec") or {}).get("containers") or []]


def match_labels(obj: dict[str, Any]) -> dict[str, str]:
    """A workload's spec.selector.matchLabels."""
    return dict(((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {})


def service(name: str, namespace: str, cluster_ip: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]}
    if cluster_ip:
        spec["clusterIP"] = cluster_ip
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta(name, namespace), "spec": spec}


def job(name: str, namespace: str, image: str = "registry.local/migrate:1") -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta(name, namespace),
        "spec": {
            "backoffLimit": 1,
            "template": {
                "metadata": {"labels": {"job": name}},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "migrate", "image": image}]},
            },
        },
    }


def statefulset(name: str, namespace: str, storage: str = "1Gi", replicas: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": meta(name, namespace),
        "spec": {
            "serviceName": name,
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {
                            "name": "db",
                            "image": "registry.local/db:1",
                            "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                        }
                    ]
                },
            },
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "storageClassName": "manual",
                        "resources": {"requests": {"storage": storage}},
                    },
                }
            ],
        },
    }


def persistent_volume(name: str, storage: str = "5Gi") -> dict[str, Any]:
    """A static hostPath volume: a claim of class `manual` binds to it, so simulated pods can schedule."""
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": meta(name),
        "spec": {
            "capacity": {"storage": storage},
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": "manual",
            "persistentVolumeReclaimPolicy": "Retain",
            "hostPath": {"path": f"/tmp/gitops-resilience/{name}"},
        },
    }


def kustomization_file(resources: list[str], **extra: Any) -> dict[str, Any]:
    return {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": resources, **extra}


def user_data(namespace: str) -> list[dict[str, Any]]:
    """Out-of-band user data (not in Git) that every recovery action must leave untouched."""
    return [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": meta("user-credentials", namespace),
            "stringData": {"password": "s3cr3t-from-a-vault"},
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": meta("user-settings", namespace),
            "data": {"feature-flags": "checkout=on"},
        },
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": meta("user-uploads", namespace),
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": "unprovisioned",
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
    ]


def helm_release(
    name: str,
    namespace: str,
    flux_namespace: str,
    version: str,
    values: dict[str, Any] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "interval": "5m",
        "timeout": "15s",
        "chart": {
            "spec": {
                "chart": "demo-app",
                "version": version,
                "sourceRef": {"kind": "HelmRepository", "name": "local-charts", "namespace": flux_namespace},
            }
        },
        "values": copy.deepcopy(values) if values else {},
    }
    # A copy: callers pass class-level specs, and a recovery mode's decorate() edits the object it is given (a
    # shared `upgrade` mapping carried flux-native's RetryOnFailure into a later run under the operator).
    body.update(copy.deepcopy(spec))
    return {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": meta(name, namespace),
        "spec": body,
    }
