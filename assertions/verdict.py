"""The outcome of one scenario run and how it is judged against its budget.

`invalid` is not `fast`: a run whose fault was never observed (or whose cluster was not in steady state
before injection) proves nothing about recovery, and the gate treats it as a failure of its own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from assertions.slo import Budget
from assertions.timeline import Timeline


class Verdict(StrEnum):
    PASS = "pass"  # noqa: S105 - a verdict, not a password
    BREACH = "breach"
    NOT_RECOVERED = "not-recovered"
    INVALID = "invalid"


@dataclass
class RunResult:
    """One scenario run: which fault, under which recovery, what happened, and the verdict."""

    fault: str
    family: str
    recovery: str
    budget: Budget
    timeline: Timeline = field(default_factory=Timeline)
    verdict: Verdict | None = None
    reason: str = ""
    repeat: int = 1
    provider: str = "local"
    signature: str | None = None
    attachments: dict[str, Any] = field(default_factory=dict)

    @property
    def ttr_seconds(self) -> float | None:
        return self.timeline.ttr

    def judge(self) -> Verdict:
        """Set and return the verdict from the timeline (unless already invalid)."""
        if self.verdict is Verdict.INVALID:
            return self.verdict
        verdict, reason = judge_seconds(self.timeline.ttr, self.timeline.time_to_detect, self.budget)
        self.verdict = verdict
        self.reason = (self.reason or reason) if verdict is Verdict.NOT_RECOVERED else reason
        return self.verdict

    def invalidate(self, reason: str) -> None:
        self.verdict = Verdict.INVALID
        self.reason = reason

    def summary_entry(self) -> dict[str, Any]:
        """One entry of reports/summary.json (the gate's input)."""
        return {
            "fault": self.fault,
            "family": self.family,
            "recovery": self.recovery,
            "verdict": str(self.verdict or Verdict.INVALID),
            "ttr_seconds": self.ttr_seconds,
            "detect_seconds": self.timeline.time_to_detect,
            "phases": self.timeline.phase_seconds(),
            "budget": self.budget.to_json(),
            "reason": self.reason,
            "repeat": self.repeat,
            "provider": self.provider,
            "signature": self.signature,
        }


def judge_seconds(ttr: float | None, detect: float | None, budget: Budget) -> tuple[Verdict, str]:
    """The verdict and its reason for one run's measured seconds against a budget (never `invalid`).

    Shared by RunResult.judge and the reports gate, which re-judges summary entries against another SLO file.
    """
    if ttr is None:
        return Verdict.NOT_RECOVERED, f"not recovered within {budget.give_up_after:.0f}s"
    problems = []
    if budget.ttr.max is not None and ttr > budget.ttr.max:
        problems.append(f"TTR {ttr:.1f}s > max {budget.ttr.max:.0f}s")
    if detect is not None and budget.detect.max is not None and detect > budget.detect.max:
        problems.append(f"time to detect {detect:.1f}s > max {budget.detect.max:.0f}s")
    if problems:
        return Verdict.BREACH, "; ".join(problems)
    return Verdict.PASS, f"TTR {ttr:.1f}s within {budget.ttr.max}s"


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]
