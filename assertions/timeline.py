"""A scenario's timeline on a monotonic clock: injected, visible, detected, acted, recovered; serving, reporting;
next-commit; alerted, alert-resolved.

Time-to-recover is measured from the moment the fault landed, per phase, at the resolution of the watch events
that mark the phases (well under 100 ms); the Flux conditions' own lastTransitionTime values (1 s resolution)
are recorded beside the marks so a report can show both clocks. The alert phases (with monitoring) are a second
track beside the recovery: a page can come before or after recovery, and must not split a recovery phase. So are
the two halves of `recovered` (serving, reporting: it is marked once both hold) and the next commit after it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

# In order. `visible`: Flux shows the fault's signature; `detected`/`acted`: the recovery under test saw it and
# acted (absent for recovery modes that do not report, e.g. Flux alone); `recovered`: steady state again.
RECOVERY_PHASES: tuple[str, ...] = ("injected", "visible", "detected", "acted", "recovered")
# What `recovered` is made of, each marked the first time it holds (once the fault showed, where the fault needs it):
# `serving`: the app's workload serves a good revision; `reporting`: Flux's status tells the truth about what runs.
# `recovered` is marked when both hold at one observation, so neither comes after it.
OUTCOME_PHASES: tuple[str, ...] = ("serving", "reporting")
# After recovery: one more good commit pushed, `next-commit` when Flux applied it and reports Ready.
NEXT_COMMIT = "next-commit"
# With monitoring: `alerted` when the first notification naming the run's objects reached the receiver,
# `alert-resolved` when the last alert that fired for them was reported resolved (monitoring.facts.phases).
ALERT_PHASES: tuple[str, ...] = ("alerted", "alert-resolved")
PHASES: tuple[str, ...] = RECOVERY_PHASES + OUTCOME_PHASES + (NEXT_COMMIT,) + ALERT_PHASES
# The phases an SLO file may budget, by their key there (seconds from the injection, but `next_commit`: from the
# push of the next commit, the pipeline's own delivery time once recovered).
# `next_commit` is also the key of the runner's measurement of it (pushed_at, taken_after).
NEXT_COMMIT_KEY = "next_commit"
BUDGETED_PHASES: dict[str, str] = {"serving": "serving", "reporting": "reporting", NEXT_COMMIT_KEY: NEXT_COMMIT}


@dataclass
class Timeline:
    """Phase marks in seconds on time.monotonic(), plus the wall-clock time of the first mark."""

    marks: dict[str, float] = field(default_factory=dict)
    wall_start: float | None = None
    conditions: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    # dependsOn of the watched Flux objects as it changed (the ground truth of cycles and blocked dependents).
    dependencies: list[dict[str, Any]] = field(default_factory=list)
    # The stages of the watched StagedKustomizations as they changed (the ground truth of rollbacks).
    stages: list[dict[str, Any]] = field(default_factory=list)

    def mark(self, phase: str, at: float | None = None) -> float:
        """Record a phase once (the first observation wins); returns its time."""
        if phase not in PHASES:
            raise ValueError(f"unknown phase {phase!r}; phases are {', '.join(PHASES)}")
        if phase in self.marks:
            return self.marks[phase]
        now = time.monotonic() if at is None else at
        if not self.marks:
            self.wall_start = time.time() - (time.monotonic() - now)
        self.marks[phase] = now
        return now

    def has(self, phase: str) -> bool:
        return phase in self.marks

    def since_injected(self, phase: str) -> float | None:
        if "injected" not in self.marks or phase not in self.marks:
            return None
        return round(self.marks[phase] - self.marks["injected"], 3)

    def since_injected_all(self) -> dict[str, float]:
        """Seconds from the injection to every phase reached, in the order of PHASES."""
        return {p: s for p in PHASES if (s := self.since_injected(p)) is not None}

    @property
    def ttr(self) -> float | None:
        """Seconds from injection to recovery, or None when it never recovered."""
        return self.since_injected("recovered")

    @property
    def time_to_detect(self) -> float | None:
        """Seconds from injection until the recovery under test (or, without one, Flux) showed the fault."""
        return self.since_injected("detected") if "detected" in self.marks else self.since_injected("visible")

    def phase_seconds(self) -> dict[str, float]:
        """Duration of each reached phase, measured from the phase reached before it on its own track.

        Recovery phases follow each other in time (the order of RECOVERY_PHASES except when a recovery detects a
        fault before Flux shows it), so they add up to the TTR; `serving`, `reporting` and `alerted` count from the
        injection, `alert-resolved` from `alerted` and `next-commit` from `recovered`, whenever those happened."""
        out: dict[str, float] = {}
        previous: float | None = None
        recovery = [p for p in self.marks if p in RECOVERY_PHASES]
        for phase in sorted(recovery, key=lambda p: (self.marks[p], PHASES.index(p))):
            if previous is not None:
                out[phase] = round(self.marks[phase] - previous, 3)
            previous = self.marks[phase]
        for phase in OUTCOME_PHASES:
            seconds = self.since_injected(phase)
            if seconds is not None:
                out[phase] = seconds
        if NEXT_COMMIT in self.marks and "recovered" in self.marks:
            out[NEXT_COMMIT] = round(self.marks[NEXT_COMMIT] - self.marks["recovered"], 3)
        previous = self.marks.get("injected")
        for phase in ALERT_PHASES:
            if phase in self.marks and previous is not None:
                out[phase] = round(self.marks[phase] - previous, 3)
                previous = self.marks[phase]
        return out

    def record_condition(self, obj_ref: str, cond: dict[str, Any]) -> None:
        """Keep a condition transition (its lastTransitionTime is the controller's clock) beside the marks."""
        self.conditions.append({"object": obj_ref, "at": round(time.monotonic() - self._origin(), 3), **cond})

    def record_event(self, event: dict[str, Any]) -> None:
        self.events.append({"at": round(time.monotonic() - self._origin(), 3), **event})

    def record_dependencies(self, obj_ref: str, depends_on: list[str]) -> None:
        """Keep an object's dependsOn as it changed (seen before the injection: at 0)."""
        at = round(time.monotonic() - self._origin(), 3) if "injected" in self.marks else 0.0
        self.dependencies.append({"object": obj_ref, "at": at, "dependsOn": list(depends_on)})

    def record_stage(self, obj_ref: str, stage: str, phase: str, revision: str | None) -> None:
        """Keep a stage's phase and revision as the watch saw it change (after the injection)."""
        at = round(time.monotonic() - self._origin(), 3)
        self.stages.append({"object": obj_ref, "at": at, "stage": stage, "phase": phase, "revision": revision})

    def _origin(self) -> float:
        return self.marks.get("injected", min(self.marks.values(), default=time.monotonic()))

    def to_json(self) -> dict[str, Any]:
        return {
            "wall_start": self.wall_start,
            "since_injected": self.since_injected_all(),
            "phase_seconds": self.phase_seconds(),
            "ttr_seconds": self.ttr,
            "time_to_detect_seconds": self.time_to_detect,
            "conditions": self.conditions,
            "events": self.events,
            "dependencies": self.dependencies,
            "stages": self.stages,
        }
