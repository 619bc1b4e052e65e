"""Recovery SLOs: a YAML file of budgets per fault (and per recovery), defaults, and run profiles.

The file is validated completely before any cluster is touched; a bad file is one UserError naming the file,
the key path and the problem. Budget lookup: scenarios.FAULT.recoveries.RECOVERY > scenarios.FAULT > defaults.

    defaults:
      ttr: {max: 180, p95: 120}      # seconds from injection to steady state (any run / 95th percentile)
      detect: {max: 30}              # seconds from injection until the fault was detected
      serving: {max: 30}             # optional: seconds from injection until the app serves a good revision
      reporting: {max: 60}           # optional: ... until Flux's status tells the truth about what runs
      next_commit: {max: 60}         # optional: seconds from the push of a good commit after recovery to taken
      wait: 360                      # give up (verdict not-recovered) after this many seconds
      alerts: {FluxKustomizationStuck: {max: 480}}   # seconds from injection to the page (with monitoring)
    profiles:
      quick: {repeat: 1, recoveries: [operator], faults: all}
      nightly: {repeat: 3, recoveries: [none, operator], faults: all, monitoring: true, load: light}
    load_profiles:                   # teams delivering during each fault (assertions.load_profiles)
      light: {teams: {same-source: 3, other-source: 3}, every: 10, deadline: 60}
    scenarios:
      selector-change:
        ttr: {max: 60}
        recoveries:
          none: {ttr: {max: 600}}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from assertions import criteria, load_profiles, slo_schema
from assertions.load_profiles import LoadProfile
from assertions.modes import RECOVERY_MODES_BUILTIN
from assertions.timeline import BUDGETED_PHASES
from foundation import strictread
from foundation.errors import UserError


@dataclass(frozen=True)
class Limit:
    """A budget in seconds: `max` for any single run, `p95` over repeated runs (optional)."""

    max: float | None = None
    p95: float | None = None


@dataclass(frozen=True)
class Budget:
    """What one fault x recovery is judged against; every number comes from an SLO file, none is invented."""

    ttr: Limit = Limit()
    detect: Limit = Limit()
    wait: float | None = None
    # Budgets of the other criteria (assertions.criteria), by key, as written in the SLO file.
    measures: Mapping[str, Any] = field(default_factory=dict)
    # The max seconds of the phases the file budgets (assertions.timeline.BUDGETED_PHASES), by their key there; a
    # phase left out is recorded, not judged.
    phases: Mapping[str, float] = field(default_factory=dict)

    @property
    def give_up_after(self) -> float:
        """How long a scenario waits for recovery before the verdict is not-recovered."""
        if self.wait is not None:
            return self.wait
        if self.ttr.max is None:
            raise UserError("a budget without ttr.max has no wait either: write ttr.max (or wait) in the SLO file")
        return 2 * self.ttr.max

    @classmethod
    def from_json(cls, raw: Mapping[str, Any] | None) -> Budget:
        """The Budget a summary entry recorded (to_json; validated by assertions.schema.RecordedBudget first)."""
        raw = raw or {}
        ttr, detect = raw.get("ttr") or {}, raw.get("detect") or {}
        return cls(
            ttr=Limit(ttr.get("max"), ttr.get("p95")),
            detect=Limit(detect.get("max"), detect.get("p95")),
            wait=raw.get("wait"),
            measures={key: raw[key] for key in criteria.by_key() if key in raw},
            phases={key: raw[key]["max"] for key in BUDGETED_PHASES if raw.get(key)},
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "ttr": {"max": self.ttr.max, "p95": self.ttr.p95},
            "detect": {"max": self.detect.max, "p95": self.detect.p95},
            "wait": None if self.wait is None and self.ttr.max is None else self.give_up_after,
            **self.measures,
            **{key: {"max": limit} for key, limit in self.phases.items()},
        }


@dataclass(frozen=True)
class Profile:
    name: str
    repeat: int = 1
    recoveries: tuple[str, ...] = ("operator",)
    faults: tuple[str, ...] | None = None  # None: every fault in the catalog
    # Run Prometheus and Alertmanager beside the cluster (local provider), judging the runs' alerts too.
    monitoring: bool = False
    load: str = load_profiles.NONE  # a load profile of the file, or none (the loadgen package)
    # Recovery modes run for comparison: a missed budget is shown, not gated (a lost or unproven run still fails).
    # None: the harness's default (Flux alone).
    baselines: tuple[str, ...] | None = None


@dataclass(frozen=True)
class NoiseMargin:
    """How far a cell's TTR may move between runs and still be noise: the larger of `seconds` and `fraction` of
    the reference TTR. A run on a loaded host (parallel workers) that moved further is noted, never re-judged."""

    seconds: float = 5.0
    fraction: float = 0.25

    def margin(self, reference: float) -> float:
        return max(self.seconds, self.fraction * reference)


@dataclass(frozen=True)
class SloFile:
    path: str
    defaults: Budget = Budget()
    profiles: dict[str, Profile] = field(default_factory=dict)
    scenarios: dict[str, dict[str, Any]] = field(default_factory=dict)
    load_profiles: dict[str, LoadProfile] = field(default_factory=dict)
    noise: NoiseMargin = NoiseMargin()

    def budget(self, fault: str, recovery: str) -> Budget:
        """The budget for one fault under one recovery mode; UserError naming the cell when the file gives it no
        TTR budget (a cell is never judged against a number nobody wrote)."""
        budget = self.merged(fault, recovery)
        if budget.ttr.max is None:
            raise UserError(
                f"{self.path}: no budget for {fault} under {recovery}: neither defaults.ttr.max nor "
                f"scenarios.{fault}.ttr.max is set; write the budget to judge it by"
            )
        return budget

    def merged(self, fault: str, recovery: str) -> Budget:
        """defaults < scenarios.FAULT < scenarios.FAULT.recoveries.RECOVERY, as written (nothing required)."""
        scenario = self.scenarios.get(fault) or {}
        budget = _overlay(self.defaults, scenario)
        return _overlay(budget, (scenario.get("recoveries") or {}).get(recovery) or {})

    def profile(self, name: str) -> Profile:
        try:
            return self.profiles[name]
        except KeyError:
            known = ", ".join(sorted(self.profiles)) or "none defined"
            raise UserError(f"{self.path}: unknown profile {name!r} (profiles: {known})") from None


def _overlay(budget: Budget, raw: Mapping[str, Any]) -> Budget:
    ttr, detect = raw.get("ttr") or {}, raw.get("detect") or {}
    measures = dict(budget.measures)
    for key, criterion in criteria.by_key().items():
        if key in raw:
            measures[key] = criterion.merge(measures.get(key), raw[key]) if key in measures else raw[key]
    phases = {**budget.phases, **{key: raw[key]["max"] for key in BUDGETED_PHASES if key in raw}}
    return replace(
        budget,
        ttr=Limit(ttr.get("max", budget.ttr.max), ttr.get("p95", budget.ttr.p95)),
        detect=Limit(detect.get("max", budget.detect.max), detect.get("p95", budget.detect.p95)),
        wait=raw.get("wait", budget.wait),
        measures=measures,
        phases=phases,
    )


def parse(raw: Any, path: str, known_faults: Iterable[str]) -> SloFile:
    """Validate (assertions.slo_schema) and build an SloFile from parsed YAML."""
    checked = slo_schema.validate(raw, path, known_faults)
    top: dict[str, Any] = raw or {}
    scenarios: dict[str, Any] = top.get("scenarios") or {}
    if not (top.get("defaults") or scenarios):
        # Budgets nobody wrote would be invented ones: say so rather than judge against them.
        raise UserError(
            f"{path}: top level: no budgets (neither defaults nor scenarios); write the budgets to judge by"
        )
    defaults = _overlay(Budget(), top.get("defaults") or {})  # Budget() holds no number: all come from the file
    loads = {str(n): load_profiles.build(str(n), body) for n, body in (top.get("load_profiles") or {}).items()}
    profiles = {str(name): _profile(str(name), profile) for name, profile in checked.profiles.items()}
    margin = NoiseMargin(**{str(k): float(v) for k, v in (top.get("noise") or {}).items()})  # defaults: NoiseMargin
    slo = SloFile(path, defaults, profiles, {str(k): v or {} for k, v in scenarios.items()}, loads, margin)
    # Merged budgets can cross where no single mapping does (defaults p95 80, a fault's max 60).
    for fault, body in slo.scenarios.items():
        for recovery in ("", *(str(r) for r in (body.get("recoveries") or {}))):
            budget = slo.merged(fault, recovery)
            for name, limit in (("ttr", budget.ttr), ("detect", budget.detect)):
                if limit.max is not None and limit.p95 is not None and limit.p95 > limit.max:
                    where = f"scenarios.{fault}" + (f".recoveries.{recovery}" if recovery else "")
                    raise UserError(
                        f"{path}: {where}: {name} p95 ({limit.p95}) exceeds max ({limit.max}) once merged with the "
                        "defaults"
                    )
    return slo


def _profile(name: str, raw: slo_schema.ProfileIn) -> Profile:
    recoveries = tuple(raw.recoveries) if raw.recoveries != "all" else RECOVERY_MODES_BUILTIN
    faults = None if raw.faults == "all" else tuple(raw.faults)
    baselines = tuple(raw.baselines) if raw.baselines is not None else None
    return Profile(name, int(raw.repeat), recoveries, faults, bool(raw.monitoring), raw.load, baselines)


def load(path: Path | str, known_faults: Iterable[str]) -> SloFile:
    """Read and validate an SLO file; UserError naming the file for anything wrong with it."""
    path = Path(path)
    raw = strictread.load(path, "SLO file", yaml_text=True, hint="pass --slo FILE")
    return parse(raw, str(path), known_faults)
