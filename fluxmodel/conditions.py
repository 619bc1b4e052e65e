"""Reading status from objects: Flux conditions and revisions, workload availability.

Every `is it ready?` question in the project goes through here, so the harness, the recovery operator and
the cluster bootstrap agree on what Ready means.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Condition:
    type: str
    status: str
    reason: str
    message: str
    last_transition_time: str | None
    observed_generation: int | None = None

    @property
    def true(self) -> bool:
        return self.status == "True"


def conditions(obj: dict[str, Any]) -> dict[str, Condition]:
    """The status conditions of an object by type (camelCase or snake_case keys both accepted)."""
    out: dict[str, Condition] = {}
    for c in (obj.get("status") or {}).get("conditions") or []:
        out[str(c.get("type"))] = Condition(
            type=str(c.get("type")),
            status=str(c.get("status")),
            reason=str(c.get("reason") or ""),
            message=str(c.get("message") or ""),
            last_transition_time=c.get("lastTransitionTime") or c.get("last_transition_time"),
            observed_generation=c.get("observedGeneration"),
        )
    return out


def condition(obj: dict[str, Any], kind: str = "Ready") -> Condition | None:
    return conditions(obj).get(kind)


def observed_current(obj: dict[str, Any]) -> bool:
    """The controller has seen the latest spec (status.observedGeneration == metadata.generation)."""
    generation = (obj.get("metadata") or {}).get("generation")
    observed = (obj.get("status") or {}).get("observedGeneration")
    return generation is None or observed == generation


def is_ready(obj: dict[str, Any]) -> bool:
    """Ready=True for the current generation."""
    ready = condition(obj, "Ready")
    return ready is not None and ready.true and observed_current(obj)


def is_stalled(obj: dict[str, Any]) -> bool:
    stalled = condition(obj, "Stalled")
    return stalled is not None and stalled.true


def last_applied_revision(obj: dict[str, Any]) -> str | None:
    """Kustomization: status.lastAppliedRevision; HelmRelease: the chart version of the deployed release.

    helm-controller puts a failed upgrade first in status.history (status "failed") while the previous release
    stays "deployed", so the latest snapshot is not what runs.
    """
    status = obj.get("status") or {}
    if obj.get("kind") == "HelmRelease":
        for snapshot in status.get("history") or []:
            if snapshot.get("status") == "deployed":
                return str(snapshot.get("chartVersion") or "") or None
        return None
    value = status.get("lastAppliedRevision")
    return str(value) if value else None


def last_attempted_revision(obj: dict[str, Any]) -> str | None:
    status = obj.get("status") or {}
    value = status.get("lastAttemptedRevision")
    return str(value) if value else None


_COMMIT = re.compile(r"(?:^|@|sha1:|/)([0-9a-f]{40})$")


def revision_commit(revision: str | None) -> str | None:
    """The Git commit SHA in a source revision (`main@sha1:<sha>`, `sha1:<sha>`, or the older `main/<sha>`)."""
    match = _COMMIT.search(revision or "")
    return match.group(1) if match else None


def artifact_revision(obj: dict[str, Any]) -> str | None:
    """A source's current artifact revision (GitRepository, HelmChart, ...)."""
    artifact = (obj.get("status") or {}).get("artifact") or {}
    value = artifact.get("revision")
    return str(value) if value else None


def deployment_available(obj: dict[str, Any] | None) -> bool:
    """Available=True, all replicas updated and ready, and the controller saw the latest spec."""
    if not obj:
        return False
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    wanted = int(spec.get("replicas", 1))
    available = condition(obj, "Available")
    return (
        observed_current(obj)
        and available is not None
        and available.true
        and int(status.get("updatedReplicas") or 0) == wanted
        and int(status.get("readyReplicas") or 0) == wanted
        and int(status.get("replicas") or 0) == wanted
    )


WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Pod")


def workload_ready(obj: dict[str, Any] | None) -> bool:
    """A Deployment, StatefulSet or DaemonSet whose current spec runs with every replica ready, or a Ready Pod."""
    if not obj:
        return False
    kind, spec, status = obj.get("kind"), obj.get("spec") or {}, obj.get("status") or {}
    if kind == "Deployment":
        return deployment_available(obj)
    if kind == "StatefulSet":
        wanted = int(spec.get("replicas", 1))
        same = status.get("updateRevision") in (None, status.get("currentRevision"))
        counts = (status.get("readyReplicas"), status.get("updatedReplicas") or status.get("currentReplicas"))
        return observed_current(obj) and same and all(int(c or 0) == wanted for c in counts)
    if kind == "DaemonSet":
        wanted = int(status.get("desiredNumberScheduled") or 0)
        counts = (status.get("numberReady"), status.get("updatedNumberScheduled"))
        return observed_current(obj) and all(int(c or 0) == wanted for c in counts)
    if kind == "Pod":
        ready = condition(obj, "Ready")
        return ready is not None and ready.true
    return True
