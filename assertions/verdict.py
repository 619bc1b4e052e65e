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
        ttr, detect = self.timeline.ttr, self.timeline.time_to_detect
        if ttr is None:
            self.verdict = Verdict.NOT_RECOVERED
            self.reason = self.reason or f"not recovered within {self.budget.give_up_after:.0f}s"
            return self.verdict
        problems = []
        if self.budget.ttr.max is not None and ttr > self.budget.ttr.max:
            problems.append(f"TTR {ttr:.1f}s > max {self.budget.ttr.max:.0f}s")
        if detect is not None and self.budget.detect.max is not None and detect > self.budget.detect.max:
            problems.append(f"time to detect {detect:.1f}s > max {self.budget.detect.max:.0f}s")
        self.verdict = Verdict.BREACH if problems else Verdict.PASS
        self.reason = "; ".join(problems) or f"TTR {ttr:.1f}s within {self.budget.ttr.max}s"
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


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]
