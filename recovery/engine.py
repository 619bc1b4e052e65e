"""Decisions: given an object's health, the matching pattern and its recovery record, what to do now.

Pure and clock-injected, so every rule (policy, deference to Flux's own knobs, retries per object and action,
backoff, waiting for Flux to handle the previous request, escalation once) is unit-tested without a cluster.
The operator executes the decision; actions never decide.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fluxmodel.annotations import RECOVERY_POLICY, annotation
from recovery import deference
from recovery.backoff import Wait, wait_exponential
from recovery.health import Health
from recovery.patterns import Match, PatternSet
from recovery.state import ObjectState

# Verdicts
NONE = "none"  # nothing to do (healthy, unmatched, suspended, already escalated)
WAIT = "wait"  # something to do later: look again at retry_at
DEFER = "defer"  # a Flux knob on the object is recovering it: look again at retry_at (recovery.deference)
ACT = "act"  # run the pattern's action now (attempt n)
ESCALATE = "escalate"  # retries spent: tell a human, stop
MANUAL = "manual"  # the object asks for manual recovery: report, do not act

SETTLE_SECONDS = 300.0  # longest wait for Flux to handle a reconcile request before judging the attempt


@dataclass(frozen=True)
class Decision:
    verdict: str
    why: str
    match: Match | None = None
    key: str = ""
    attempt: int = 0
    retry_at: float | None = None
    deferred: str = ""  # how the object's Flux knob bore on this decision ("" when it has none)

    @property
    def action(self) -> str:
        return self.match.pattern.recovery_action if self.match else ""

    @property
    def pattern(self) -> str:
        return self.match.pattern.name if self.match else ""


def retry_key(match: Match) -> str:
    """Retries are counted per object, action and target (each refused object is its own fault)."""
    target = match.targets[0] if match.targets else None
    suffix = f"{target.kind}/{target.namespace}/{target.name}" if target else ""
    return f"{match.pattern.recovery_action}|{suffix}"


def policy_is_manual(obj: dict[str, Any]) -> bool:
    """gitops.flux.io/recovery-policy: manual on the object: report, never act."""
    return (annotation(obj, RECOVERY_POLICY) or "auto").strip().lower() == "manual"


def awaiting_satisfied(awaiting: dict[str, Any] | None, health: Health) -> bool:
    """Flux has reacted to the last action: handled its reconcile request, took the new spec or revision."""
    if not awaiting:
        return True
    if awaiting.get("token"):
        return bool(health.last_handled == awaiting["token"])
    if "generation" in awaiting:
        return health.generation != int(awaiting["generation"])
    if awaiting.get("revision"):
        return bool(health.last_attempted == awaiting["revision"])
    return True


def decide(
    health: Health,
    patterns: PatternSet,
    state: ObjectState,
    now: float,
    *,
    manual: bool = False,
    dependencies_ready: bool = True,
    settle: float = SETTLE_SECONDS,
    backoff: Wait | None = None,
    knob: deference.Knob | None = None,
    flux_grace: float = deference.FLUX_GRACE_SECONDS,
) -> Decision:
    """The decision for a failing object; `state` is its reconciliation-state (attempts, awaiting, escalation),
    `knob` the Flux knob on the object that answers the failure (deference.knob)."""
    if health.suspended:
        return Decision(NONE, "suspended (spec.suspend)")
    if health.ready or health.status != "failing":
        return Decision(NONE, f"not failing ({health.status})")
    match = patterns.match(health.ref.kind, health.failures)
    if match is None:
        return Decision(NONE, "no pattern matches")
    key = retry_key(match)
    pattern = match.pattern
    if manual:
        return Decision(MANUAL, "recovery-policy is manual", match, key)
    if pattern.stuck_for and now - health.since < pattern.stuck_for:
        return Decision(
            WAIT, f"failing for less than {pattern.stuck_for:g}s", match, key, retry_at=health.since + pattern.stuck_for
        )
    deferred = ""
    if knob is not None:
        flux = deference.judge(knob, match, health, now, flux_grace)
        if flux.verdict == deference.DEFER:
            return Decision(DEFER, flux.why, match, key, retry_at=flux.until, deferred=flux.why)
        if flux.verdict == deference.RESOLVED:
            return Decision(NONE, flux.why, match, key, deferred=flux.why)
        deferred = flux.why
    awaiting = state.awaiting
    if awaiting and not awaiting_satisfied(awaiting, health):
        until = float(awaiting.get("since", now)) + settle
        if now < until:
            return Decision(WAIT, "waiting for Flux to react to the last action", match, key, retry_at=until)
    if pattern.recovery_action == "reconcile_dependents" and not dependencies_ready:
        return Decision(NONE, "waiting for its dependencies to become Ready", match, key)
    done = state.attempts.get(key, 0)
    if done >= pattern.max_retries:
        if state.escalated == key:
            return Decision(NONE, "escalated; waiting for a human or a new revision", match, key)
        return Decision(ESCALATE, f"{done} of {pattern.max_retries} attempts spent", match, key, attempt=done)
    wait = backoff or wait_exponential(multiplier=pattern.retry_interval)
    last = state.last_action_at.get(key)
    if last is not None and done > 0:
        retry_at = last + wait(done)
        if now < retry_at:
            return Decision(WAIT, f"backing off after attempt {done}", match, key, attempt=done, retry_at=retry_at)
    return Decision(
        ACT, f"attempt {done + 1} of {pattern.max_retries}", match, key, attempt=done + 1, deferred=deferred
    )
