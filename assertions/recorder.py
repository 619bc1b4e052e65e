"""Turns watch events into phase marks: the fault became visible, the recovery detected and acted, the app served a
good revision, Flux reported the truth about it, recovered (both at once); and phases after it (the next commit).

`visible` is the proof of fault: until the fault's real signature has been seen, a recovery cannot be timed
(the run is invalid, not fast). `detected` and `acted` come from the Events the recovery operator emits on the
run's own objects; the other recovery modes do not report them, and their runs simply lack those two marks. An
operator that detects the fault before Flux shows it is timed all the same, and a note says so. A recovery Flux's
own Helm remediation made (a rollback it reports on Ready=False) is noted too: it reads differently in the status.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from assertions.isolation import Owns
from assertions.steady import Check, Reader
from assertions.timeline import Timeline
from fluxmodel.annotations import OPERATOR_COMPONENT, STAGES_COMPONENT
from fluxmodel.conditions import conditions, is_ready, last_applied_revision
from fluxmodel.graph import depends_on
from fluxmodel.kinds import HELM_RELEASE, STAGED_KUSTOMIZATION
from fluxmodel.signatures import HELM_ROLLBACK_REPORTED, rolled_back
from fluxmodel.staged import ROLLED_BACK

# The system under test's Events that mark phases: the operator's, and the stage controller's (a check refusing
# a revision is its detection, a stage rolled back its action).
EVENT_PHASES = {
    "RecoveryDetected": "detected",
    "DependencyCycle": "detected",
    "RecoveryAction": "acted",
    "StageFailed": "detected",
    "StageRolledBack": "acted",
}
COMPONENTS = (OPERATOR_COMPONENT, STAGES_COMPONENT)


class PhaseRecorder:
    """Evaluates `visible`, `serving`, `reporting` and `recovered` on every watch event (and on a slow tick, as a
    safety net), then the phases that follow recovery (`follow`).

    The recovery checks are set only once the fault has landed, since they may name the revision the fault created.
    `recovered` is either one check, or, when it is None, `serving` and `reporting` holding at one observation.
    """

    def __init__(
        self,
        timeline: Timeline,
        visible: Check,
        recovered: Check | None,
        watched: set[str],
        requires_visible: bool = True,
        owns: Owns | None = None,
        serving: Check | None = None,
        reporting: Check | None = None,
    ):
        self.timeline = timeline
        self.requires_visible = requires_visible
        self.visible = visible
        self.recovered = recovered
        self.serving = serving
        self.reporting = reporting
        # Phases after recovery, each marked the first time its check holds, never before it was followed.
        self.later: dict[str, tuple[Check, float]] = {}
        self.watched = watched  # "Kind/namespace/name" of the Flux objects whose conditions are recorded
        self.owns = owns  # Events on objects the run does not own (another run's) are not its phases
        self.reader: Reader | None = None
        self.notes: list[str] = []
        self._lock = threading.Lock()
        self._last_conditions: dict[str, tuple[str, str, str]] = {}
        self._last_dependencies: dict[str, list[str]] = {}
        self._last_stages: dict[str, tuple[str, str | None]] = {}
        self._rollbacks: dict[str, set[tuple[str, str | None, str]]] = {}  # the RolledBack history entries seen
        self.last_visible = "not evaluated"
        self.last_recovered = "not evaluated"
        self.last: dict[str, str] = {}  # the last outcome of each phase's check that has not held yet

    def expect(self, serving: Check, reporting: Check) -> None:
        """What recovered means for the run, set once the fault has landed: both checks, at one observation."""
        with self._lock:
            self.serving, self.reporting, self.recovered = serving, reporting, None

    def follow(self, phase: str, check: Check) -> None:
        """Mark `phase` the first time `check` holds from now on (a phase after recovery: the next commit)."""
        with self._lock:
            self.last[phase] = "not evaluated"
            self.later[phase] = (check, time.monotonic())

    def attach(self, reader: Reader) -> None:
        self.reader = reader

    def on_change(self, event_type: str, obj: dict[str, Any], received: float) -> None:
        if obj.get("kind") == "Event":
            self._on_event(obj, received)
        else:
            self._on_object(obj)
        self.evaluate(received)

    def _on_event(self, event: dict[str, Any], received: float) -> None:
        if "injected" not in self.timeline.marks or received < self.timeline.marks["injected"]:
            return
        involved = event.get("involvedObject") or {}
        if self.owns is not None and not self.owns(
            str(involved.get("kind")), involved.get("namespace"), involved.get("name")
        ):
            return
        component = event.get("reportingComponent") or (event.get("source") or {}).get("component") or ""
        entry = {
            "reason": event.get("reason"),
            "type": event.get("type"),
            "component": component,
            "object": f"{involved.get('kind')}/{involved.get('namespace')}/{involved.get('name')}",
            "message": str(event.get("message") or "")[:500],
        }
        self.timeline.record_event(entry)
        phase = EVENT_PHASES.get(str(event.get("reason")))
        if phase and component in COMPONENTS:
            if not self.timeline.has("visible"):
                self.notes.append(f"the operator's {event.get('reason')} came before Flux showed the fault")
            if phase == "acted":
                self.timeline.mark("detected", received)
            self.timeline.mark(phase, received)

    def _on_object(self, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        ref = f"{obj.get('kind')}/{meta.get('namespace')}/{meta.get('name')}"
        if ref not in self.watched:
            return
        deps = [str(d) for d in depends_on(obj, str(meta.get("namespace") or ""))]
        if self._last_dependencies.get(ref) != deps:
            self._last_dependencies[ref] = deps
            self.timeline.record_dependencies(ref, deps)
        if obj.get("kind") == STAGED_KUSTOMIZATION.kind:
            self._on_stages(ref, obj)
        if "injected" not in self.timeline.marks:
            return
        for cond in conditions(obj).values():
            if cond.type not in ("Ready", "Stalled", "Released", "Remediated", "Healthy"):
                continue
            state = (cond.status, cond.reason, cond.last_transition_time or "")
            key = f"{ref}:{cond.type}"
            if self._last_conditions.get(key) != state:
                self._last_conditions[key] = state
                self.timeline.record_condition(
                    ref,
                    {
                        "type": cond.type,
                        "status": cond.status,
                        "reason": cond.reason,
                        "message": cond.message[:300],
                        "lastTransitionTime": cond.last_transition_time,
                    },
                )

    def _on_stages(self, ref: str, obj: dict[str, Any]) -> None:
        """A StagedKustomization's stages as they changed, and every rollback its history gained since the
        injection: a stage rolled back and moved on between two watch events still counts."""
        status = obj.get("status") or {}
        rollbacks = {
            (str(h.get("stage")), h.get("revision") or None, str(h.get("at")))
            for h in status.get("history") or []
            if isinstance(h, dict) and h.get("result") == ROLLED_BACK
        }
        known = self._rollbacks.setdefault(ref, set())
        fresh = rollbacks - known
        known |= rollbacks
        if "injected" not in self.timeline.marks:
            return
        for stage in status.get("stages") or []:
            name, state = str(stage.get("name")), (str(stage.get("phase")), stage.get("revision") or None)
            if self._last_stages.get(f"{ref}:{name}") != state:
                self._last_stages[f"{ref}:{name}"] = state
                self.timeline.record_stage(ref, name, *state)
        for name, revision, _ in fresh:
            if self._last_stages.get(f"{ref}:{name}") != (ROLLED_BACK, revision):
                self.timeline.record_stage(ref, name, ROLLED_BACK, revision)

    def evaluate(self, at: float | None = None) -> None:
        if self.reader is None or "injected" not in self.timeline.marks:
            return
        # An event received just before the injection but evaluated after it (busy watches, under load) counts
        # from the injection: no phase precedes it.
        now = max(time.monotonic() if at is None else at, self.timeline.marks["injected"])
        with self._lock:
            if not self.timeline.has("recovered"):
                self._recovery(self.reader, now)
            for phase, (check, since) in self.later.items():
                if not self.timeline.has(phase):
                    ok, self.last[phase] = check(self.reader)
                    if ok:
                        self.timeline.mark(phase, max(now, since))

    def _recovery(self, reader: Reader, now: float) -> None:
        if not self.timeline.has("visible"):
            ok, self.last_visible = self.visible(reader)
            if ok:
                self.timeline.mark("visible", now)
        if not (self.timeline.has("visible") or not self.requires_visible):
            return
        outcomes: list[tuple[bool, str]] = []
        for phase, check in (("serving", self.serving), ("reporting", self.reporting)):
            if check is None:
                continue
            ok, detail = check(reader)
            outcomes.append((ok, detail))
            if ok:
                self.timeline.mark(phase, now)
            else:
                self.last[phase] = detail
        if self.recovered is not None:
            ok, self.last_recovered = self.recovered(reader)
        elif outcomes:
            ok = all(held for held, _ in outcomes)
            self.last_recovered = next((d for held, d in outcomes if not held), "serving & reporting")
        else:
            return
        if ok:
            self.timeline.mark("recovered", now)
            self._note_remediation(reader)

    def _note_remediation(self, reader: Reader) -> None:
        """Recovered while a watched HelmRelease says its remediation rolled back: Flux reported it honestly, not
        Ready; the note keeps that visible beside the TTR."""
        for ref in sorted(self.watched):
            kind, namespace, name = ref.split("/", 2)
            if kind != HELM_RELEASE.kind:
                continue
            obj = reader.get(HELM_RELEASE.api_version, kind, name, namespace)
            if obj is not None and not is_ready(obj) and rolled_back(obj):
                self.notes.append(
                    f"{ref} recovered by Helm's own rollback to {last_applied_revision(obj)}: Flux reports "
                    f"{HELM_ROLLBACK_REPORTED.reasons[0]}, not Ready=True"
                )

    def reached(self, *phases: str) -> bool:
        """Whether any of `phases` is marked (wait with foundation.waiting.poll, evaluating between polls)."""
        return any(self.timeline.has(p) for p in phases)
