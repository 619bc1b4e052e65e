"""A StagedKustomization's status: per stage its revisions, phase, checks and times; failed revisions; history.

The status is the controller's only memory: it is written before anything is pinned, so a controller killed
mid-promotion resumes from it (a stage Progressing at R is still Progressing at R) instead of starting over.
Times are kept as RFC 3339 in the object and as Unix seconds here.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from ctlruntime.timeparse import parse_time
from fluxmodel.staged import PASSED, PENDING, PROGRESSING, SOAKING, short

HISTORY_LIMIT = 50
FAILED_LIMIT = 20
SEEN_LIMIT = 50

# Ready condition reasons
SUCCEEDED = "Succeeded"
PROGRESSING_REASON = "Progressing"
REVISION_FAILED = "RevisionFailed"
INVALID = "InvalidStages"
NOT_FOUND = "KustomizationNotFound"
SOURCE_PROBLEM = "SourceNotPinnable"
SUSPENDED = "Suspended"


def stamp(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class CheckResult:
    """One check of a stage on one revision: its type, whether it passed (None: not decided yet), why."""

    type: str
    passed: bool | None
    message: str = ""
    at: float | None = None

    def to_json(self) -> dict[str, Any]:
        status = "Unknown" if self.passed is None else str(self.passed)
        return {"type": self.type, "status": status, "message": self.message[:1000], "time": stamp(self.at)}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> CheckResult:
        status = raw.get("status")
        passed = None if status not in ("True", "False") else status == "True"
        return cls(str(raw.get("type") or ""), passed, str(raw.get("message") or ""), parse_time(raw.get("time")))


@dataclass
class StageStatus:
    """Where one stage is: the revision it works on (`revision`) and the last one it passed."""

    name: str
    phase: str = PENDING
    revision: str | None = None
    passed_revision: str | None = None
    message: str = ""
    checks: list[CheckResult] = field(default_factory=list)
    started: float | None = None  # began applying `revision`
    soak_started: float | None = None
    passed_at: float | None = None
    changed: float | None = None  # the phase's lastTransitionTime

    @property
    def held(self) -> str | None:
        """The revision the stage's source must be pinned to now."""
        return self.revision if self.phase in (PROGRESSING, SOAKING) else self.passed_revision

    def to_json(self) -> dict[str, Any]:
        out = {
            "name": self.name,
            "phase": self.phase,
            "revision": self.revision,
            "passedRevision": self.passed_revision,
            "message": self.message[:1000],
            "checks": [c.to_json() for c in self.checks],
            "startedAt": stamp(self.started),
            "soakStartedAt": stamp(self.soak_started),
            "passedAt": stamp(self.passed_at),
            "lastTransitionTime": stamp(self.changed),
        }
        return {k: v for k, v in out.items() if v not in (None, "")}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> StageStatus:
        return cls(
            name=str(raw.get("name") or ""),
            phase=str(raw.get("phase") or PENDING),
            revision=raw.get("revision") or None,
            passed_revision=raw.get("passedRevision") or None,
            message=str(raw.get("message") or ""),
            checks=[CheckResult.from_json(c) for c in raw.get("checks") or [] if isinstance(c, dict)],
            started=parse_time(raw.get("startedAt")),
            soak_started=parse_time(raw.get("soakStartedAt")),
            passed_at=parse_time(raw.get("passedAt")),
            changed=parse_time(raw.get("lastTransitionTime")),
        )


@dataclass
class Condition:
    status: str
    reason: str
    message: str


@dataclass
class PipelineStatus:
    """The whole status subresource of one StagedKustomization."""

    stages: dict[str, StageStatus] = field(default_factory=dict)
    failed: list[dict[str, Any]] = field(default_factory=list)  # {revision, stage, check, message, at}
    history: list[dict[str, Any]] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)  # head revisions in the order they arrived (oldest first)
    latest: str | None = None
    handled_retry: str | None = None
    ready: Condition = field(default_factory=lambda: Condition("Unknown", PROGRESSING_REASON, "starting"))
    ready_since: float | None = None
    observed_generation: int | None = None

    def stage(self, name: str) -> StageStatus:
        return self.stages.setdefault(name, StageStatus(name))

    def failure(self, revision: str | None) -> dict[str, Any] | None:
        """The record of `revision` having failed somewhere, if it did."""
        return next((f for f in self.failed if f.get("revision") == revision), None) if revision else None

    def mark_failed(self, revision: str, stage: str, check: str, message: str, now: float) -> None:
        if self.failure(revision) is None:
            self.failed.append(
                {"revision": revision, "stage": stage, "check": check, "message": message[:500], "at": stamp(now)}
            )
            del self.failed[:-FAILED_LIMIT]

    def see(self, revision: str) -> None:
        if revision not in self.seen:
            self.seen.append(revision)
            del self.seen[:-SEEN_LIMIT]

    def newer(self, candidate: str, than: str | None) -> bool:
        """`candidate` came through the head after `than` (a revision never seen there counts as older)."""
        if candidate not in self.seen:
            return False
        return than not in self.seen or self.seen.index(candidate) > self.seen.index(str(than))

    def record(self, now: float, **entry: Any) -> None:
        """One line of history: what moved where, when, and why."""
        self.history.append({"at": stamp(now), **{k: v for k, v in entry.items() if v is not None}})
        del self.history[:-HISTORY_LIMIT]

    def summary(self, order: list[str]) -> str:
        """`name=revision phase` per stage, for `kubectl get stagedkustomizations`."""
        parts = []
        for name in order:
            st = self.stages.get(name) or StageStatus(name)
            shown = st.revision if st.phase in (PROGRESSING, SOAKING, "Checking") else st.passed_revision
            shown = shown or st.revision
            failed = (
                f" ({short(st.revision)} failed)"
                if st.phase in ("Failed", "RolledBack") and st.revision != shown
                else ""
            )
            parts.append(f"{name}={short(shown)} {st.phase}{failed}")
        return ", ".join(parts)

    def to_json(self, order: list[str], generation: int | None, now: float) -> dict[str, Any]:
        return {
            "observedGeneration": generation,
            "latestRevision": self.latest,
            "summary": self.summary(order),
            "lastHandledRetry": self.handled_retry,
            "conditions": [
                {
                    "type": "Ready",
                    "status": self.ready.status,
                    "reason": self.ready.reason,
                    "message": self.ready.message[:1000],
                    "lastTransitionTime": stamp(self.ready_since or now),
                    "observedGeneration": generation,
                }
            ],
            "stages": [self.stage(name).to_json() for name in order],
            "failedRevisions": list(self.failed),
            "history": list(self.history),
            "seenRevisions": list(self.seen),
        }

    @classmethod
    def from_object(cls, obj: dict[str, Any]) -> PipelineStatus:
        raw = obj.get("status") or {}
        ready = next((c for c in raw.get("conditions") or [] if c.get("type") == "Ready"), None)
        out = cls(
            stages={s.name: s for s in (StageStatus.from_json(r) for r in raw.get("stages") or []) if s.name},
            failed=[f for f in raw.get("failedRevisions") or [] if isinstance(f, dict)],
            history=[h for h in raw.get("history") or [] if isinstance(h, dict)],
            seen=[str(r) for r in raw.get("seenRevisions") or []],
            latest=raw.get("latestRevision") or None,
            handled_retry=raw.get("lastHandledRetry") or None,
            observed_generation=raw.get("observedGeneration"),
        )
        if ready:
            out.ready = Condition(str(ready.get("status")), str(ready.get("reason")), str(ready.get("message") or ""))
            out.ready_since = parse_time(ready.get("lastTransitionTime"))
        return out

    def set_ready(self, status: str, reason: str, message: str, now: float) -> None:
        if (self.ready.status, self.ready.reason) != (status, reason):
            self.ready_since = now
        self.ready = Condition(status, reason, message)


def passed(st: StageStatus) -> bool:
    return st.phase == PASSED
