"""reports/summary.json: one entry per scenario run, the gate's input and CI's machine-readable result.

The file is a JSON list. Each entry is RunResult.summary_entry() plus the test's node id: the evidence the
judge needs (assertions.verdict.evidence_from_entry), the budget, and the verdict they gave:

    {"fault": "selector-change", "family": "workload", "recovery": "operator", "verdict": "pass",
     "reason": "TTR 12.4s within 60s", "ttr_seconds": 12.4, "detect_seconds": 1.2, "measured_from": "injected",
     "phases": {"visible": 1.2, "recovered": 11.2}, "proven": true, "data_violations": [], "invalid": [],
     "harness_errors": [], "foreign_activity": [], "notes": [], "not_recovered_detail": "",
     "budget": {"ttr": {"max": 60, "p95": null}, "detect": {"max": 30, "p95": null}, "wait": 120},
     "baselines": ["none"], "repeat": 1, "provider": "local", "signature": "immutable-field", "test": "...",
     "plan": "c42d7584a28541c3", "run_seconds": 41.2, "host": {"workers": 2, "cpus": 2, "cpu_busy": 0.93},
     "cluster_lock": {"mode": "shared", "waited_seconds": 0.0, "others": 0}}

With monitoring an entry also has `alerts` (assertions.alerts: what paged for the run and when, what was due and
never paged), checked by its criterion like every measurement beyond TTR.

Required: fault, recovery, verdict (pass|breach|not-recovered|invalid), ttr_seconds (number or null), phases
(phase -> seconds), proven and data_violations (so a re-judged run can never lose its proof or its data check);
the other keys are checked when present. Numbers must be finite (NaN and Infinity are refused, in the JSON too).
A bad file is one UserError naming the file, the entry's index and the key.
"""

from __future__ import annotations

import json
import math
import os
import stat
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from assertions import criteria
from assertions.slo import RECOVERY_MODES_BUILTIN
from assertions.verdict import EVIDENCE_LISTS, MEASURED_FROM, Verdict
from foundation import finitejson
from foundation.errors import UserError

VERDICTS: tuple[str, ...] = tuple(v.value for v in Verdict)
REQUIRED: tuple[str, ...] = ("fault", "recovery", "verdict", "ttr_seconds", "phases", "proven", "data_violations")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_seconds(value: Any, where: str, nullable: bool) -> str | None:
    if value is None:
        return None if nullable else f"{where}: expected a number of seconds, got null"
    if not _is_number(value) or value < 0:
        return f"{where}: expected a finite number of seconds >= 0{' or null' if nullable else ''}, got {value!r}"
    return None


def _evidence_problem(entry: dict[str, Any], where: str) -> str | None:
    if not isinstance(entry["proven"], bool):
        return f"{where}.proven: expected true or false, got {entry['proven']!r}"
    for key in (*EVIDENCE_LISTS, "baselines"):
        value = entry.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return f"{where}.{key}: expected a list of strings, got {value!r}"
    for criterion in criteria.CRITERIA:
        problem = criterion.measurement_problem(entry[criterion.key]) if criterion.key in entry else None
        if problem:
            return f"{where}.{criterion.key}: {problem}"
    if entry.get("measured_from", MEASURED_FROM) != MEASURED_FROM:
        return f"{where}.measured_from: times must be measured from {MEASURED_FROM!r}, got {entry['measured_from']!r}"
    return None


def _limit_problem(value: Any, where: str) -> str | None:
    if not isinstance(value, dict):
        return f"{where}: expected a mapping with max and p95, got {value!r}"
    for key in ("max", "p95"):
        problem = _check_seconds(value.get(key), f"{where}.{key}", nullable=True)
        if problem:
            return problem
    return None


def entry_problem(entry: Any, where: str) -> str | None:
    """What is wrong with one summary entry (None when it is well-formed)."""
    if not isinstance(entry, dict):
        return f"{where}: expected an object, got {type(entry).__name__}"
    for key in REQUIRED:
        if key not in entry:
            return f"{where}: missing key {key!r} (required: {', '.join(REQUIRED)})"
    for key in ("fault", "recovery"):
        if not isinstance(entry[key], str) or not entry[key]:
            return f"{where}.{key}: expected a non-empty string, got {entry[key]!r}"
    if entry["verdict"] not in VERDICTS:
        return f"{where}.verdict: expected one of {', '.join(VERDICTS)}, got {entry['verdict']!r}"
    for key in ("ttr_seconds", "detect_seconds"):
        problem = _check_seconds(entry.get(key), f"{where}.{key}", nullable=True)
        if problem:
            return problem
    if entry["verdict"] in ("pass", "breach") and entry["ttr_seconds"] is None:
        return f"{where}: verdict {entry['verdict']} needs a ttr_seconds number (only not-recovered/invalid have null)"
    phases = entry["phases"]
    if not isinstance(phases, dict):
        return f"{where}.phases: expected a mapping of phase -> seconds, got {phases!r}"
    for phase, seconds in phases.items():
        problem = _check_seconds(seconds, f"{where}.phases.{phase}", nullable=False)
        if problem:
            return problem
    problem = _evidence_problem(entry, where)
    if problem:
        return problem
    for key in ("family", "reason", "provider", "test", "not_recovered_detail", "plan"):
        if key in entry and not isinstance(entry[key], str):
            return f"{where}.{key}: expected a string, got {entry[key]!r}"
    problem = _check_seconds(entry.get("run_seconds"), f"{where}.run_seconds", nullable=True)
    if problem:
        return problem
    for key in ("host", "cluster_lock"):
        if key in entry and not isinstance(entry[key], dict):
            return f"{where}.{key}: expected a mapping, got {entry[key]!r}"
    if "signature" in entry and entry["signature"] is not None and not isinstance(entry["signature"], str):
        return f"{where}.signature: expected a string or null, got {entry['signature']!r}"
    if "repeat" in entry and (not isinstance(entry["repeat"], int) or isinstance(entry["repeat"], bool)):
        return f"{where}.repeat: expected a whole number, got {entry['repeat']!r}"
    budget = entry.get("budget")
    if budget is not None:
        if not isinstance(budget, dict):
            return f"{where}.budget: expected a mapping, got {budget!r}"
        for key in ("ttr", "detect"):
            if key in budget:
                problem = _limit_problem(budget[key], f"{where}.budget.{key}")
                if problem:
                    return problem
        problem = _check_seconds(budget.get("wait"), f"{where}.budget.wait", nullable=True)
        if problem:
            return problem
    return None


def validate(data: Any, source: str) -> list[dict[str, Any]]:
    """The entries of a parsed summary, or a UserError naming source, index and key of the first problem."""
    if not isinstance(data, list):
        raise UserError(f"{source}: expected a JSON list of run entries, got {type(data).__name__}")
    for index, entry in enumerate(data):
        problem = entry_problem(entry, f"[{index}]")
        if problem:
            raise UserError(f"{source}: {problem}")
    return data


def read(path: Path | str) -> list[dict[str, Any]]:
    """Read and validate a summary file."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise UserError(
            f"{path}: no such summary file; run the chaos suite first (make chaos) or pass --summary FILE"
        ) from None
    except OSError as e:
        raise UserError(f"{path}: cannot read the summary ({e.strerror})") from e
    try:
        data = finitejson.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: not valid JSON at line {e.lineno} column {e.colno}: {e.msg}") from e
    except ValueError as e:
        raise UserError(f"{path}: {e}; a summary holds finite numbers only") from e
    try:
        json.dumps(data, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        raise UserError(
            f"{path}: holds a string that is not valid text (a lone surrogate escape such as \\ud800, which "
            "cannot be printed or written); fix or regenerate the file"
        ) from None
    return validate(data, str(path))


def recorded_baselines(entries: Iterable[Mapping[str, Any]]) -> tuple[str, ...]:
    """The baseline recovery modes the chaos suite ran with, as recorded in its entries."""
    return tuple(sorted({str(b) for e in entries for b in e.get("baselines") or ()}))


def sort_key(entry: Mapping[str, Any]) -> tuple[str, int, str, int, str]:
    """Stable order: by fault, recovery mode (builtin order first), repeat, test id."""
    recovery = str(entry["recovery"])
    return (
        str(entry["fault"]),
        recovery_rank(recovery),
        recovery,
        int(entry.get("repeat") or 0),
        str(entry.get("test") or ""),
    )


def recovery_rank(recovery: str) -> int:
    """Recovery modes in their natural order: none, flux-native, operator, then anything else."""
    return RECOVERY_MODES_BUILTIN.index(recovery) if recovery in RECOVERY_MODES_BUILTIN else len(RECOVERY_MODES_BUILTIN)


def write(path: Path | str, entries: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Validate, sort and write entries atomically (a reader never sees half a file); returns what was written."""
    path = Path(path)
    data = validate([dict(e) for e in entries], "summary entries")
    data.sort(key=sort_key)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n")
    return data


def write_text_atomic(path: Path, text: str) -> None:
    """Write a file by rename, so concurrent readers see the old or the new content, never a mix.

    The file gets the mode a plain write would give it (the existing file's, else 0666 less the umask), not the
    0600 of the temporary file."""
    mode = _mode_for(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            os.fchmod(f.fileno(), mode)
            f.write(text)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _mode_for(path: Path) -> int:
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        umask = os.umask(0o022)  # reading the umask means setting it: set it straight back
        os.umask(umask)
        return 0o666 & ~umask
