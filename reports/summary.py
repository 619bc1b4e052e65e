"""out/summary.json: one entry per scenario run, the gate's input and CI's machine-readable result.

The file is a JSON list. Each entry is RunResult.summary_entry(), the one builder (the run's file under
runs/<run>/results/ holds the same entry): the evidence the judge needs (assertions.verdict.evidence_from_entry),
the budget, the verdict they gave, the test and plan it belongs to, where and how long it ran:

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

The schema is assertions.schema.SummaryEntry (strict: unknown and duplicate keys refused, no coercion, finite
and bounded numbers); the file is read by foundation.strictread. A bad file is one UserError naming the file, the
entry's index and the key. Every reader of summaries (the gate, the report, the shard planner, the benchmarks)
goes through `read`.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from assertions.modes import RECOVERY_MODES_BUILTIN
from assertions.schema import entry_problem, validate_entries
from assertions.schema import read_summary as read
from assertions.verdict import Verdict

# The one reader and its checks live with the schema (assertions.schema), below every reader of summaries.
__all__ = [
    "VERDICTS",
    "entry_problem",
    "read",
    "recorded_baselines",
    "sort_key",
    "validate",
    "write",
    "write_text_atomic",
]
validate = validate_entries
VERDICTS: tuple[str, ...] = tuple(v.value for v in Verdict)


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
