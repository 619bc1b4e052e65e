"""The one judge: a run's verdict from the evidence it recorded, against a budget.

The runner, the summary, `resilience gate` (with or without another SLO file) and the benchmarks all call
`judge`, on the same `Evidence` (a summary entry holds all of it, see `evidence_from_entry`). Only the time part
of a verdict (TTR, detection, the phases the budget names) depends on the budget: a run that lost user data,
proves nothing (not steady, fault not proven, another recovery acting on its objects) or hit a harness error never
passes, under any SLO file. Times are measured from one moment, the injection (`MEASURED_FROM`), for the TTR and for
the wait alike (the next commit's, from its own push).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from assertions import criteria, isolation
from assertions.diagnostics import Diagnostics, LoadDiagnostics
from assertions.schema import MEASURED_FROM, ClusterLock, Host, Reconcilers, WaitEnded, entry_problem
from assertions.slo import Budget
from assertions.timeline import BUDGETED_PHASES, NEXT_COMMIT, NEXT_COMMIT_KEY, Timeline
from foundation.errors import HarnessError


class Verdict(StrEnum):
    PASS = "pass"  # noqa: S105 - a verdict, not a password
    BREACH = "breach"
    NOT_RECOVERED = "not-recovered"
    INVALID = "invalid"


# Worst last: a cell's verdict is its worst run's.
SEVERITY: dict[Verdict, int] = {Verdict.PASS: 0, Verdict.BREACH: 1, Verdict.NOT_RECOVERED: 2, Verdict.INVALID: 3}


@dataclass(frozen=True)
class Evidence:
    """Everything a verdict depends on, as one run recorded it.

    `invalid`, `harness_errors` and `foreign_activity` each make the run prove nothing; `data_violations` make
    it a breach whatever its TTR; `measurements` are judged by their criteria (assertions.criteria) against
    the budget's; `notes` are reported and change nothing.
    """

    ttr: float | None = None
    detect: float | None = None
    proven: bool = False
    invalid: tuple[str, ...] = ()
    harness_errors: tuple[str, ...] = ()
    foreign_activity: tuple[str, ...] = ()
    data_violations: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    not_recovered_detail: str = ""
    measurements: Mapping[str, Any] = field(default_factory=dict)
    # Which controller processes reconciled the run (None: the provider cannot tell, and no shard was asked for).
    reconcilers: Reconcilers | None = None
    # Seconds from the injection to each phase reached (Timeline.since_injected).
    phases: Mapping[str, float] = field(default_factory=dict)
    # Why the recovery wait ended (assertions.decided); None: the run never waited for recovery (or predates it).
    wait_ended: WaitEnded | None = None


@dataclass(frozen=True)
class Judgement:
    """A verdict and why; `excusable` when only time was missed (what a baseline mode may do)."""

    verdict: Verdict
    reason: str
    excusable: bool = False

    @property
    def passed(self) -> bool:
        return self.verdict is Verdict.PASS


def _finite(value: float | None) -> bool:
    return value is None or (isinstance(value, int | float) and math.isfinite(value) and value >= 0)


def judge(evidence: Evidence, budget: Budget) -> Judgement:
    """The verdict of one run against one budget; the only place a verdict is decided."""
    notes = "".join(f"; note: {n}" for n in (*evidence.notes, *_measurement_notes(evidence)))
    if evidence.harness_errors:
        return Judgement(Verdict.INVALID, "harness error: " + "; ".join(evidence.harness_errors) + notes)
    unproven, other_controllers = isolation.shard_findings(evidence.reconcilers)
    if evidence.invalid or unproven:
        return Judgement(Verdict.INVALID, "; ".join((*evidence.invalid, *unproven)) + notes)
    if not evidence.proven:
        return Judgement(Verdict.INVALID, "fault not proven: no evidence that it happened" + notes)
    if evidence.foreign_activity or other_controllers:
        acted = "; ".join((*evidence.foreign_activity, *other_controllers))
        return Judgement(Verdict.INVALID, f"not measured under its own recovery alone: {acted}" + notes)
    if not (_finite(evidence.ttr) and _finite(evidence.detect) and all(map(_finite, evidence.phases.values()))):
        return Judgement(Verdict.INVALID, f"not a finite measurement (TTR {evidence.ttr}, detect {evidence.detect})")
    lost = "user data not preserved: " + "; ".join(evidence.data_violations) if evidence.data_violations else ""
    timing = _judge_time(evidence, budget)
    missed = _judge_measurements(evidence, budget)
    if lost:
        reason = lost if timing.passed else f"{lost}; {timing.reason}"
        reason += "".join(f"; {problem}" for problem, _ in missed)
        return Judgement(Verdict.BREACH if timing.passed else timing.verdict, reason + notes)
    if missed:
        reasons = "; ".join(problem for problem, _ in missed)
        excusable = all(excusable for _, excusable in missed) and (timing.passed or timing.excusable)
        if timing.passed:
            return Judgement(Verdict.BREACH, reasons + notes, excusable=excusable)
        return Judgement(timing.verdict, f"{timing.reason}; {reasons}{notes}", excusable=excusable)
    return Judgement(timing.verdict, timing.reason + notes, excusable=not timing.passed)


def _measurement_notes(evidence: Evidence) -> list[str]:
    """What the criteria report about their measurements without judging them (alert noise)."""
    return [
        note
        for criterion in criteria.CRITERIA
        if criterion.key in evidence.measurements
        for note in criterion.notes(evidence.measurements[criterion.key])
    ]


def _judge_measurements(evidence: Evidence, budget: Budget) -> list[tuple[str, bool]]:
    """Each criterion's problems with its measurement, and whether a baseline mode may have them."""
    out = []
    for criterion in criteria.CRITERIA:
        if criterion.key in evidence.measurements:
            measured, limit = evidence.measurements[criterion.key], budget.measures.get(criterion.key)
            out += [(problem, criterion.excusable) for problem in criterion.problems(measured, limit)]
    return out


def _judge_time(evidence: Evidence, budget: Budget) -> Judgement:
    wait = budget.give_up_after
    ttr, detect = evidence.ttr, evidence.detect
    if ttr is None:
        detail = f" ({evidence.not_recovered_detail})" if evidence.not_recovered_detail else ""
        ended = evidence.wait_ended
        if ended is not None and ended.by == "decided":  # cut short: the TTR is only known to exceed its end
            wait, detail = ended.after, f"{detail}; the wait {ended.text()}"
        return Judgement(
            Verdict.NOT_RECOVERED, f"not recovered within {wait:.0f}s of injection{detail}", excusable=True
        )
    if ttr > wait:
        return Judgement(
            Verdict.NOT_RECOVERED, f"recovered after {ttr:.1f}s, later than the wait of {wait:.0f}s", excusable=True
        )
    problems = []
    if budget.ttr.max is not None and ttr > budget.ttr.max:
        problems.append(f"TTR {ttr:.1f}s > max {budget.ttr.max:.0f}s")
    if detect is not None and budget.detect.max is not None and detect > budget.detect.max:
        problems.append(f"time to detect {detect:.1f}s > max {budget.detect.max:.0f}s")
    problems += [p for key, limit in budget.phases.items() if (p := _phase_problem(evidence, key, limit))]
    if problems:
        return Judgement(Verdict.BREACH, "; ".join(problems), excusable=True)
    limit = f"{budget.ttr.max:.0f}s" if budget.ttr.max is not None else "no max"
    return Judgement(Verdict.PASS, f"TTR {ttr:.1f}s within {limit}")


def _phase_problem(evidence: Evidence, key: str, limit: float) -> str | None:
    """What is wrong with a budgeted phase: over its max, or never reached. `next_commit` counts from its push (the
    runner's measurement), the others from the injection."""
    phase = BUDGETED_PHASES[key]
    if phase == NEXT_COMMIT:
        measured = evidence.measurements.get(NEXT_COMMIT_KEY)
        if not measured:
            return f"{phase} never measured (budget max {limit:g}s)"
        seconds = measured.get("taken_after")
        if seconds is None:
            return f"{phase}: the commit pushed after recovery was not taken (budget max {limit:g}s)"
        return f"{phase} taken {seconds:.1f}s after its push > max {limit:g}s" if seconds > limit else None
    seconds = evidence.phases.get(phase)
    if seconds is None:
        return f"{phase} never reached (budget max {limit:g}s)"
    return f"{phase} {seconds:.1f}s > max {limit:g}s" if seconds > limit else None


@dataclass
class RunResult:
    """One scenario run, recorded once: which fault, under which recovery, the evidence it gathered, the verdict
    (judged once, after every note is in), and what only the report shows (`diagnostics`, `load_diagnostics`)."""

    fault: str
    family: str
    recovery: str
    budget: Budget
    timeline: Timeline = field(default_factory=Timeline)
    repeat: int = 1
    provider: str = "local"
    signature: str | None = None
    baselines: tuple[str, ...] = ()
    test: str = ""  # the test's node id
    plan: str = ""  # the digest of the session's plan (scenarios.sharding), when it has one
    proven: bool = False
    invalid: list[str] = field(default_factory=list)
    harness_errors: list[str] = field(default_factory=list)
    foreign_activity: list[str] = field(default_factory=list)
    data_violations: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    not_recovered_detail: str = ""
    measurements: dict[str, Any] = field(default_factory=dict)
    # Where and how long it ran: wall seconds (shards are balanced by them), the harness's share of them (all but
    # injection to recovered), the host it shared, the cluster's fault lock it held.
    run_seconds: float | None = None
    harness_seconds: float | None = None
    host: Host | None = None
    cluster_lock: ClusterLock | None = None
    reconcilers: Reconcilers | None = None
    wait_ended: WaitEnded | None = None
    revert_problems: list[str] = field(default_factory=list)
    diagnostics: Diagnostics = field(default_factory=Diagnostics)
    load_diagnostics: LoadDiagnostics | None = None
    judgement: Judgement | None = None

    @property
    def ttr_seconds(self) -> float | None:
        return self.timeline.ttr

    @property
    def verdict(self) -> Verdict | None:
        return self.judgement.verdict if self.judgement else None

    @property
    def reason(self) -> str:
        return self.judgement.reason if self.judgement else ""

    def evidence(self) -> Evidence:
        return Evidence(
            ttr=self.timeline.ttr,
            detect=self.timeline.time_to_detect,
            proven=self.proven,
            invalid=tuple(self.invalid),
            harness_errors=tuple(self.harness_errors),
            foreign_activity=tuple(dict.fromkeys(self.foreign_activity)),
            data_violations=tuple(self.data_violations),
            notes=tuple(dict.fromkeys(self.notes)),
            not_recovered_detail=self.not_recovered_detail,
            measurements=dict(self.measurements),
            reconcilers=self.reconcilers,
            phases=self.timeline.since_injected_all(),
            wait_ended=self.wait_ended,
        )

    def judge(self) -> Judgement:
        """Judge the evidence against the run's budget, once: every note must be in before (a second verdict
        would disagree with what was already reported)."""
        if self.judgement is not None:
            raise HarnessError(f"run of {self.fault} under {self.recovery} judged twice")
        self.judgement = judge(self.evidence(), self.budget)
        return self.judgement

    def judged(self) -> Judgement:
        """The run's judgement; reading it before the run was judged is a harness error."""
        if self.judgement is None:
            raise HarnessError(f"run of {self.fault} under {self.recovery} read before it was judged")
        return self.judgement

    def summary_entry(self) -> dict[str, Any]:
        """The run's one entry of summary.json (its per-run file holds the same), valid by the strict schema: the
        evidence, the budget and the verdict they gave, the test and plan it belongs to, where and how long it ran."""
        judgement = self.judged()
        evidence = self.evidence()
        entry: dict[str, Any] = {
            "fault": self.fault,
            "family": self.family,
            "recovery": self.recovery,
            "verdict": str(judgement.verdict),
            "reason": judgement.reason,
            "ttr_seconds": evidence.ttr,
            "detect_seconds": evidence.detect,
            "since_injected": dict(evidence.phases),
            "measured_from": MEASURED_FROM,
            "phases": self.timeline.phase_seconds(),
            "budget": self.budget.to_json(),
            "proven": evidence.proven,
            "invalid": list(evidence.invalid),
            "harness_errors": list(evidence.harness_errors),
            "foreign_activity": list(evidence.foreign_activity),
            "data_violations": list(evidence.data_violations),
            "notes": list(evidence.notes),
            "not_recovered_detail": evidence.not_recovered_detail,
            "baselines": list(self.baselines),
            "repeat": self.repeat,
            "provider": self.provider,
            "signature": self.signature,
            **evidence.measurements,
            "test": self.test,
        }
        if self.run_seconds is not None:
            entry["run_seconds"] = self.run_seconds
        sections = (
            ("host", self.host),
            ("cluster_lock", self.cluster_lock),
            ("reconcilers", self.reconcilers),
            ("wait_ended", evidence.wait_ended),
        )
        for key, section in sections:
            if section is not None:
                entry[key] = section.to_json()
        if self.plan:
            entry["plan"] = self.plan
        problem = entry_problem(entry, self.test or self.fault)
        if problem:
            raise HarnessError(f"run result makes a bad summary entry: {problem}")
        return entry


EVIDENCE_LISTS: tuple[str, ...] = ("invalid", "harness_errors", "foreign_activity", "data_violations", "notes")


def evidence_from_entry(entry: Mapping[str, Any]) -> Evidence:
    """The Evidence a summary entry recorded (the entry is validated by reports.summary first)."""

    def strings(key: str) -> tuple[str, ...]:
        return tuple(str(v) for v in entry.get(key) or ())

    measurements = {c.key: entry[c.key] for c in criteria.CRITERIA if c.key in entry}
    if entry.get(NEXT_COMMIT_KEY) is not None:
        measurements[NEXT_COMMIT_KEY] = entry[NEXT_COMMIT_KEY]

    return Evidence(
        ttr=entry.get("ttr_seconds"),
        detect=entry.get("detect_seconds"),
        proven=bool(entry.get("proven")),
        invalid=strings("invalid"),
        harness_errors=strings("harness_errors"),
        foreign_activity=strings("foreign_activity"),
        data_violations=strings("data_violations"),
        notes=strings("notes"),
        not_recovered_detail=str(entry.get("not_recovered_detail") or ""),
        measurements=measurements,
        reconcilers=Reconcilers.model_validate(entry["reconcilers"]) if entry.get("reconcilers") else None,
        phases=dict(entry.get("since_injected") or {}),
        wait_ended=WaitEnded.model_validate(entry["wait_ended"]) if entry.get("wait_ended") else None,
    )


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]
