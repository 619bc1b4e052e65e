"""The manifest beside a summary: what a chaos session was meant to cover, so that a lost or doubled shard can
never read as PASS.

summary.json says what ran; `<summary stem>.manifest.json` (out/summary.manifest.json) says what should have:
the run id, the profile, the shard (I of N) and the whole planned matrix of every shard, one row per cell
(fault, recovery, repeat, shard, test node id), with the plan's digest (scenarios.sharding) and, for planned
tests that left no run, their pytest outcome (skipped, error). The chaos suite writes it at the end of every
session (the reports plugin, from the `pytest_resilience_plan` hook); each entry of the summary carries the
plan's digest in `plan`, so entries are never judged against another run's manifest, nor without one.

Merging (`resilience gate`/`report` with several summaries) puts the shards side by side: they must be of one run
(id, profile, shard count, plan digest). `coverage_problems` is the completeness check: every shard 1..N exactly
once, every planned cell (and, with `--profile`, every cell of the SLO file's profile) with exactly one run, no
run outside the plan. Any problem makes the gate fail as incomplete.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError

from assertions import schema
from foundation import strictread
from foundation.errors import UserError
from reports import summary
from reports.summary import write_text_atomic

VERSION = 1
SUFFIX = ".manifest.json"
# How many missing or doubled cells a problem line names before it counts the rest.
SHOWN = 8

Key = tuple[str, str, int]


def path_for(summary_path: Path) -> Path:
    """Where the manifest of a summary lives: beside it, `<stem>.manifest.json`."""
    return summary_path.with_name(summary_path.stem + SUFFIX)


@dataclass(frozen=True)
class Row:
    """One planned cell: a fault under a recovery mode, the repeat-th time, in one shard, run by one test."""

    fault: str
    recovery: str
    repeat: int
    shard: int
    test: str

    @property
    def key(self) -> Key:
        return (self.fault, self.recovery, self.repeat)


@dataclass(frozen=True)
class Manifest:
    """One session's manifest, or several shards' merged (then `shards` lists each shard present)."""

    shard_count: int
    shards: tuple[int, ...]
    run: str | None = None
    profile: str | None = None
    slo: str | None = None
    digest: str | None = None
    matrix: tuple[Row, ...] | None = None  # None: the session never planned (it did not collect)
    outcomes: Mapping[str, str] = field(default_factory=dict)
    sources: tuple[str, ...] = ()
    mismatches: tuple[str, ...] = ()  # found while merging: shards of different runs or plans

    def to_json(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "run": self.run,
            "profile": self.profile,
            "slo": self.slo,
            "shard": {"count": self.shard_count, "indexes": list(self.shards)},
            "digest": self.digest,
            "matrix": None
            if self.matrix is None
            else [[r.fault, r.recovery, r.repeat, r.shard, r.test] for r in self.matrix],
            "outcomes": dict(sorted(self.outcomes.items())),
        }


def from_plan(plan: Mapping[str, Any], outcomes: Mapping[str, str]) -> Manifest:
    """The manifest of a session from the plan the chaos suite announced (scenarios.hooks.pytest_resilience_plan)."""
    index, count = plan.get("shard") or (1, 1)
    rows = plan.get("matrix")
    matrix = None if rows is None else tuple(Row(str(f), str(r), int(k), int(s), str(t)) for f, r, k, s, t in rows)
    tests = {row.test for row in matrix or ()}
    return Manifest(
        shard_count=int(count),
        shards=(int(index),),
        run=None if plan.get("run") is None else str(plan["run"]),
        profile=plan.get("profile"),
        slo=plan.get("slo"),
        digest=plan.get("digest"),
        matrix=matrix,
        outcomes={test: why for test, why in outcomes.items() if test in tests},
    )


def write(path: Path, manifest: Manifest) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(manifest.to_json(), indent=2) + "\n")


MAX_SHARDS = 1000
MAX_CELLS = 1_000_000


def _fail(path: Path, problem: str) -> UserError:
    return UserError(f"{path}: {problem}; it is written by the chaos suite beside its summary: regenerate it")


Count = Annotated[int, Field(ge=1, le=MAX_SHARDS)]


class _Shard(schema.Strict):
    count: Count
    indexes: list[Count]


class _Schema(schema.Strict):
    """The manifest file as written by `Manifest.to_json`."""

    version: Literal[1]
    shard: _Shard
    run: schema.Text | None = None
    profile: schema.Text | None = None
    slo: schema.Text | None = None
    digest: schema.Text | None = None
    matrix: (
        Annotated[
            list[tuple[schema.FaultName, schema.Name, Annotated[int, Field(ge=1, le=schema.MAX_REPEAT)], Count, str]],
            Field(max_length=MAX_CELLS),
        ]
        | None
    ) = None
    outcomes: dict[str, schema.Text] = Field(default_factory=dict)


def parse(data: Any, path: Path) -> Manifest:
    """A Manifest from parsed JSON; UserError naming the file and the key of the first problem."""
    if not isinstance(data, dict) or data.get("version") != VERSION:
        raise _fail(path, f"not a version {VERSION} manifest")
    try:
        raw = _Schema.model_validate(_tuples(data))
    except ValidationError as e:
        raise _fail(path, schema.problem(e)) from None
    count = raw.shard.count
    bad = [i for i in raw.shard.indexes if i > count]
    if bad:
        raise _fail(path, f"shard.indexes: expected shards from 1 to {count}, got {raw.shard.indexes!r}")
    matrix = None
    if raw.matrix is not None:
        if raw.digest is None:
            raise _fail(path, "digest: a planned matrix needs the plan's digest (null would skip the plan check)")
        for i, (_, _, _, shard, _) in enumerate(raw.matrix):
            if shard > count:
                raise _fail(path, f"matrix[{i}]: shard {shard} is outside 1..{count}")
        matrix = tuple(Row(*row) for row in raw.matrix)
    return Manifest(
        count, tuple(raw.shard.indexes), raw.run, raw.profile, raw.slo, raw.digest, matrix, dict(raw.outcomes),
        (str(path),),
    )  # fmt: skip


def _tuples(data: dict[str, Any]) -> dict[str, Any]:
    """JSON has no tuples: the matrix rows are lists, validated as fixed-length rows."""
    rows = data.get("matrix")
    if isinstance(rows, list):
        return {**data, "matrix": [tuple(r) if isinstance(r, list) else r for r in rows]}
    return data


def read(path: Path) -> Manifest | None:
    """The manifest at `path`, None when there is none; UserError when it is unreadable or malformed."""
    if not path.exists():
        return None
    try:
        data = strictread.load(path, "manifest")
    except UserError as e:
        raise _fail(path, str(e).removeprefix(f"{path}: ")) from None
    return parse(data, path)


def merge(manifests: Sequence[Manifest]) -> Manifest:
    """Shards side by side; what does not fit together (another run, profile, count or plan) is a mismatch."""
    first = manifests[0]
    mismatches = [m for manifest in manifests for m in manifest.mismatches]
    for name in ("run", "profile", "shard_count", "digest"):
        values = list(dict.fromkeys(getattr(m, name) for m in manifests))
        if len(values) > 1:
            shown = ", ".join(repr(v) for v in values)
            mismatches.append(f"the summaries are not shards of one planned run: {name} differs ({shown})")
    planned = [m for m in manifests if m.matrix is not None]
    matrix = planned[0].matrix if planned else None
    for other in planned[1:]:
        if set(other.matrix or ()) != set(matrix or ()):
            mismatches.append(
                f"the summaries are not shards of one planned run: the matrix differs between "
                f"{planned[0].sources[0] if planned[0].sources else 'one manifest'} and "
                f"{other.sources[0] if other.sources else 'another'} (each shard records the whole plan)"
            )
            break
    outcomes: dict[str, str] = {}
    for manifest in manifests:
        outcomes.update(manifest.outcomes)
    return Manifest(
        shard_count=max(m.shard_count for m in manifests),
        shards=tuple(i for m in manifests for i in m.shards),
        run=first.run,
        profile=first.profile,
        slo=first.slo,
        digest=first.digest,
        matrix=matrix,
        outcomes=outcomes,
        sources=tuple(s for m in manifests for s in m.sources),
        mismatches=tuple(dict.fromkeys(mismatches)),
    )


def entry_key(entry: Mapping[str, Any]) -> Key:
    return (str(entry["fault"]), str(entry["recovery"]), int(entry.get("repeat") or 1))


def key_text(key: Key) -> str:
    return f"{key[0]} x {key[1]} r{key[2]}"


def _listed(keys: Sequence[str]) -> str:
    more = f" and {len(keys) - SHOWN} more" if len(keys) > SHOWN else ""
    return ", ".join(keys[:SHOWN]) + more


def _shard_problems(manifest: Manifest) -> list[str]:
    count = manifest.shard_count
    seen = Counter(manifest.shards)
    problems = []
    missing = [i for i in range(1, count + 1) if seen[i] == 0]
    if missing:
        shards = ", ".join(f"{i}/{count}" for i in missing)
        problems.append(f"shard(s) {shards} missing: no summary given for them (a lost CI job?)")
    doubled = [i for i in sorted(seen) if seen[i] > 1]
    if doubled:
        shards = ", ".join(f"{i}/{count} ({seen[i]} times)" for i in doubled)
        problems.append(f"shard(s) {shards} given more than once: each shard's summary counts once")
    if manifest.matrix is None:
        problems.append("no plan recorded: a session ended before collecting its tests (see its log)")
    return problems


def _why_missing(key: Key, manifest: Manifest | None, rows: Mapping[Key, Row]) -> str:
    if manifest is None or manifest.matrix is None:
        return key_text(key)
    row = rows.get(key)
    if row is None:
        return key_text(key) + " (not in the plan)"
    if row.shard not in manifest.shards:
        return f"{key_text(key)} (shard {row.shard}/{manifest.shard_count} missing)"
    outcome = manifest.outcomes.get(row.test)
    return f"{key_text(key)} ({outcome})" if outcome else key_text(key)


def coverage_problems(
    entries: Sequence[Mapping[str, Any]], manifest: Manifest | None, expected: Iterable[Key] | None = None
) -> list[str]:
    """Why the runs given do not cover the matrix exactly once ([] when they do).

    The matrix is `expected` (a profile's cells, from the SLO file) when given, else the manifest's plan; with
    neither there is nothing to check against."""
    problems: list[str] = []
    if manifest is not None:
        problems += list(manifest.mismatches) + _shard_problems(manifest)
        stamped = Counter(str(e.get("plan")) for e in entries if e.get("plan") != manifest.digest)
        if stamped and manifest.digest is not None:
            plans = ", ".join(f"{plan} ({n} run(s))" for plan, n in stamped.items())
            problems.append(f"runs of another plan than the manifest's {manifest.digest}: {plans}")
    wanted: Counter[Key] | None = None
    if expected is not None:
        wanted = Counter(expected)
    elif manifest is not None and manifest.matrix is not None:
        wanted = Counter(row.key for row in manifest.matrix)
    if wanted is None:
        return problems
    ran = Counter(entry_key(e) for e in entries)
    missing = sorted(key for key in wanted if ran[key] < wanted[key])
    doubled = sorted(key for key in ran if key in wanted and ran[key] > wanted[key])
    extra = sorted(key for key in ran if key not in wanted)
    if missing:
        rows: dict[Key, Row] = {}
        for row in (manifest.matrix or ()) if manifest is not None else ():
            rows.setdefault(row.key, row)
        shown = [_why_missing(key, manifest, rows) for key in missing[:SHOWN]]
        shown += [key_text(key) for key in missing[SHOWN:]]
        problems.append(f"{len(missing)} cell(s) of the matrix without a run: {_listed(shown)}")
    if doubled:
        shown = [f"{key_text(key)} ({ran[key]} runs)" for key in doubled]
        problems.append(f"{len(doubled)} cell(s) with more runs than planned (a doubled shard?): {_listed(shown)}")
    if extra:
        problems.append(f"{len(extra)} run(s) outside the matrix: {_listed([key_text(k) for k in extra])}")
    return problems


def load_runs(paths: Sequence[Path], need_budgets: bool = False) -> tuple[list[dict[str, Any]], Manifest | None]:
    """The entries of every summary, and their manifests merged (None when no summary has one). With
    `need_budgets` (no SLO file to judge by), every entry must have recorded the budget it was judged against.

    A summary whose entries name a plan needs its manifest: without it, what the run was meant to cover is
    unknown, and a lost shard could pass unnoticed."""
    entries: list[dict[str, Any]] = []
    found: list[tuple[Path, Manifest | None]] = []
    for path in paths:
        runs = summary.read(path)
        unbudgeted = [i for i, e in enumerate(runs) if e.get("budget") is None] if need_budgets else []
        if unbudgeted:
            raise UserError(
                f"{path}: [{unbudgeted[0]}]: no budget recorded with the run; judge it against an SLO file with "
                "--slo FILE (no budget is invented)"
            )
        planned = read(path_for(path))
        if planned is None and any(e.get("plan") for e in runs):
            raise UserError(
                f"{path}: its runs come from a planned session but its manifest {path_for(path)} is "
                "missing; keep the manifest beside the summary (in CI, upload both)"
            )
        entries += runs
        found.append((path, planned))
    with_manifest = [p for p, m in found if m is not None]
    without = [p for p, m in found if m is None]
    if with_manifest and without:
        raise UserError(
            f"{without[0]}: no manifest beside it, while {with_manifest[0]} has one; merge shards of one run only"
        )
    manifests = [m for _, m in found if m is not None]
    return entries, merge(manifests) if manifests else None
