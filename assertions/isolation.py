"""Each run is measured under its own recovery mode alone: notice any other recovery acting on its objects.

A run under `none` that the operator repaired, or a run under the operator whose Kustomization carries Flux's
`force` knob, measures something else than it claims. The harness scopes the recoveries so this cannot happen
(see scenarios.recoveries); this detector is the proof that it did not, and makes the run invalid if it did.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from assertions.schema import Reconcilers
from fluxmodel import tuned
from fluxmodel.annotations import OPERATOR_COMPONENT, PINNED_BY, STAGES_COMPONENT
from fluxmodel.kinds import GIT_REPOSITORY, HELM_RELEASE, KUSTOMIZATION

OPERATOR = "operator"
FLUX_NATIVE = "flux-native"
FLUX_TUNED = tuned.MODE
STAGED = "staged"
# Modes whose runs nothing of this project may touch.
FLUX_ONLY = ("none", FLUX_NATIVE, FLUX_TUNED)
RETRY_ON_FAILURE = "RetryOnFailure"
Owns = Callable[[str, str | None, str | None], bool]


def owned_by_run(app: str, namespace: str) -> Owns:
    """Whether (kind, namespace, name) belongs to a run: its namespace, or a Flux object named after its app."""

    def owns(kind: str, obj_namespace: str | None, name: str | None) -> bool:
        return obj_namespace == namespace or str(name or "").startswith(app)

    return owns


def _ref(kind: str, meta: dict[str, Any]) -> str:
    return f"{kind} {meta.get('namespace')}/{meta.get('name')}"


@dataclass
class ForeignActivity:
    """Watches a run's objects for the marks of a recovery other than the run's own `mode`."""

    mode: str
    owns: Owns
    findings: list[str] = field(default_factory=list)

    def observe(self, obj: dict[str, Any]) -> None:
        kind = str(obj.get("kind") or "")
        meta = obj.get("metadata") or {}
        if kind == "Event":
            self._event(obj)
        elif not self.owns(kind, meta.get("namespace"), meta.get("name")):
            return
        elif tuned.marks(obj):
            if self.mode != FLUX_TUNED:
                self._found(f"{' and '.join(tuned.marks(obj))} on {_ref(kind, meta)} (flux-tuned's knobs)")
        elif kind == KUSTOMIZATION.kind and (obj.get("spec") or {}).get("force") is True:
            self._flux_native(f"spec.force on {_ref(kind, meta)}")
        elif kind == HELM_RELEASE.kind and _retries_on_failure(obj):
            self._flux_native(f"the {RETRY_ON_FAILURE} strategy on {_ref(kind, meta)}")
        elif kind == GIT_REPOSITORY.kind and PINNED_BY in (meta.get("annotations") or {}):
            holder = str(meta["annotations"][PINNED_BY])
            if holder.startswith("StagedKustomization/"):
                self._stages(f"{_ref(kind, meta)} held by the stage controller ({holder})")
            else:
                self._operator(f"{_ref(kind, meta)} pinned by the recovery operator ({holder})")

    def _event(self, event: dict[str, Any]) -> None:
        involved = event.get("involvedObject") or {}
        component = event.get("reportingComponent") or (event.get("source") or {}).get("component")
        if component not in (OPERATOR_COMPONENT, STAGES_COMPONENT):
            return
        if self.owns(str(involved.get("kind")), involved.get("namespace"), involved.get("name")):
            what = f"{event.get('reason')} Event on {_ref(involved['kind'], involved)}"
            if component == STAGES_COMPONENT:
                self._stages(f"the stage controller's {what}")
            else:
                self._operator(f"the recovery operator's {what}")

    def _operator(self, what: str) -> None:
        # External modes (command:, manifest:) may well run this operator themselves.
        if self.mode in (*FLUX_ONLY, STAGED):
            self._found(what)

    def _stages(self, what: str) -> None:
        if self.mode in (*FLUX_ONLY, OPERATOR):
            self._found(what)

    def _flux_native(self, what: str) -> None:
        if self.mode != FLUX_NATIVE:
            self._found(f"{what} (flux-native's knob)")

    def _found(self, what: str) -> None:
        finding = f"{what} while measuring {self.mode!r}"
        if finding not in self.findings:
            self.findings.append(finding)


def _retries_on_failure(obj: dict[str, Any]) -> bool:
    spec = obj.get("spec") or {}
    return any(
        ((spec.get(k) or {}).get("strategy") or {}).get("name") == RETRY_ON_FAILURE for k in ("install", "upgrade")
    )


def shard_findings(record: Reconcilers | None) -> tuple[list[str], list[str]]:
    """What a run's reconcilers record says against it: (why it proves nothing, which other controllers acted).

    A run of a sharded mode proves nothing unless its shard's controllers were seen reconciling it, or if any
    controller it depends on stopped during it; a run reconciled by the other side's controllers (the shard for a
    default run, a default controller for a shard's run) was not measured under its own mode alone."""
    if record is None:
        return [], []
    unproven = list(record.stops)
    sharded = record.shard is not None
    others = [
        f"{count} reconcile(s) by {name} ({'the default controller' if sharded else 'the flux-tuned shard'})"
        for name, count in record.controllers.items()
        if tuned.is_shard(name) != sharded
    ]
    if sharded and not any(tuned.is_shard(name) for name in record.controllers):
        unproven.append(
            f"no reconcile by the {record.shard} shard's controllers in their logs: the run cannot prove it was "
            f"measured under {record.shard}"
        )
    return unproven, others
