"""Recovery SLOs: a YAML file of budgets per fault (and per recovery), defaults, and run profiles.

The file is validated completely before any cluster is touched; a bad file is one UserError naming the file,
the key path and the problem. Budget lookup: scenarios.FAULT.recoveries.RECOVERY > scenarios.FAULT > defaults.

    defaults:
      ttr: {max: 180, p95: 120}      # seconds from injection to steady state (any run / 95th percentile)
      detect: {max: 30}              # seconds from injection until the fault was detected
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

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from assertions import criteria, load_profiles
from assertions.load_profiles import LoadProfile
from foundation import strictread
from foundation.errors import UserError

# Bounds of what an SLO file may say: a week of seconds, a thousand repeats (a larger number is a typo, and
# `repeat: 1000000000` would plan a matrix that never ends).
MAX_SECONDS = 7 * 24 * 3600.0
MAX_REPEAT = 1000

RECOVERY_MODES_BUILTIN = ("none", "flux-native", "operator", "staged")
# A user's own recovery: a command beside the cluster, or a manifest applied into it (scenarios.recoveries).
RECOVERY_MODES_EXTERNAL = {"command:": "command:<cmd>", "manifest:": "manifest:<path>"}
RECOVERY_MODES_HELP = ", ".join([*RECOVERY_MODES_BUILTIN, *RECOVERY_MODES_EXTERNAL.values()])


def is_recovery_name(name: str) -> bool:
    """A built-in mode, or an external one with its command or path (`command:` alone names nothing)."""
    return name in RECOVERY_MODES_BUILTIN or any(
        name.startswith(prefix) and name != prefix for prefix in RECOVERY_MODES_EXTERNAL
    )


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
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "ttr": {"max": self.ttr.max, "p95": self.ttr.p95},
            "detect": {"max": self.detect.max, "p95": self.detect.p95},
            "wait": None if self.wait is None and self.ttr.max is None else self.give_up_after,
            **self.measures,
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
    return replace(
        budget,
        ttr=Limit(ttr.get("max", budget.ttr.max), ttr.get("p95", budget.ttr.p95)),
        detect=Limit(detect.get("max", budget.detect.max), detect.get("p95", budget.detect.p95)),
        wait=raw.get("wait", budget.wait),
        measures=measures,
    )


class _Checker:
    """Walks the raw YAML and raises one UserError naming the file and key path of the first problem."""

    def __init__(self, path: str):
        self.path = path

    def fail(self, where: str, problem: str) -> UserError:
        return UserError(f"{self.path}: {where}: {problem}")

    def mapping(self, value: Any, where: str, allowed: Iterable[str] | None = None) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(where or "top level", f"expected a mapping, got {type(value).__name__}")
        if allowed is not None:
            allowed = tuple(allowed)
            for key in value:
                if key not in allowed:
                    raise self.fail(
                        f"{where}.{key}" if where else str(key), f"unknown key (expected {', '.join(allowed)})"
                    )
        return value

    def seconds(self, value: Any, where: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= MAX_SECONDS:
            raise self.fail(
                where, f"expected a finite positive number of seconds, got {value!r} (at most {MAX_SECONDS:.0f})"
            )
        return float(value)

    def limit(self, value: Any, where: str) -> None:
        raw = self.mapping(value, where, ("max", "p95"))
        for key, number in raw.items():
            self.seconds(number, f"{where}.{key}")
        if "max" in raw and "p95" in raw and raw["p95"] > raw["max"]:
            raise self.fail(where, f"p95 ({raw['p95']}) is larger than max ({raw['max']})")

    def budget(self, value: Any, where: str, extra: tuple[str, ...] = ()) -> None:
        measured = criteria.by_key()
        raw = self.mapping(value, where, ("ttr", "detect", "wait", *measured, *extra))
        for key in ("ttr", "detect"):
            if key in raw:
                self.limit(raw[key], f"{where}.{key}")
        if "wait" in raw:
            self.seconds(raw["wait"], f"{where}.wait")
        for key, criterion in measured.items():
            problem = criterion.budget_problem(raw[key]) if key in raw else None
            if problem:
                raise self.fail(f"{where}.{key}", problem)

    def name(self, item: str, where: str, known: tuple[str, ...], what: str) -> None:
        """A fault or recovery name; recoveries may also be command:<cmd> or manifest:<path>."""
        if item not in known and not (what == "recovery" and is_recovery_name(item)):
            raise self.fail(where, f"unknown {what} {item!r} (known: {', '.join(known)})")

    def names(self, value: Any, where: str, known: Iterable[str], what: str) -> tuple[str, ...]:
        known = tuple(known)
        if value == "all":
            return tuple(known)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(where, f"expected a list of {what} names or 'all', got {value!r}")
        for item in value:
            self.name(item, where, known, what)
        return tuple(value)


def _baselines(check: _Checker, value: Any, where: str, recoveries: tuple[str, ...]) -> tuple[str, ...]:
    """A profile's baseline modes: a non-empty list that leaves at least one of its modes gated."""
    where = f"{where}.baselines"
    if not isinstance(value, list) or not value:
        raise check.fail(where, f"expected a non-empty list of recovery names, got {value!r}")
    baselines = check.names(value, where, RECOVERY_MODES_BUILTIN, "recovery")
    if set(recoveries) <= set(baselines):
        raise check.fail(
            where,
            f"names every recovery mode of the profile ({', '.join(recoveries)}): nothing would be gated; "
            "leave the modes under test out",
        )
    return baselines


def parse(raw: Any, path: str, known_faults: Iterable[str]) -> SloFile:
    """Validate and build an SloFile from parsed YAML."""
    known_faults = tuple(known_faults)
    check = _Checker(path)
    top = check.mapping(raw, "", ("version", "defaults", "profiles", "scenarios", "load_profiles", "noise"))
    if top.get("version", 1) != 1:
        raise check.fail("version", f"unsupported version {top['version']!r} (this harness reads version 1)")
    check.budget(top.get("defaults"), "defaults")
    defaults = _overlay(Budget(), top.get("defaults") or {})  # Budget() holds no number: all come from the file
    loads = load_profiles.parse(top.get("load_profiles"), check.fail)
    profiles: dict[str, Profile] = {}
    for name, raw_profile in check.mapping(top.get("profiles"), "profiles").items():
        where = f"profiles.{name}"
        body = check.mapping(raw_profile, where, ("repeat", "recoveries", "faults", "monitoring", "load", "baselines"))
        repeat = body.get("repeat", 1)
        if isinstance(repeat, bool) or not isinstance(repeat, int) or not 1 <= repeat <= MAX_REPEAT:
            raise check.fail(f"{where}.repeat", f"expected a whole number >= 1, got {repeat!r} (at most {MAX_REPEAT})")
        recoveries = check.names(
            body.get("recoveries", ["operator"]), f"{where}.recoveries", RECOVERY_MODES_BUILTIN, "recovery"
        )
        faults = body.get("faults", "all")
        fault_names = None if faults == "all" else check.names(faults, f"{where}.faults", known_faults, "fault")
        monitoring = body.get("monitoring", False)
        if not isinstance(monitoring, bool):
            raise check.fail(f"{where}.monitoring", f"expected true or false, got {monitoring!r}")
        load = body.get("load", load_profiles.NONE)
        if load != load_profiles.NONE and load not in loads:
            known = ", ".join([load_profiles.NONE, *loads])
            raise check.fail(f"{where}.load", f"unknown load profile {load!r} (load_profiles: {known})")
        baselines = _baselines(check, body["baselines"], where, recoveries) if "baselines" in body else None
        profiles[name] = Profile(str(name), repeat, recoveries, fault_names, monitoring, str(load), baselines)
    scenarios = check.mapping(top.get("scenarios"), "scenarios")
    for fault, body in scenarios.items():
        where = f"scenarios.{fault}"
        if fault not in known_faults:
            raise check.fail(where, f"unknown fault (known: {', '.join(known_faults)})")
        check.budget(body, where, ("recoveries",))
        for recovery, override in check.mapping((body or {}).get("recoveries"), f"{where}.recoveries").items():
            check.name(str(recovery), f"{where}.recoveries.{recovery}", RECOVERY_MODES_BUILTIN, "recovery")
            check.budget(override, f"{where}.recoveries.{recovery}")
    if not (top.get("defaults") or scenarios):
        # Budgets nobody wrote would be invented ones: say so rather than judge against them.
        raise check.fail("top level", "no budgets (neither defaults nor scenarios); write the budgets to judge by")
    noise = check.mapping(top.get("noise"), "noise", ("seconds", "fraction"))
    for key, value in noise.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
            raise check.fail(f"noise.{key}", f"expected a finite positive number, got {value!r}")
    margin = NoiseMargin(**{k: float(v) for k, v in noise.items()})
    slo = SloFile(path, defaults, profiles, {str(k): v or {} for k, v in scenarios.items()}, loads, margin)
    # Merged budgets can cross where no single mapping does (defaults p95 80, a fault's max 60).
    for fault, body in slo.scenarios.items():
        for recovery in ("", *(str(r) for r in (body.get("recoveries") or {}))):
            budget = slo.merged(fault, recovery)
            for name, limit in (("ttr", budget.ttr), ("detect", budget.detect)):
                if limit.max is not None and limit.p95 is not None and limit.p95 > limit.max:
                    where = f"scenarios.{fault}" + (f".recoveries.{recovery}" if recovery else "")
                    raise check.fail(
                        where, f"{name} p95 ({limit.p95}) exceeds max ({limit.max}) once merged with the defaults"
                    )
    return slo


def load(path: Path | str, known_faults: Iterable[str]) -> SloFile:
    """Read and validate an SLO file; UserError naming the file for anything wrong with it."""
    path = Path(path)
    try:
        text = strictread.read_text(path)
    except OSError as e:
        raise UserError(f"{path}: cannot read the SLO file ({e.strerror}); pass --slo FILE") from e
    except ValueError as e:
        raise UserError(f"{path}: {e}; an SLO file is UTF-8 YAML") from None
    try:
        raw = strictread.loads_yaml(text)
    except ValueError as e:
        raise UserError(f"{path}: {e}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "somewhere"
        raise UserError(f"{path}: not valid YAML at {where}: {getattr(e, 'problem', e)}") from e
    return parse(raw, str(path), known_faults)
