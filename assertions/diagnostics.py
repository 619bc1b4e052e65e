"""What a run shows only in its report (Allure attachments): evidence for a reader, never judged, never in the
summary entry."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass
class Diagnostics:
    """Filled in by the runner as the run goes; None where the run never got that far."""

    proof: Any = None  # the fault's independent evidence that it happened (FaultContext.state["proof"])
    flux_before: list[dict[str, Any]] | None = None  # the run's Flux objects with their status, when steady
    flux_after: list[dict[str, Any]] | None = None  # ... and after the recovery
    logs: dict[str, str] | None = None  # controller log lines that mention the run's app, per component
    events: list[dict[str, Any]] | None = None  # the timeline's events
    reached: dict[str, list[str]] | None = None  # which objects carried the bad revision, per stage
    controllers: dict[str, list[str]] | None = None  # command lines of the Flux controllers the run depends on


@dataclass(frozen=True)
class LoadDiagnostics:
    """What the load measured beside its criterion: the chart's series, locust's report files, its CPU use."""

    series: Mapping[str, Any]
    files: Mapping[str, str]  # label -> path
    baseline_cpu: Mapping[str, float]  # over the baseline window (steady state, start-up excluded)
    whole_life_cpu: Mapping[str, float]  # start-up included

    @property
    def cpu(self) -> dict[str, Any]:
        return {"baseline": dict(self.baseline_cpu), "whole_life": dict(self.whole_life_cpu)}
