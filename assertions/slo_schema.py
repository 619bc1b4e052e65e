"""The SLO file's schema (pydantic, strict): what may be written where, checked before any cluster is touched.

assertions.slo builds its typed budgets and profiles from a file only after `validate` accepted it. Each model is
closed (an unknown key is refused, naming the keys it may have), a missing mapping (`defaults:` with nothing under
it) is an empty one, and values are checked with the words the harness has always used for them ("expected a
finite positive number of seconds, got 0"), so every refusal is one line with the key path. Fault names are
checked against the catalog the caller passes as validation context.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BeforeValidator, Field, ValidationError, ValidationInfo, model_validator

from assertions import criteria
from assertions.load_criterion import GROUPS
from assertions.load_profiles import MAX_TEAMS, MAX_WORKERS
from assertions.load_profiles import NONE as NO_LOAD
from assertions.modes import RECOVERY_MODES_BUILTIN, is_recovery_name
from assertions.schema import MAX_REPEAT, MAX_SECONDS, Strict, problem
from assertions.timeline import BUDGETED_PHASES
from foundation.errors import UserError


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _positive_seconds(value: Any) -> Any:
    if not _is_number(value) or not 0 < value <= MAX_SECONDS:
        raise ValueError(f"expected a finite positive number of seconds, got {value!r} (at most {MAX_SECONDS:.0f})")
    return value  # as written: a message shows what the file says


def _seconds(zero: bool) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        ok = _is_number(value) and (value >= 0 if zero else value > 0) and value <= MAX_SECONDS
        if not ok:
            raise ValueError(f"expected a finite number of seconds {'>= 0' if zero else '> 0'}, got {value!r}")
        return float(value)

    return check


def _whole(low: int, high: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"expected a whole number from {low} to {high}, got {value!r}")
        return value

    return check


def _mapping(value: Any) -> Any:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"expected a mapping, got {type(value).__name__}")
    return value


Seconds = Annotated[Any, AfterValidator(_positive_seconds)]


class Closed(Strict):
    """A mapping of the SLO file: None reads as empty, an unknown key is refused naming the keys allowed."""

    # The keys in the order the messages list them (the fields, unless a model says otherwise).
    keys: ClassVar[tuple[str, ...]] = ()
    # Required keys with what to write there (a plain "missing key" otherwise).
    required: ClassVar[dict[str, str]] = {}

    @classmethod
    def allowed(cls) -> tuple[str, ...]:
        return cls.keys or tuple(cls.model_fields)

    @model_validator(mode="before")
    @classmethod
    def _closed(cls, value: Any) -> Any:
        value = _mapping(value)
        allowed = cls.allowed()
        for key in value:
            if key not in allowed:
                raise ValueError(f"{key}: unknown key (expected {', '.join(allowed)})")
        for key, what in cls.required.items():
            if key not in value:
                raise ValueError(f"missing {key} ({what})")
        return value


class LimitIn(Closed):
    max: Seconds = None
    p95: Seconds = None

    @model_validator(mode="after")
    def _ordered(self) -> LimitIn:
        if self.max is not None and self.p95 is not None and self.p95 > self.max:
            shown = {k: v for k, v in self.model_dump().items() if k in self.model_fields_set}
            raise ValueError(f"p95 ({shown['p95']}) is larger than max ({shown['max']})")
        return self


class PhaseLimitIn(Closed):
    """A phase's budget: its max only (one run's phase; nothing judges a phase's p95)."""

    required: ClassVar[dict[str, str]] = {"max": "seconds the phase may take at most"}

    max: Seconds


class BudgetIn(Closed):
    """Budgets: TTR, detection, the wait, the phases that have one (assertions.timeline.BUDGETED_PHASES), and each
    criterion's under its key (its own checks, assertions.criteria)."""

    model_config = Strict.model_config | {"extra": "allow"}

    ttr: LimitIn | None = None
    detect: LimitIn | None = None
    wait: Seconds = None
    serving: PhaseLimitIn | None = None
    reporting: PhaseLimitIn | None = None
    next_commit: PhaseLimitIn | None = None

    @classmethod
    def allowed(cls) -> tuple[str, ...]:
        return ("ttr", "detect", "wait", *BUDGETED_PHASES, *criteria.by_key())

    @model_validator(mode="after")
    def _criteria(self) -> BudgetIn:
        measured = self.model_extra or {}
        for key, criterion in criteria.by_key().items():
            if key in measured:
                found = criterion.budget_problem(measured[key])
                if found:
                    raise ValueError(f"{key}: {found}")
        return self


def _recovery_name(name: Any) -> str:
    if not isinstance(name, str) or not is_recovery_name(name):
        raise ValueError(f"unknown recovery {name!r} (known: {', '.join(RECOVERY_MODES_BUILTIN)})")
    return name


def _load_profile_name(name: str) -> str:
    if name == NO_LOAD:
        raise ValueError(f"{NO_LOAD!r} means no load and cannot be defined")
    return name


def _version(value: Any) -> Literal[1]:
    if value != 1 or isinstance(value, bool):
        raise ValueError(f"unsupported version {value!r} (this harness reads version 1)")
    return 1


RecoveryName = Annotated[str, AfterValidator(_recovery_name)]
LoadProfileName = Annotated[str, AfterValidator(_load_profile_name)]


class ScenarioIn(BudgetIn):
    @classmethod
    def allowed(cls) -> tuple[str, ...]:
        return (*BudgetIn.allowed(), "recoveries")

    recoveries: Annotated[dict[RecoveryName, BudgetIn], BeforeValidator(_mapping)] = Field(default_factory=dict)


def _names(value: Any, known: Iterable[str], what: str) -> tuple[str, ...] | None:
    """A list of names or 'all' (None); unknown names refused (recoveries may also be command:/manifest:)."""
    known = tuple(known)
    if value == "all":
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"expected a list of {what} names or 'all', got {value!r}")
    for item in value:
        if item not in known and not (what == "recovery" and is_recovery_name(item)):
            raise ValueError(f"unknown {what} {item!r} (known: {', '.join(known)})")
    return tuple(value)


def _repeat(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_REPEAT:
        raise ValueError(f"expected a whole number >= 1, got {value!r} (at most {MAX_REPEAT})")
    return value


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


class ProfileIn(Closed):
    repeat: Annotated[Any, AfterValidator(_repeat)] = 1
    recoveries: Any = Field(default_factory=lambda: ["operator"])
    faults: Any = "all"
    monitoring: Annotated[Any, AfterValidator(_flag)] = False
    load: str = NO_LOAD
    baselines: Any = None

    @model_validator(mode="after")
    def _names(self, info: ValidationInfo) -> ProfileIn:
        try:
            recoveries = _names(self.recoveries, RECOVERY_MODES_BUILTIN, "recovery") or RECOVERY_MODES_BUILTIN
        except ValueError as e:
            raise ValueError(f"recoveries: {e}") from None
        try:
            _names(self.faults, (info.context or {}).get("faults", ()), "fault")
        except ValueError as e:
            raise ValueError(f"faults: {e}") from None
        if "baselines" in self.model_fields_set:
            _baselines(self.baselines, recoveries)
        return self


def _baselines(value: Any, recoveries: tuple[str, ...]) -> None:
    """A profile's baseline modes: a non-empty list that leaves at least one of its modes gated."""
    if not isinstance(value, list) or not value:
        raise ValueError(f"baselines: expected a non-empty list of recovery names, got {value!r}")
    try:
        baselines = _names(value, RECOVERY_MODES_BUILTIN, "recovery") or ()
    except ValueError as e:
        raise ValueError(f"baselines: {e}") from None
    if set(recoveries) <= set(baselines):
        raise ValueError(
            f"baselines: names every recovery mode of the profile ({', '.join(recoveries)}): nothing would be "
            "gated; leave the modes under test out"
        )


class TeamsIn(Closed):
    keys: ClassVar[tuple[str, ...]] = GROUPS

    model_config = Strict.model_config | {"extra": "allow"}

    @model_validator(mode="after")
    def _counts(self) -> TeamsIn:
        counts = {group: (self.model_extra or {}).get(group, 0) for group in GROUPS}
        for group, count in counts.items():
            try:
                _whole(0, MAX_TEAMS)(count)
            except ValueError as e:
                raise ValueError(f"{group}: {e}") from None
        if not sum(counts.values()):
            raise ValueError("no teams: name at least one team in a group")
        return self


class ApiIn(Closed):
    required: ClassVar[dict[str, str]] = {"users": "how many users press on the API server"}

    users: Annotated[Any, AfterValidator(_whole(1, MAX_TEAMS))]
    every: Annotated[Any, AfterValidator(_seconds(zero=False))] = None


class LoadProfileIn(Closed):
    """One of `load_profiles` (assertions.load_profiles builds the LoadProfile, with its defaults for what is left
    out: the numbers live there only)."""

    required: ClassVar[dict[str, str]] = {"teams": f"a mapping of {', '.join(GROUPS)} to a number of teams"}

    teams: TeamsIn
    every: Annotated[Any, AfterValidator(_seconds(zero=False))] = None
    deadline: Annotated[Any, AfterValidator(_seconds(zero=False))] = None
    baseline: Annotated[Any, AfterValidator(_seconds(zero=False))] = None
    after: Annotated[Any, AfterValidator(_seconds(zero=True))] = None
    api: ApiIn | None = None
    workers: Annotated[Any, AfterValidator(_whole(0, MAX_WORKERS))] = None


def _noise_value(value: Any) -> float:
    if not _is_number(value) or not 0 < value < float("inf"):
        raise ValueError(f"expected a finite positive number, got {value!r}")
    return float(value)


class NoiseIn(Closed):
    seconds: Annotated[Any, AfterValidator(_noise_value)] = None
    fraction: Annotated[Any, AfterValidator(_noise_value)] = None


class SloFileIn(Closed):
    """The whole file."""

    version: Annotated[Any, AfterValidator(_version)] = 1
    defaults: BudgetIn | None = None
    profiles: Annotated[dict[str, ProfileIn], BeforeValidator(_mapping)] = Field(default_factory=dict)
    scenarios: Annotated[dict[str, ScenarioIn], BeforeValidator(_mapping)] = Field(default_factory=dict)
    load_profiles: Annotated[dict[LoadProfileName, LoadProfileIn], BeforeValidator(_mapping)] = Field(
        default_factory=dict
    )
    noise: NoiseIn | None = None

    @model_validator(mode="after")
    def _references(self, info: ValidationInfo) -> SloFileIn:
        known = tuple((info.context or {}).get("faults", ()))
        for fault in self.scenarios:
            if fault not in known:
                raise ValueError(f"scenarios.{fault}: unknown fault (known: {', '.join(known)})")
        for name, profile in self.profiles.items():
            if profile.load != NO_LOAD and profile.load not in self.load_profiles:
                names = ", ".join([NO_LOAD, *self.load_profiles])
                raise ValueError(
                    f"profiles.{name}.load: unknown load profile {profile.load!r} (load_profiles: {names})"
                )
        return self


def validate(raw: Any, path: str, known_faults: Iterable[str]) -> SloFileIn:
    """The file, validated; UserError `<path>: <key path>: <problem>` for the first thing wrong."""
    try:
        return SloFileIn.model_validate(raw, context={"faults": tuple(known_faults)})
    except ValidationError as e:
        raise UserError(f"{path}: {problem(e)}") from None
