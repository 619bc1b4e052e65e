"""Recovery patterns: the design's format, validated on load with errors naming the bad pattern, and matching.

A pattern's error_pattern is searched (case-insensitive, `.` matches newlines) in the one-line subject
`<Kind> <Reason>: <message>` of each failing condition; the first pattern that matches wins. Fields beyond
the design's (name, kinds, conditions, reasons, retry_interval, stuck_for, description) are optional.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from fluxmodel.kinds import RECONCILED_KINDS
from fluxmodel.signatures import NamedObject, failing_objects
from recovery.errors import PatternError
from recovery.health import Failure
from recovery.regexsafe import SafeRegex, UnsafeRegex, compile_safe

ACTION_NAMES: tuple[str, ...] = (
    "recreate_resource",
    "recreate_deployment",
    "rollback_helm_release",
    "reset_helm_release",
    "reconcile_dependents",
    "rollback_to_last_good_revision",
    "escalate",
)
FLUX_KINDS = tuple(k.kind for k in RECONCILED_KINDS)
CONFIGMAP_NAME = "flux-recovery-config"
CONFIGMAP_KEY = "recovery-patterns.yaml"
MAX_RETRIES_LIMIT = 100
_KIND = re.compile(r"^[A-Z][A-Za-z0-9]{0,62}$")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_FIELDS = (
    "name",
    "error_pattern",
    "recovery_action",
    "max_retries",
    "applies_to",
    "cleanup_dependencies",
    "validation_required",
    "kinds",
    "conditions",
    "reasons",
    "retry_interval",
    "stuck_for",
    "description",
)


@dataclass(frozen=True)
class Pattern:
    """One validated pattern."""

    name: str
    error_pattern: str
    recovery_action: str
    regex: SafeRegex = field(repr=False, compare=False)
    max_retries: int = 3
    applies_to: tuple[str, ...] = ()
    cleanup_dependencies: bool = False
    validation_required: bool = False
    kinds: tuple[str, ...] = ()
    conditions: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    retry_interval: float = 5.0
    stuck_for: float = 0.0
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The pattern in the design's YAML format (optional fields only when set)."""
        out: dict[str, Any] = {
            "name": self.name,
            "error_pattern": self.error_pattern,
            "recovery_action": self.recovery_action,
            "max_retries": self.max_retries,
        }
        for key in ("applies_to", "kinds", "conditions", "reasons"):
            if getattr(self, key):
                out[key] = list(getattr(self, key))
        for key in ("cleanup_dependencies", "validation_required"):
            if getattr(self, key):
                out[key] = True
        out["retry_interval"] = f"{self.retry_interval:g}s"
        if self.stuck_for:
            out["stuck_for"] = f"{self.stuck_for:g}s"
        if self.description:
            out["description"] = self.description
        return out


@dataclass(frozen=True)
class Match:
    """A pattern matched one failure of an object: where in the subject, and the objects the message names."""

    pattern: Pattern
    failure: Failure
    subject: str
    span: tuple[int, int]
    targets: tuple[NamedObject, ...]

    @property
    def matched_text(self) -> str:
        return self.subject[self.span[0] : self.span[1]]


@dataclass(frozen=True)
class PatternSet:
    """Patterns in priority order, and where they came from (for messages and the explain output)."""

    patterns: tuple[Pattern, ...]
    source: str

    def match(self, kind: str, failures: Iterable[Failure]) -> Match | None:
        """The first pattern (in order) that matches any of the failures of an object of `kind`."""
        failures = list(failures)
        for pattern in self.patterns:
            found = match_one(pattern, kind, failures)
            if found is not None:
                return found
        return None


def match_one(pattern: Pattern, kind: str, failures: Sequence[Failure]) -> Match | None:
    if pattern.kinds and kind not in pattern.kinds:
        return None
    for failure in failures:
        if pattern.conditions and failure.condition and failure.condition not in pattern.conditions:
            continue
        if pattern.reasons and failure.reason and failure.reason not in pattern.reasons:
            continue
        subject = failure.subject(kind)
        span = pattern.regex.search(subject)
        if span is None:
            continue
        targets = tuple(failing_objects(failure.message))
        if pattern.applies_to:
            allowed = set(pattern.applies_to)
            named = tuple(t for t in targets if t.kind in allowed)
            if not named and kind not in allowed:
                continue
            targets = named
        return Match(pattern, failure, subject, span, targets)
    return None


def parse(text: str, source: str) -> PatternSet:
    """Patterns from YAML text (`patterns: [...]` or a bare list); PatternError names every bad pattern."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise PatternError(f"{source}: not valid YAML: {_one_line(str(e))}") from e
    if isinstance(doc, Mapping):
        unknown = sorted(set(doc) - {"patterns"})
        if unknown:
            raise PatternError(
                f"{source}: unknown top-level key(s) {', '.join(map(str, unknown))}: expected `patterns`"
            )
        doc = doc.get("patterns")
    if not isinstance(doc, list) or not doc:
        raise PatternError(f"{source}: expected `patterns:` with a non-empty list of patterns")
    patterns: list[Pattern] = []
    problems: list[str] = []
    for index, entry in enumerate(doc):
        try:
            patterns.append(_pattern(entry, index))
        except _Invalid as e:
            problems.append(str(e))
    names = [p.name for p in patterns]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"pattern name {name!r} is used more than once: names must be unique")
    if problems:
        more = f" (and {len(problems) - 1} more: {'; '.join(problems[1:])})" if len(problems) > 1 else ""
        raise PatternError(f"{source}: {problems[0]}{more}")
    return PatternSet(tuple(patterns), source)


class _Invalid(ValueError):
    pass


def _pattern(entry: Any, index: int) -> Pattern:
    label = f"pattern {index}"
    if not isinstance(entry, Mapping):
        raise _Invalid(f"{label}: expected a mapping with error_pattern and recovery_action, got {entry!r:.60}")
    if isinstance(entry.get("name"), str) and entry["name"]:
        label = f"pattern {index} ({entry['name']!r})"
    elif isinstance(entry.get("error_pattern"), str):
        label = f"pattern {index} (error_pattern {entry['error_pattern']!r:.60})"
    for key in entry:
        if key not in _FIELDS:
            hint = difflib.get_close_matches(str(key), _FIELDS, n=1)
            raise _Invalid(f"{label}: unknown field {key!r}" + (f"; did you mean {hint[0]!r}?" if hint else ""))
    error_pattern = entry.get("error_pattern")
    if not isinstance(error_pattern, str) or not error_pattern:
        raise _Invalid(f"{label}: error_pattern is required (a regular expression)")
    try:
        regex = compile_safe(error_pattern)
    except UnsafeRegex as e:
        raise _Invalid(f"{label}: error_pattern {error_pattern!r:.80}: {e}") from e
    action = entry.get("recovery_action")
    if action not in ACTION_NAMES:
        hint = difflib.get_close_matches(str(action), ACTION_NAMES, n=1)
        raise _Invalid(
            f"{label}: recovery_action {action!r} is not one of {', '.join(ACTION_NAMES)}"
            + (f"; did you mean {hint[0]!r}?" if hint else "")
        )
    max_retries = entry.get("max_retries", 3)
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or not 0 <= max_retries <= MAX_RETRIES_LIMIT:
        raise _Invalid(f"{label}: max_retries must be an integer from 0 to {MAX_RETRIES_LIMIT}, got {max_retries!r}")
    kinds = _kinds(entry, "kinds", label)
    for kind in kinds:
        if kind not in FLUX_KINDS:
            raise _Invalid(f"{label}: kinds lists {kind!r}; Flux kinds are {', '.join(FLUX_KINDS)}")
    return Pattern(
        name=str(entry.get("name") or f"pattern-{index}"),
        error_pattern=error_pattern,
        recovery_action=str(action),
        regex=regex,
        max_retries=max_retries,
        applies_to=_kinds(entry, "applies_to", label),
        cleanup_dependencies=_flag(entry, "cleanup_dependencies", label),
        validation_required=_flag(entry, "validation_required", label),
        kinds=kinds,
        conditions=_strings(entry, "conditions", label),
        reasons=_strings(entry, "reasons", label),
        retry_interval=_duration(entry, "retry_interval", label, 5.0),
        stuck_for=_duration(entry, "stuck_for", label, 0.0),
        description=str(entry.get("description") or ""),
    )


def _strings(entry: Mapping[str, Any], key: str, label: str) -> tuple[str, ...]:
    value = entry.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _Invalid(f"{label}: {key} must be a list of names, got {value!r:.60}")
    return tuple(value)


def _kinds(entry: Mapping[str, Any], key: str, label: str) -> tuple[str, ...]:
    kinds = _strings(entry, key, label)
    for kind in kinds:
        if not _KIND.match(kind):
            raise _Invalid(f"{label}: {key} lists {kind!r}, which is not a Kind (like Deployment)")
    return kinds


def _flag(entry: Mapping[str, Any], key: str, label: str) -> bool:
    value = entry.get(key, False)
    if not isinstance(value, bool):
        raise _Invalid(f"{label}: {key} must be true or false, got {value!r:.40}")
    return value


def _duration(entry: Mapping[str, Any], key: str, label: str, default: float) -> float:
    value = entry.get(key)
    if value is None:
        return default
    if isinstance(value, bool):
        raise _Invalid(f"{label}: {key} must be seconds or a duration like 30s or 2m, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value).strip())
        if not match:
            raise _Invalid(f"{label}: {key} must be seconds or a duration like 30s or 2m, got {value!r:.40}")
        seconds = float(match.group(1)) * _UNIT[match.group(2)]
    if not 0 <= seconds <= 86400:
        raise _Invalid(f"{label}: {key} must be between 0s and 24h, got {value!r}")
    return seconds


def _one_line(text: str) -> str:
    return " ".join(text.split())
