"""Strict schemas (pydantic, strict mode) for what the gate reads: a summary entry and the budget it recorded.

Strict means: unknown keys refused (a misspelt `data_violation` is not ignored), no coercion (a string is not a
number, 1e9 is not a repeat count, true is not a second), numbers finite and bounded, names free of control
characters. `problem` turns pydantic's error into the one line the CLIs print: the key path and what is wrong.
The criteria (assertions.criteria) keep the shapes of their own sections and are called from here, so a budget
or measurement recorded in an entry is checked exactly as the SLO file's is.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from assertions import criteria
from foundation import strictread
from foundation.errors import UserError

MAX_TEXT = 100_000
VERDICTS: tuple[str, ...] = ("pass", "breach", "not-recovered", "invalid")
MEASURED_FROM = "injected"

# Bounds of what any file the gate reads may say: a week of seconds, a thousand repeats (a larger number is a
# typo, and `repeat: 1000000000` would plan a matrix that never ends).
MAX_SECONDS = 7 * 24 * 3600.0
MAX_REPEAT = 1000

Seconds = Annotated[float, Field(ge=0, le=MAX_SECONDS, allow_inf_nan=False)]
PositiveSeconds = Annotated[float, Field(gt=0, le=MAX_SECONDS, allow_inf_nan=False)]
# A fault's name is a catalog name (DNS-label-like); printed in tables, so no room for a forged line.
FaultName = Annotated[str, Field(pattern=r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$")]
# Recovery modes include `command:<cmd>` and `manifest:<path>`: any printable text.
Name = Annotated[str, Field(min_length=1, max_length=4096, pattern=r"^[^\x00-\x1f\x7f]+$")]
Text = Annotated[str, Field(max_length=MAX_TEXT)]
PhaseName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,253}$")]


class Strict(BaseModel):
    """Frozen, strict, closed: the base of every schema the gate reads."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    def to_json(self) -> dict[str, Any]:
        """The JSON object it stands for, optional keys left out when unknown."""
        return self.model_dump(mode="json", exclude_none=True)


class Limit(Strict):
    max: PositiveSeconds | None = None
    p95: PositiveSeconds | None = None


class TtrLimit(Strict):
    """The TTR budget a run was judged against: its max is required (a null max would read "within no max")."""

    max: PositiveSeconds
    p95: PositiveSeconds | None = None


def _criteria_sections(extra: Mapping[str, Any] | None, fields: tuple[str, ...], budget: bool) -> None:
    """The keys beyond a model's fields are the criteria's sections (assertions.criteria), each checked by its
    criterion (a budget or a measurement); any other key is unknown."""
    sections = criteria.by_key()
    for key, value in (extra or {}).items():
        if key not in sections:
            raise ValueError(f"{key}: unknown key (known: {', '.join(sorted((*fields, *sections)))})")
        criterion = sections[key]
        found = criterion.budget_problem(value) if budget else criterion.measurement_problem(value)
        if found:
            raise ValueError(f"{key}: {found}")


class PhaseLimit(Strict):
    """A phase's budget (assertions.timeline.BUDGETED_PHASES): its max."""

    max: PositiveSeconds


class RecordedBudget(Strict):
    """The budget a run recorded (assertions.slo.Budget.to_json), with the phases' and the criteria's beside it."""

    model_config = ConfigDict(strict=True, extra="allow", frozen=True)

    ttr: TtrLimit
    detect: Limit = Limit()
    wait: PositiveSeconds
    serving: PhaseLimit | None = None
    reporting: PhaseLimit | None = None
    next_commit: PhaseLimit | None = None

    @model_validator(mode="after")
    def _criteria(self) -> RecordedBudget:
        _criteria_sections(self.model_extra, tuple(type(self).model_fields), budget=True)
        return self


class NextCommit(Strict):
    """The `next_commit` measurement: when the good commit after recovery was pushed (seconds from the injection),
    and how long Flux took to apply it and report Ready (null: not within the wait)."""

    pushed_at: Seconds
    taken_after: Seconds | None


class Host(Strict):
    workers: Annotated[int, Field(ge=1, le=1024)]
    cpus: Annotated[int, Field(ge=1, le=4096)]
    cpu_busy: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] | None = None


class ClusterLock(Strict):
    mode: Literal["own", "shared", "exclusive"]
    waited_seconds: Seconds
    others: Annotated[int, Field(ge=0, le=100_000)]


class Reconcilers(Strict):
    """Which Flux controller processes reconciled a run's objects, and which of them stopped during it
    (clusters.reconcilers): the proof the isolation check of a sharded mode needs (assertions.isolation)."""

    # The mode whose own controllers must reconcile the run (flux-tuned), or None: the default controllers.
    shard: Name | None = None
    controllers: dict[Name, Annotated[int, Field(ge=0, le=1_000_000_000)]]
    stops: list[Text] = []


# A baseline store's key (injectors.baseline_key): a sha256 in hex; its parts' digests are shorter.
Digest = Annotated[str, Field(pattern=r"^[0-9a-f]{16,64}$")]
# When a baseline was measured: UTC, to the second.
UtcTime = Annotated[str, Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$")]


class Definition(Strict):
    """A fault or a recovery mode as a baseline's key names it: its name and a digest of its definition."""

    name: Name
    digest: Digest


class Measure(Strict):
    """What a run measured beside its time: alerts (monitoring), and the load it ran under."""

    monitoring: bool
    load: Name | None
    load_settings: Digest | None


class BaselineKeyParts(Strict):
    """Everything a baseline run depends on (injectors.baseline_key); the key is their digest."""

    pins: dict[Name, Name]
    fault: Definition
    mode: Definition
    slo: RecordedBudget
    provider: Name
    measure: Measure


class Reused(Strict):
    """A summary entry carried over from the baseline store instead of being measured again: its key, when and on
    which run it was measured, and the store it came from."""

    key: Digest
    parts: BaselineKeyParts
    measured_at: UtcTime
    run: Name
    store: Text


class WaitEnded(Strict):
    """Why a run's recovery wait ended, seconds from the injection (assertions.decided): `recovered`; `decided`, cut
    short once nothing still to come could change the verdict (a not-recovered TTR known only to exceed `after`);
    `gave-up`, at the budget's give-up time."""

    by: Literal["recovered", "decided", "gave-up"]
    after: Seconds
    detail: Text = ""

    def text(self) -> str:
        """`ended: recovered at 12.0s`, `ended: verdict decided at 65s (...)`, `ended: give-up wait 540s`."""
        if self.by == "recovered":
            return f"ended: recovered at {self.after:.1f}s"
        if self.by == "decided":
            return f"ended: verdict decided at {self.after:.0f}s ({self.detail})"
        return f"ended: give-up wait {self.after:.0f}s"


class SummaryEntry(Strict):
    """One entry of summary.json, as assertions.verdict.RunResult.summary_entry builds it."""

    model_config = ConfigDict(strict=True, extra="allow", frozen=True)

    fault: FaultName
    recovery: Name
    verdict: str
    ttr_seconds: Seconds | None
    phases: dict[PhaseName, Seconds]
    proven: bool
    data_violations: list[Text]
    family: Text = ""
    reason: Text = ""
    detect_seconds: Seconds | None = None
    # Seconds from the injection to each phase reached (serving, reporting, next-commit are judged from here).
    since_injected: dict[PhaseName, Seconds] = {}
    next_commit: NextCommit | None = None
    measured_from: str = MEASURED_FROM
    budget: RecordedBudget | None = None
    invalid: list[Text] = []
    harness_errors: list[Text] = []
    foreign_activity: list[Text] = []
    notes: list[Text] = []
    not_recovered_detail: Text = ""
    baselines: list[Name] = []
    repeat: Annotated[int, Field(ge=1, le=MAX_REPEAT)] = 1
    provider: Text = ""
    signature: Text | None = None
    test: Text = ""
    plan: Text = ""
    run_seconds: Seconds | None = None
    host: Host | None = None
    cluster_lock: ClusterLock | None = None
    reconcilers: Reconcilers | None = None
    reused: Reused | None = None
    wait_ended: WaitEnded | None = None

    @model_validator(mode="after")
    def _consistent(self) -> SummaryEntry:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict: expected one of {', '.join(VERDICTS)}, got {self.verdict!r}")
        if self.measured_from != MEASURED_FROM:
            raise ValueError(
                f"measured_from: times must be measured from {MEASURED_FROM!r}, got {self.measured_from!r}"
            )
        if self.verdict in ("pass", "breach") and self.ttr_seconds is None:
            raise ValueError(
                f"verdict {self.verdict} needs a ttr_seconds number (only not-recovered/invalid have null)"
            )
        _criteria_sections(self.model_extra, tuple(type(self).model_fields), budget=False)
        return self


class StoredBaseline(Strict):
    """One file of the baseline store: a fresh baseline run's entry under its key (a reused entry is never stored)."""

    version: Literal[1]
    key: Digest
    parts: BaselineKeyParts
    measured_at: UtcTime
    run: Name
    entry: SummaryEntry

    @model_validator(mode="after")
    def _fresh(self) -> StoredBaseline:
        if self.entry.reused is not None:
            raise ValueError("entry.reused: a reused entry is never stored again")
        return self


REQUIRED: tuple[str, ...] = tuple(n for n, f in SummaryEntry.model_fields.items() if f.is_required())


def _path(loc: tuple[int | str, ...]) -> str:
    # pydantic marks an error in a mapping's key with a "[key]" step: the key itself is the path.
    parts = [p for p in loc if p != "[key]"]
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in parts).lstrip(".")


def _join(prefix: str, path: str) -> str:
    return f"{prefix}.{path}" if prefix and path and not path.startswith("[") else prefix + path


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def problem(error: ValidationError, prefix: str = "") -> str:
    """The first problem of a validation error as one line: `<prefix><key path>: <what is wrong>`."""
    first = error.errors(include_url=False)[0]
    loc = tuple(first["loc"])
    kind, message = first["type"], str(first["msg"])
    where = _join(prefix, _path(loc))
    if kind == "missing":
        parent = _join(prefix, _path(loc[:-1]))
        return f"{parent or 'top level'}: missing key {loc[-1]!r}"
    if kind == "extra_forbidden":
        return f"{where}: unknown key"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return f"{where or 'top level'}: expected an object, got {type(first['input']).__name__}"
    if kind == "value_error":
        # A validator may name a key below where it stands ("verdict: expected one of ..."): a relative path.
        message = message.removeprefix("Value error, ")
        head, sep, rest = message.partition(": ")
        if sep and " " not in head:
            return f"{_join(where, head)}: {rest}"
        return f"{where or 'top level'}: {message}"
    return f"{where or 'top level'}: {message[0].lower() + message[1:]}, got {_shown(first['input'])}"


def entry_problem(entry: Any, where: str) -> str | None:
    """What is wrong with one summary entry (None when it is well-formed), by the strict schema."""
    try:
        SummaryEntry.model_validate(entry)
    except ValidationError as e:
        return problem(e, where)
    return None


def validate_entries(data: Any, source: str) -> list[dict[str, Any]]:
    """The entries of a parsed summary, or a UserError naming source, index and key of the first problem."""
    if not isinstance(data, list):
        raise UserError(f"{source}: expected a JSON list of run entries, got {type(data).__name__}")
    for index, entry in enumerate(data):
        problem = entry_problem(entry, f"[{index}]")
        if problem:
            raise UserError(f"{source}: {problem}")
    return data


def read_summary(path: Path | str) -> list[dict[str, Any]]:
    """Read and validate a summary file."""
    path = Path(path)
    data = strictread.load(
        path, "summary file", missing="run the chaos suite first (make chaos) or pass --summary FILE"
    )
    try:
        json.dumps(data, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        raise UserError(
            f"{path}: holds a string that is not valid text (a lone surrogate escape such as \\ud800, which "
            "cannot be printed or written); fix or regenerate the file"
        ) from None
    return validate_entries(data, str(path))


def stored_problem(record: Any, where: str = "") -> str | None:
    """What is wrong with one baseline store record (None when it is well-formed), by the strict schema."""
    try:
        StoredBaseline.model_validate(record)
    except ValidationError as e:
        return problem(e, where)
    return None


def read_stored_baseline(path: Path) -> tuple[StoredBaseline, dict[str, Any]]:
    """A baseline store file, strictly read and validated, and its JSON as written; UserError naming the file and
    the key of the first problem."""
    data = strictread.load(path, "baseline store file")
    try:
        return StoredBaseline.model_validate(data), data
    except ValidationError as e:
        raise UserError(f"{path}: {problem(e)}") from None
