"""The baseline store: fresh baseline runs kept under their key, reused while the key holds and they are young.

One file per cell, `<store>/<fault>/<mode>/r<repeat>.json` (assertions.schema.StoredBaseline): the run's summary
entry, its key and the key's parts (injectors.baseline_key), when and on which run it was measured. A cell is
reused when its file holds the key computed now and is younger than the maximum age; otherwise it is measured and
the file replaced, only by a valid, proven run. A file that does not read strictly is one warning naming it, and
the cell is measured. The directory is plain files: CI keeps it as an artifact and puts it back before the run.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from assertions import schema
from foundation.errors import HarnessError, UserError
from injectors.baseline_key import changes, key_of

TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
DEFAULT_MAX_AGE = "7d"


class BaselineStoreWarning(UserWarning):
    """A store file that cannot be used: its cell is measured again."""


def utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(TIME_FORMAT)


def parse_utc(text: str) -> datetime:
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC)


@dataclass(frozen=True)
class Lookup:
    """What the store holds for a cell: the entry to reuse (with its `reused` record), or why it is measured."""

    entry: dict[str, Any] | None
    why: str


@dataclass(frozen=True)
class BaselineStore:
    root: Path
    max_age: float  # seconds
    fresh: bool = False  # --fresh-baselines: measure every baseline (and store it)

    def path(self, fault: str, mode: str, repeat: int) -> Path:
        return self.root / fault / mode / f"r{repeat}.json"

    def lookup(self, fault: str, mode: str, repeat: int, parts: Mapping[str, Any], now: datetime) -> Lookup:
        """The stored run of this cell when its key is the one computed now and it is young enough."""
        if self.fresh:
            return Lookup(None, "--fresh-baselines")
        path = self.path(fault, mode, repeat)
        if not path.is_file():
            return Lookup(None, "not in the store")
        try:
            stored, raw = read(path)
        except UserError as e:
            warnings.warn(BaselineStoreWarning(f"baseline store: {e}; measuring the cell again"), stacklevel=2)
            return Lookup(None, f"unreadable store file {path}")
        key = key_of(parts)
        if stored.key != key or key_of(raw["parts"]) != stored.key:
            what = changes(raw["parts"], parts) or ["the stored key does not match its parts"]
            return Lookup(None, f"key changed: {'; '.join(what)}")
        age = (now - parse_utc(stored.measured_at)).total_seconds()
        if age > self.max_age:
            return Lookup(None, f"measured {stored.measured_at}, older than {self.max_age:.0f}s")
        if age < 0:
            return Lookup(None, f"measured {stored.measured_at}, in the future")
        reused = {"key": key, "parts": dict(parts), "measured_at": stored.measured_at, "run": stored.run}
        entry = {**raw["entry"], "reused": {**reused, "store": str(self.root)}}
        return Lookup(entry, f"reused: measured {stored.measured_at} on run {stored.run}")

    def keep(self, entry: Mapping[str, Any], parts: Mapping[str, Any], run: str, now: datetime) -> Path:
        """Store a fresh, judged baseline run under its key (the caller stores valid, proven runs only)."""
        record = {
            "version": 1,
            "key": key_of(parts),
            "parts": dict(parts),
            "measured_at": utc(now),
            "run": run,
            "entry": dict(entry),
        }
        problem = schema.stored_problem(record)
        if problem:
            raise HarnessError(f"a baseline run makes a bad store record: {problem}")
        path = self.path(str(entry["fault"]), str(entry["recovery"]), int(entry["repeat"]))
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(json.dumps(record, indent=2, sort_keys=True, allow_nan=False) + "\n")
            Path(tmp).replace(path)  # readers (other workers, shards) see the old file or the new one
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path


def read(path: Path) -> tuple[schema.StoredBaseline, dict[str, Any]]:
    """A store file, strictly read and validated, and its JSON as written (a reused entry is carried over exactly
    as measured); UserError naming the file and the key of the first problem."""
    stored, raw = schema.read_stored_baseline(path)
    entry = stored.entry
    cell = (path.parent.parent.name, path.parent.name, path.name)
    if cell != (entry.fault, entry.recovery, f"r{entry.repeat}.json") or entry.recovery != stored.parts.mode.name:
        raise UserError(f"{path}: holds {entry.fault} x {entry.recovery} r{entry.repeat}, not the cell it is filed as")
    return stored, raw
