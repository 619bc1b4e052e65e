"""What a worker does with one object: record success, decide (engine), act (actions), escalate, report.

Everything about one object happens in its worker (the queue never runs two for one key), and every step
that changes the cluster is preceded by a state write, so a restart resumes instead of repeating.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ctlruntime.scope import EVERYTHING, Scope
from fluxmodel.annotations import RECOVERY_ESCALATED, owner
from fluxmodel.kinds import GIT_REPOSITORY, HELM_RELEASE, KUSTOMIZATION, ObjectRef
from fluxmodel.signatures import NamedObject
from kubeapi import ApiError, Conflict, Kube
from recovery import decisions, deference, engine, events
from recovery.actions import ACTIONS, Context, Done, Requeue
from recovery.actions.workloads import locate
from recovery.chains import ChainResolver
from recovery.dependencies import dependencies_ready, dependents_to_reconcile
from recovery.errors import PermanentError, TemporaryError
from recovery.health import Failure, Health
from recovery.metrics import ESCALATION_MANUAL, ESCALATION_REFUSED, ESCALATION_RETRIES, Metrics
from recovery.monitor import Monitor
from recovery.patterns import Match, PatternSet, match_one
from recovery.state import ObjectState, StateStore

ESCALATED_ANNOTATION = RECOVERY_ESCALATED
MAX_STEP_ERRORS = 10


@dataclass
class Options:
    dry_run: bool = False
    settle: float = engine.SETTLE_SECONDS
    scope: Scope = EVERYTHING
    flux_grace: float = deference.FLUX_GRACE_SECONDS


class Reconciler:
    def __init__(
        self,
        kube: Kube,
        monitor: Monitor,
        store: StateStore,
        recorder: events.Recorder,
        metrics: Metrics,
        requeue: Callable[[ObjectRef, float], None],
        patterns: Callable[[], PatternSet],
        leader: Callable[[], bool],
        options: Options,
        clock: Callable[[], float] = time.time,
    ):
        self.kube, self.monitor, self.store, self.recorder, self.metrics = kube, monitor, store, recorder, metrics
        self.requeue, self.patterns, self.leader, self.options, self.clock = requeue, patterns, leader, options, clock
        self._lock = threading.Lock()
        self._said: dict[tuple[ObjectRef, str], str] = {}
        self.chains = ChainResolver(kube, monitor, store, recorder, metrics, requeue, options.dry_run, clock)

    # -- entry point ---------------------------------------------------------------------------------------
    def process(self, ref: ObjectRef) -> None:
        if not self.leader():
            return
        self.chains.report_cycles()
        if ref.kind == GIT_REPOSITORY.kind:
            self.chains.source(ref)
            return
        obj, health = self.monitor.get(ref), self.monitor.health.get(ref)
        if obj is None or health is None:
            if ref in self.store.known():
                self.store.forget(ref)
            return
        state = self.store.get(ref)
        try:
            if health.ready:
                self._on_ready(ref, obj, health, state)
            kick = self.chains.pop_kick(ref)
            if kick is not None and (kick[1] or not health.ready) and not state.in_flight:
                self.chains.reconcile_now(ref, obj, kick[0], state)
            if state.in_flight:
                self._resume(ref, obj, state)
            elif not health.ready:
                self._on_failing(ref, obj, health, state)
            if state.health_status not in ("recovering", "escalated", "manual"):
                state.health_status = health.status
        finally:
            self.store.save(state)  # in memory only under --dry-run

    # -- healthy -----------------------------------------------------------------------------------------
    def _on_ready(self, ref: ObjectRef, obj: dict[str, Any], health: Health, state: ObjectState) -> None:
        # A new revision applied counts too: dependents wait for it ("revision is not up to date").
        recovering = state.health_status != "healthy" or state.last_successful_revision != health.last_applied
        if state.awaiting:
            action = str(state.awaiting.get("action", ""))
            self.metrics.actions.labels(ref.kind, action, "succeeded").inc()
            decisions.record(
                ref, str(state.awaiting.get("pattern", "")), action, "recovered", f"Ready at {health.last_applied}"
            )
        if state.escalated and not self.options.dry_run:
            self._annotate(ref, obj, None)
        if state.attempts or state.awaiting or state.escalated or state.failure_count:
            state.reset_episode()
        if state.last_successful_revision != health.last_applied:
            state.last_successful_revision = health.last_applied
            state.last_successful_timestamp = self.clock()
        state.last_successful_source_revision = self._source_revision_now(ref, obj, health)
        state.health_status = "healthy"
        if recovering:  # newly Ready or at a new revision: not on every status event of a Ready object
            if ref.kind == KUSTOMIZATION.kind and health.last_applied:
                self._note_releases_ready_at(ref, health.last_applied)
            graph = self.monitor.graph()
            objects, sources = self.monitor.snapshot()
            for dependent in dependents_to_reconcile(ref, graph, objects, sources):
                self.chains.kick(
                    dependent, f"its dependency {ref} is Ready: reconciling now, not after --requeue-dependency"
                )

    def _note_releases_ready_at(self, ks: ObjectRef, revision: str) -> None:
        """A Kustomization is Ready at `revision`: its Ready HelmReleases were delivered by it (a release is often
        Ready before the Kustomization that waits for it has recorded the revision)."""
        objects, _ = self.monitor.snapshot()
        for hr_ref, hr in objects.items():
            health = self.monitor.health.get(hr_ref)
            if hr_ref.kind != HELM_RELEASE.kind or health is None or not health.ready:
                continue
            origin = owner(hr)
            if origin and ObjectRef(*origin) == ks:
                hr_state = self.store.get(hr_ref)
                if hr_state.last_successful_source_revision != revision:
                    hr_state.last_successful_source_revision = revision
                    self.store.save(hr_state)

    def _source_revision_now(self, ref: ObjectRef, obj: dict[str, Any], health: Health) -> str | None:
        """The Git revision that delivered this object's current spec (for HelmReleases: its Kustomization's)."""
        if ref.kind == KUSTOMIZATION.kind:
            return health.last_applied
        origin = owner(obj)
        if origin and origin[0] == KUSTOMIZATION.kind:
            ks = self.monitor.get(ObjectRef(*origin))
            applied = ((ks or {}).get("status") or {}).get("lastAppliedRevision")
            if applied:
                return str(applied)
        return self.store.get(ref).last_successful_source_revision

    # -- failing -----------------------------------------------------------------------------------------
    def _on_failing(self, ref: ObjectRef, obj: dict[str, Any], health: Health, state: ObjectState) -> None:
        now = self.clock()
        state.failure_count = health.failure_count
        if state.awaiting and engine.awaiting_satisfied(state.awaiting, health):
            action = str(state.awaiting.get("action", ""))
            if state.awaiting.get("validate"):
                self.metrics.actions.labels(ref.kind, action, "failed").inc()
            decisions.record(ref, str(state.awaiting.get("pattern", "")), action, "not-recovered", health.message[:200])
            state.awaiting = None
        patterns = self.patterns()
        match = patterns.match(ref.kind, health.failures)
        deps_ok = True
        if match is not None and match.pattern.recovery_action == "reconcile_dependents":
            deps_ok = dependencies_ready(ref, self.monitor.graph(), *self.monitor.snapshot())[0]
        knob = None
        if match is not None:
            knob = deference.knob(ref.kind, obj, match, health.failures, lambda target: self._live(obj, target))
        decision = engine.decide(
            health,
            patterns,
            state,
            now,
            manual=engine.policy_is_manual(obj),
            dependencies_ready=deps_ok,
            settle=self.options.settle,
            knob=knob,
            flux_grace=self.options.flux_grace,
        )
        if decision.match is not None:
            self._detected(ref, obj, decision, state)
        self._say(ref, decision)
        if decision.verdict == engine.DEFER and self._once(ref, decision.why, "deferred") and not self.options.dry_run:
            # Once per deferral, not per look: Flux's retries flip the object between failing and progressing.
            self.recorder.emit(obj, events.DEFERRED, f"{decision.action} (pattern {decision.pattern}) {decision.why}")
        if decision.verdict in (engine.WAIT, engine.DEFER) and decision.retry_at is not None:
            self.requeue(ref, max(0.05, decision.retry_at - now))
        elif decision.verdict == engine.MANUAL and decision.match is not None:
            self._escalate(ref, obj, decision.match, f"manual|{decision.key}", "recovery-policy is manual", state)
            state.health_status = "manual"
        elif decision.verdict == engine.ESCALATE and decision.match is not None:
            self._escalate(ref, obj, decision.match, decision.key, decision.why, state)
        elif decision.verdict == engine.ACT and decision.match is not None:
            if decision.action == "escalate":
                self._escalate(ref, obj, decision.match, decision.key, "the pattern's action is escalate", state)
            else:
                self._start(ref, obj, decision, state)

    def _detected(self, ref: ObjectRef, obj: dict[str, Any], decision: engine.Decision, state: ObjectState) -> None:
        match = decision.match
        assert match is not None
        fingerprint = f"{match.pattern.name}|{decision.key}|{hash(match.failure.message) & 0xFFFFFFFF:x}"
        if state.detected == fingerprint:
            return
        state.detected = fingerprint
        self.metrics.detections.labels(ref.kind, match.pattern.name).inc()
        impact = len(self.monitor.graph().dependents_of(ref))
        text = (
            f"{match.failure.condition}={match.failure.reason or '?'} matches pattern {match.pattern.name} "
            f"(action {match.pattern.recovery_action}, max {match.pattern.max_retries} attempts): "
            f"{match.matched_text[:300]}" + (f"; {impact} dependent(s) blocked" if impact else "")
        )
        if not self.options.dry_run:
            self.recorder.emit(obj, events.DETECTED, text, warning=True)

    def _start(self, ref: ObjectRef, obj: dict[str, Any], decision: engine.Decision, state: ObjectState) -> None:
        match = decision.match
        assert match is not None
        action = ACTIONS[match.pattern.recovery_action]
        if self.options.dry_run:
            if self._once(ref, f"dry-run|{decision.key}"):
                self.metrics.actions.labels(ref.kind, action.name, "dry_run").inc()
                decisions.record(ref, match.pattern.name, action.name, "dry-run", "; ".join(action.plan(match)))
            return
        now = self.clock()
        state.attempts[decision.key] = decision.attempt
        state.last_action_at[decision.key] = now
        state.last_attempt_timestamp = now
        state.recovery_attempts += 1
        state.health_status = "recovering"
        state.in_flight = {
            "action": action.name,
            "pattern": match.pattern.name,
            "key": decision.key,
            "attempt": decision.attempt,
            "failure": {
                "condition": match.failure.condition,
                "reason": match.failure.reason,
                "message": match.failure.message,
            },
            "progress": {},
            "started": now,
        }
        self.store.save(state)  # before touching anything: a restart resumes this attempt
        self.metrics.actions.labels(ref.kind, action.name, "started").inc()
        self.recorder.emit(
            obj,
            events.ACTION,
            f"{action.name} attempt {decision.attempt}/{match.pattern.max_retries} (pattern {match.pattern.name}): "
            + "; ".join(action.plan(match))[:600],
        )
        decisions.record(ref, match.pattern.name, action.name, "started", decision.deferred, attempt=decision.attempt)
        self._run(ref, obj, match, state)

    def _resume(self, ref: ObjectRef, obj: dict[str, Any], state: ObjectState) -> None:
        flight = state.in_flight or {}
        failure = Failure(**flight.get("failure", {"condition": "Ready", "reason": "", "message": ""}))
        pattern = next((p for p in self.patterns().patterns if p.name == flight.get("pattern")), None)
        match = match_one(pattern, ref.kind, [failure]) if pattern else None
        if match is None:
            decisions.record(ref, str(flight.get("pattern")), str(flight.get("action")), "abandoned", "pattern changed")
            state.in_flight = None
            return
        self._run(ref, obj, match, state)

    def _run(self, ref: ObjectRef, obj: dict[str, Any], match: Match, state: ObjectState) -> None:
        flight = state.in_flight
        assert flight is not None
        action = ACTIONS[match.pattern.recovery_action]
        ctx = Context(
            self.kube,
            obj,
            match,
            state,
            flight["progress"],
            self.store.get,
            self.store.save,
            self.clock,
            self.monitor.get,
            self.options.scope,
        )
        started = time.monotonic()
        try:
            outcome = action.run(ctx)
        except TemporaryError as e:
            outcome = Requeue(e.delay, str(e))
        except PermanentError as e:
            state.in_flight = None
            self.metrics.actions.labels(ref.kind, action.name, "failed").inc()
            self._escalate(ref, obj, match, str(flight["key"]), str(e), state)
            return
        except ApiError as e:
            flight["errors"] = int(flight.get("errors", 0)) + 1
            if (e.retryable or isinstance(e, Conflict)) and flight["errors"] < MAX_STEP_ERRORS:
                outcome = Requeue(min(30.0, 2.0 ** flight["errors"]), f"API error, retrying: {e}")
            else:
                state.in_flight = None
                self.metrics.actions.labels(ref.kind, action.name, "failed").inc()
                self._escalate(ref, obj, match, str(flight["key"]), f"API refused a step: {e}", state)
                return
        finally:
            self.metrics.duration.labels(action.name).observe(time.monotonic() - started)
        if isinstance(outcome, Requeue):
            if self._once(ref, f"waiting|{outcome.note}"):  # progress, once per step
                decisions.record(ref, match.pattern.name, action.name, "waiting", outcome.note)
            self.requeue(ref, outcome.after)
            return
        assert isinstance(outcome, Done)
        state.in_flight = None
        state.awaiting = {
            **outcome.awaiting,
            "since": self.clock(),
            "action": action.name,
            "pattern": match.pattern.name,
            "key": flight["key"],
            "validate": match.pattern.validation_required,
        }
        if not match.pattern.validation_required:
            self.metrics.actions.labels(ref.kind, action.name, "succeeded").inc()
        self.recorder.emit(obj, events.ACTION, f"{action.name} done: {outcome.summary}")
        decisions.record(ref, match.pattern.name, action.name, "done", outcome.summary, attempt=flight.get("attempt"))
        self.requeue(ref, self.options.settle)

    def _escalate(
        self, ref: ObjectRef, obj: dict[str, Any], match: Match, key: str, why: str, state: ObjectState
    ) -> None:
        if state.escalated == key:
            return
        state.escalated = key
        state.health_status = "escalated"
        action = match.pattern.recovery_action
        kind = (
            ESCALATION_MANUAL
            if key.startswith("manual|")
            else ESCALATION_RETRIES
            if "attempts spent" in why
            else ESCALATION_REFUSED
        )
        self.metrics.escalations.labels(ref.kind, action, kind).inc()
        decisions.record(ref, match.pattern.name, action, "escalated", why)
        if self.options.dry_run:
            return
        self.recorder.emit(
            obj,
            events.ESCALATED,
            f"manual intervention needed: pattern {match.pattern.name}, action {action}: {why}; "
            f"failure: {match.failure.message[:400]}",
            warning=True,
        )
        self._annotate(ref, obj, f"{match.pattern.name}/{action}: {why}"[:250])

    def _annotate(self, ref: ObjectRef, obj: dict[str, Any], value: str | None) -> None:
        try:
            patch = {"metadata": {"annotations": {ESCALATED_ANNOTATION: value}}}
            self.kube.merge_patch(str(obj["apiVersion"]), ref.kind, ref.name, ref.namespace, patch)
        except ApiError as e:
            decisions.log.warning("could not annotate %s: %s", ref, e)

    def _say(self, ref: ObjectRef, decision: engine.Decision) -> None:
        """Log non-acting decisions once per change (acting ones are logged where they happen)."""
        if decision.verdict != engine.ACT and self._once(ref, f"{decision.verdict}|{decision.pattern}|{decision.why}"):
            decisions.record(ref, decision.pattern, decision.action, decision.verdict, decision.why)

    def _live(self, obj: dict[str, Any], target: NamedObject) -> dict[str, Any] | None:
        """The refused object a failure names, as the cluster has it (None when it cannot be read)."""
        api_version, namespace = locate(obj, target)
        if not api_version:
            return None
        try:
            return self.kube.get(api_version, target.kind, target.name, namespace)
        except ApiError:
            return None

    def _once(self, ref: ObjectRef, line: str, channel: str = "log") -> bool:
        with self._lock:
            if self._said.get((ref, channel)) == line:
                return False
            self._said[(ref, channel)] = line
            return True
