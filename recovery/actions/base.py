"""What every action gets and returns, and the one guarded delete every action must use.

Actions are resumable step machines: `run(ctx)` does the next step it can, keeps its progress in
`ctx.progress` (persisted in the object's reconciliation-state before and after each step), and returns
Requeue to be called again later or Done when finished. Each step first looks at the cluster, so running
a step twice (after a restart) does nothing twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ctlruntime.api import KubeApi
from ctlruntime.scope import EVERYTHING, Scope
from fluxmodel.annotations import owner, reconcile_request
from fluxmodel.inventory import find
from fluxmodel.kinds import FLUX_KINDS, ObjectRef
from kubeapi import Conflict, NotFound
from recovery.errors import PermanentError
from recovery.patterns import Match
from recovery.state import ObjectState

# Kinds no action may ever delete: user data and the namespaces holding it.
NEVER_DELETE = frozenset(
    {"Namespace", "PersistentVolumeClaim", "PersistentVolume", "Secret", "CustomResourceDefinition"}
)


@dataclass(frozen=True)
class Done:
    """Finished. `awaiting` says how to know Flux has reacted (token, generation or revision)."""

    summary: str
    awaiting: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Requeue:
    """Call again after `after` seconds (waiting for something the step started)."""

    after: float
    note: str


Outcome = Done | Requeue


@dataclass
class Context:
    """One run of one action on one Flux object."""

    kube: KubeApi
    obj: dict[str, Any]
    match: Match
    state: ObjectState
    progress: dict[str, Any]
    states: Callable[[ObjectRef], ObjectState]
    save_state: Callable[[ObjectState], object]
    now: Callable[[], float] = time.time
    flux: Callable[[ObjectRef], dict[str, Any] | None] | None = None
    scope: Scope = EVERYTHING  # what this instance may change beyond `obj` (a shared source's other users)

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef.of(self.obj)

    @property
    def api_version(self) -> str:
        return str(self.obj.get("apiVersion") or FLUX_KINDS[self.ref.kind].api_version)

    def note(self, key: str, default: Any = None) -> Any:
        return self.progress.get(key, default)


def request_reconcile(kube: KubeApi, obj: dict[str, Any], *, helm_force: bool = False) -> str:
    """Ask Flux to reconcile `obj` now; HelmReleases may also be forced and reset. Returns the token."""
    patch = reconcile_request(force=helm_force, reset=helm_force)
    token = str(patch["metadata"]["annotations"]["reconcile.fluxcd.io/requestedAt"])
    ref = ObjectRef.of(obj)
    kube.merge_patch(str(obj["apiVersion"]), ref.kind, ref.name, ref.namespace, patch)
    return token


def guarded_delete(
    kube: KubeApi, api_version: str, kind: str, name: str, namespace: str | None, *, propagation: str, uid: str | None
) -> bool:
    """Delete one object unless its kind holds user data; only the recorded incarnation (uid) is deleted."""
    if kind in NEVER_DELETE:
        raise PermanentError(f"refusing to delete {kind} {namespace}/{name}: {kind}s are never deleted by recovery")
    try:
        return kube.delete(api_version, kind, name, namespace, propagation=propagation, uid=uid)
    except Conflict:
        return False  # another incarnation (the one Flux re-created): already done
    except NotFound:
        return False


def managed_by(flux_obj: dict[str, Any], target: dict[str, Any]) -> bool:
    """`target` was applied by `flux_obj`: in its inventory, or carrying its origin labels."""
    ref = ObjectRef.of(target)
    if find(flux_obj, ref) is not None:
        return True
    origin = owner(target)
    flux_ref = ObjectRef.of(flux_obj)
    return origin == (flux_ref.kind, flux_ref.namespace, flux_ref.name)
