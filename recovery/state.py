"""The design's `reconciliation-state` ConfigMaps, one per Flux object: the memory that survives a restart.

Besides the design's keys (last-successful-revision, last-attempt-timestamp, failure-count, recovery-attempts,
health-status) it keeps what makes actions converge after a restart without acting twice: attempts per
action and target, the action in flight and its progress, the reconcile request being awaited, escalation,
and for sources the pin. Writes are merge patches of changed keys only; dry-run keeps state in memory.
An instance with --selector keeps its own set (names with its scope's hash, labelled with it), so operators
with different selectors never read or delete each other's state.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from ctlruntime.api import KubeApi
from ctlruntime.scope import EVERYTHING, SCOPE_LABEL, Scope
from ctlruntime.timeparse import parse_time
from fluxmodel.kinds import ObjectRef
from kubeapi import NotFound
from kubeapi.errors import Conflict
from recovery.health import format_time

PREFIX = "reconciliation-state"
MANAGED_BY = "gitops-resilience-operator"
STATE_LABEL = "gitops.flux.io/reconciliation-state"
OBJECT_ANNOTATION = "gitops.flux.io/object"
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@dataclass
class ObjectState:
    """What the operator remembers about one object (Kustomization, HelmRelease or pinned source)."""

    ref: ObjectRef
    last_successful_revision: str | None = None
    last_successful_timestamp: float | None = None
    last_successful_source_revision: str | None = None
    last_attempt_timestamp: float | None = None
    failure_count: int = 0
    recovery_attempts: int = 0
    health_status: str = "unknown"
    attempts: dict[str, int] = field(default_factory=dict)
    last_action_at: dict[str, float] = field(default_factory=dict)
    in_flight: dict[str, Any] | None = None
    awaiting: dict[str, Any] | None = None
    escalated: str | None = None
    detected: str | None = None
    pin: dict[str, Any] | None = None
    retried: dict[str, int] = field(default_factory=dict)  # a source's rejected revision -> times retried

    def reset_episode(self) -> None:
        """The object is healthy again: forget attempts, escalation and what was awaited."""
        self.failure_count = 0
        self.recovery_attempts = 0
        self.attempts = {}
        self.last_action_at = {}
        self.awaiting = None
        self.escalated = None
        self.detected = None

    def to_data(self) -> dict[str, str]:
        data = {
            "object": str(self.ref),
            "last-successful-revision": self.last_successful_revision or "",
            "last-successful-timestamp": _time(self.last_successful_timestamp),
            "last-successful-source-revision": self.last_successful_source_revision or "",
            "last-attempt-timestamp": _time(self.last_attempt_timestamp),
            "failure-count": str(self.failure_count),
            "recovery-attempts": str(self.recovery_attempts),
            "health-status": self.health_status,
            "attempts": json.dumps(self.attempts, sort_keys=True),
            "last-action-at": json.dumps(self.last_action_at, sort_keys=True),
            "in-flight": json.dumps(self.in_flight, sort_keys=True) if self.in_flight else "",
            "awaiting": json.dumps(self.awaiting, sort_keys=True) if self.awaiting else "",
            "escalated": self.escalated or "",
            "detected": self.detected or "",
            "pin": json.dumps(self.pin, sort_keys=True) if self.pin else "",
            "retried": json.dumps(self.retried, sort_keys=True) if self.retried else "",
        }
        return data

    @classmethod
    def from_data(cls, ref: ObjectRef, data: dict[str, str]) -> ObjectState:
        return cls(
            ref=ref,
            last_successful_revision=data.get("last-successful-revision") or None,
            last_successful_timestamp=parse_time(data.get("last-successful-timestamp")),
            last_successful_source_revision=data.get("last-successful-source-revision") or None,
            last_attempt_timestamp=parse_time(data.get("last-attempt-timestamp")),
            failure_count=_int(data.get("failure-count")),
            recovery_attempts=_int(data.get("recovery-attempts")),
            health_status=data.get("health-status") or "unknown",
            attempts={str(k): int(v) for k, v in _json(data.get("attempts"), {}).items()},
            last_action_at={str(k): float(v) for k, v in _json(data.get("last-action-at"), {}).items()},
            in_flight=_json(data.get("in-flight"), None),
            awaiting=_json(data.get("awaiting"), None),
            escalated=data.get("escalated") or None,
            detected=data.get("detected") or None,
            pin=_json(data.get("pin"), None),
            retried={str(k): int(v) for k, v in _json(data.get("retried"), {}).items()},
        )


def configmap_name(ref: ObjectRef, scope: Scope = EVERYTHING) -> str:
    """reconciliation-state[-<scope id>].<kind>.<namespace>.<name>, or a hashed name when that is not valid."""
    prefix = scope.name(PREFIX)
    name = f"{prefix}.{ref.kind.lower()}.{ref.namespace}.{ref.name}".lower()
    if len(name) <= 253 and _DNS_SUBDOMAIN.match(name):
        return name
    digest = hashlib.sha256(str(ref).encode()).hexdigest()[:20]
    return f"{prefix}.{ref.kind.lower()}.{digest}"


class StateStore:
    """ObjectStates cached in memory and written through to ConfigMaps in one namespace."""

    def __init__(self, kube: KubeApi | None, namespace: str, *, persist: bool = True, scope: Scope = EVERYTHING):
        self.kube = kube
        self.namespace = namespace
        self.scope = scope
        self.persist = persist and kube is not None
        self._lock = threading.Lock()
        self._states: dict[ObjectRef, ObjectState] = {}
        self._saved: dict[ObjectRef, dict[str, str]] = {}

    def load(self) -> int:
        """Read every state ConfigMap of the namespace; returns how many."""
        if self.kube is None:
            return 0
        mine = f"{SCOPE_LABEL}={self.scope.id}" if self.scope.id else f"!{SCOPE_LABEL}"
        items = self.kube.list("v1", "ConfigMap", self.namespace, label_selector=f"{STATE_LABEL}=true,{mine}")
        with self._lock:
            for cm in items:
                text = ((cm.get("metadata") or {}).get("annotations") or {}).get(OBJECT_ANNOTATION, "")
                try:
                    ref = ObjectRef.parse(text)
                except ValueError:
                    continue
                data = {str(k): str(v) for k, v in (cm.get("data") or {}).items()}
                self._states[ref] = ObjectState.from_data(ref, data)
                self._saved[ref] = data
        return len(items)

    def get(self, ref: ObjectRef) -> ObjectState:
        """A private copy of the state of `ref` (a fresh one if none is known); change it, then save()."""
        with self._lock:
            known = self._states.get(ref)
            return copy.deepcopy(known) if known is not None else ObjectState(ref)

    def known(self) -> list[ObjectRef]:
        with self._lock:
            return list(self._states)

    def save(self, state: ObjectState) -> bool:
        """Remember `state` and write the keys that changed; True when something was written."""
        data = state.to_data()
        with self._lock:
            self._states[state.ref] = copy.deepcopy(state)
            before = self._saved.get(state.ref)
            changed = {k: v for k, v in data.items() if before is None or before.get(k) != v}
            if not changed:
                return False
            self._saved[state.ref] = data
        if not self.persist or self.kube is None:
            return True
        name = configmap_name(state.ref, self.scope)
        try:
            self.kube.merge_patch("v1", "ConfigMap", name, self.namespace, {"data": changed})
        except NotFound:
            body = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": name,
                    "namespace": self.namespace,
                    "labels": {
                        STATE_LABEL: "true",
                        "app.kubernetes.io/managed-by": MANAGED_BY,
                        **({SCOPE_LABEL: self.scope.id} if self.scope.id else {}),
                    },
                    "annotations": {OBJECT_ANNOTATION: str(state.ref), **self.scope.annotations()},
                },
                "data": data,
            }
            try:
                self.kube.create(body)
            except Conflict:
                self.kube.merge_patch("v1", "ConfigMap", name, self.namespace, {"data": data})
        return True

    def forget(self, ref: ObjectRef) -> None:
        """The object is gone: drop its state (and its ConfigMap)."""
        with self._lock:
            self._states.pop(ref, None)
            self._saved.pop(ref, None)
        if self.persist and self.kube is not None:
            self.kube.delete("v1", "ConfigMap", configmap_name(ref, self.scope), self.namespace)


def _time(epoch: float | None) -> str:
    return format_time(epoch) if epoch is not None else ""


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


def _json(value: str | None, default: Any) -> Any:
    if not value:
        return default
    try:
        return json.loads(value)
    except ValueError:
        return default
