"""A measurement beyond time-to-recover that the one judge weighs: load, alerts, how far a bad revision got.

Each criterion owns one key, the same in three places: the SLO file's budgets (`defaults`, `scenarios.FAULT`,
`scenarios.FAULT.recoveries.MODE`, merged like `ttr`), a run's `Evidence.measurements`, and its summary entry.
It validates both sides (a bad budget or entry is one line naming the key path) and turns a measurement and its
budget into problems; the judge makes a run with problems a breach. Nothing is judged on a side path.
Criteria are listed in assertions.criteria.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar


class Criterion(ABC):
    """One measured key, its budget, and how the two are judged."""

    key: ClassVar[str]
    # A baseline mode may miss it as it may miss its time budget (load and alerts under Flux alone); False when
    # missing it is never excused (a bad revision that reached production).
    excusable: ClassVar[bool] = True

    @abstractmethod
    def budget_problem(self, raw: Any) -> str | None:
        """What is wrong with the budget as written in an SLO file (None when it is valid)."""

    @abstractmethod
    def measurement_problem(self, value: Any) -> str | None:
        """What is wrong with a measurement as recorded in a summary entry (None when it is well-formed)."""

    @abstractmethod
    def problems(self, measured: Any, budget: Any | None) -> list[str]:
        """Why the measurement misses its budget (None: no budget was written); [] when it does not."""

    def notes(self, measured: Any) -> list[str]:
        """What the judge reports about the measurement without it changing the verdict (e.g. alert noise)."""
        return []

    def describe(self, measured: Any) -> str:
        """The measurement for people, one line (`reached: canary 2, production 0`), for tables and reports."""
        if isinstance(measured, dict):
            return f"{self.key}: " + ", ".join(f"{k} {v}" for k, v in measured.items())
        return f"{self.key}: {measured}"

    def merge(self, outer: Any, inner: Any) -> Any:
        """A budget overlaid by a more specific one (scenario over defaults): mappings merge one level."""
        if isinstance(outer, dict) and isinstance(inner, dict):
            return {**outer, **inner}
        return inner
