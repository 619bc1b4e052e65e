"""What one Flux object's status says now: ready or not, why, since when, and the failures to match patterns on.

Pure functions of the object and the previous observation, so the monitor, the engine and `explain` share one
reading of Flux status (conditions come from fluxmodel.conditions).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field, replace
from typing import Any

from ctlruntime.timeparse import parse_time
from fluxmodel.conditions import conditions, is_ready, last_applied_revision, last_attempted_revision
from fluxmodel.graph import depends_on
from fluxmodel.kinds import ObjectRef

# Conditions whose False status is a failure, and those whose True status is one.
_NEGATIVE_WHEN_FALSE = ("Ready", "Released", "Healthy", "TestSuccess")
_NEGATIVE_WHEN_TRUE = ("Stalled", "Remediated")
FAILURE_CONDITIONS = _NEGATIVE_WHEN_FALSE + _NEGATIVE_WHEN_TRUE  # the conditions patterns are matched on


@dataclass(frozen=True)
class Failure:
    """One failing condition: what patterns are matched against."""

    condition: str
    reason: str
    message: str

    def subject(self, kind: str) -> str:
        """The one line a pattern's error_pattern is searched in: `<Kind> <Reason>: <message>`."""
        return f"{kind} {self.reason}: {self.message}" if self.reason else f"{kind}: {self.message}"


def failures(obj: dict[str, Any]) -> list[Failure]:
    """Every failing condition of the object, Ready first."""
    out: list[Failure] = []
    conds = conditions(obj)
    order = sorted(conds.values(), key=lambda c: (c.type != "Ready", c.type))
    for c in order:
        if (c.type in _NEGATIVE_WHEN_FALSE and c.status == "False") or (
            c.type in _NEGATIVE_WHEN_TRUE and c.status == "True"
        ):
            out.append(Failure(c.type, c.reason, c.message))
    return out


def format_time(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Health:
    """The monitor's record of one object: status now, and times and counts across observations."""

    ref: ObjectRef
    ready: bool
    status: str  # healthy | progressing | failing | suspended
    reason: str
    message: str
    last_applied: str | None
    last_attempted: str | None
    failures: tuple[Failure, ...] = ()
    generation: int = 0
    suspended: bool = False
    since: float = 0.0  # when the current status began (epoch seconds)
    last_ready_at: float | None = None  # last time the object was seen Ready (epoch seconds)
    # When the object stopped being Ready (epoch seconds): kept while Flux retries, which flips the status between
    # failing and progressing at every attempt and so restarts `since`.
    unready_since: float = 0.0
    failure_count: int = 0  # failed reconciliations observed in the current failure episode
    depends_on: tuple[ObjectRef, ...] = field(default_factory=tuple)
    created: float = 0.0  # metadata.creationTimestamp (epoch seconds)
    last_handled: str | None = None  # status.lastHandledReconcileAt: the last reconcile request Flux finished

    def stuck_seconds(self, now: float) -> float:
        """How long the object has not been Ready (0 when Ready or suspended), across Flux's retries."""
        if self.ready or self.suspended:
            return 0.0
        return max(0.0, now - self.unready_since)


def observe(obj: dict[str, Any], previous: Health | None, now: float) -> Health:
    """The Health of `obj` given the previous observation of the same object."""
    ref = ObjectRef.of(obj)
    conds = conditions(obj)
    ready_cond = conds.get("Ready")
    ready = is_ready(obj) and not (conds.get("Stalled") and conds["Stalled"].true)
    fails = tuple(failures(obj))
    suspended = bool((obj.get("spec") or {}).get("suspend"))
    meta = obj.get("metadata") or {}
    generation = int(meta.get("generation") or 0)
    seen = ready_cond.observed_generation if ready_cond else None
    # Conditions written for an older spec say nothing about the current one: Flux has not looked yet.
    stale = seen is not None and 0 < int(seen) < generation
    if suspended:
        status = "suspended"
    elif ready:
        status = "healthy"
    elif fails and not stale:
        status = "failing"
    else:
        status = "progressing"
    since = now
    if previous is not None and previous.status == status:
        since = previous.since
    elif previous is None and ready_cond is not None:
        since = parse_time(ready_cond.last_transition_time) or now
    last_ready = previous.last_ready_at if previous else None
    if ready:
        last_ready = now
    if previous is None:
        unready_since = since  # the Ready condition's own transition time, when there is one
    elif previous.ready or previous.suspended:
        unready_since = now
    else:
        unready_since = previous.unready_since
    count = previous.failure_count if previous else 0
    if ready:
        count = 0
    elif status == "failing" and (previous is None or previous.failures != fails):
        count += 1
    return Health(
        ref=ref,
        ready=ready,
        status=status,
        reason=ready_cond.reason if ready_cond else "",
        message=ready_cond.message if ready_cond else "",
        last_applied=last_applied_revision(obj),
        last_attempted=last_attempted_revision(obj),
        failures=fails,
        generation=generation,
        suspended=suspended,
        since=since,
        last_ready_at=last_ready,
        unready_since=unready_since,
        failure_count=count,
        depends_on=tuple(depends_on(obj, ref.namespace)),
        created=parse_time(meta.get("creationTimestamp")) or now,
        last_handled=(obj.get("status") or {}).get("lastHandledReconcileAt"),
    )


def with_last_ready(health: Health, epoch: float | None) -> Health:
    """The same record with a last-Ready time restored from persisted state."""
    return replace(health, last_ready_at=epoch)
