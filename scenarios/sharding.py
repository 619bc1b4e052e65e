"""Shards of the chaos matrix: `--shard I/N` runs one of N disjoint parts of the session's fault x recovery x
repeat cells, so a nightly that outgrows one runner is split across CI runners and merged again by the gate.

The plan is a pure function of the selected cells, N and the durations of earlier runs (`--earlier-runs`, the
summaries of a previous run: `run_seconds` per fault x recovery). Cells are dealt longest first to the least
loaded shard (ties: the lower shard), so every shard computes the same plan on its own runner and each cell lands
in exactly one shard; without durations every cell weighs the same and shards differ by at most one cell. The
plan's digest names its inputs: shards planned from different durations or selections cannot be merged.

What the session is meant to cover (the selected cells, which shard runs which, the profile, the run id) goes to
the reports plugin through the `pytest_resilience_plan` hook; it writes the manifest the gate checks against.
The same earlier runs give each cell its TTR measured alone, against which a run slowed by its neighbours is
noted (scenarios.contention).
Options resolve CLI > environment > default, and are validated in pytest_configure, before any cluster.
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from assertions import schema
from assertions.slo import NoiseMargin
from assertions.verdict import RunResult
from foundation.errors import UserError
from scenarios.contention import neighbour_note

# The earlier runs' summaries feed the shard plan and the TTR reference (scenarios.contention).
EARLIER_RUNS = pytest.StashKey["EarlierRuns"]()
SHARD = pytest.StashKey["Shard"]()
# The plan's digest, which every run of the session records (scenarios.plugin hands it to the runner).
PLAN_DIGEST = pytest.StashKey[str]()
NEIGHBOUR_NOTES = "resilience-neighbour-notes"


@dataclass(frozen=True, order=True)
class Cell:
    """One run the matrix asks for: a fault under a recovery mode, the repeat-th time."""

    fault: str
    recovery: str
    repeat: int


@dataclass(frozen=True)
class Shard:
    index: int  # 1-based
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(value: str, source: str) -> Shard:
    """`I/N` with 1 <= I <= N; a usage error naming where a bad value came from."""
    fix = "use I/N with whole numbers 1 <= I <= N, e.g. --shard 2/3"
    index_text, slash, count_text = value.strip().partition("/")
    try:
        index, count = int(index_text), int(count_text)
    except ValueError:
        index = count = 0
    if not slash or count < 1 or not 1 <= index <= count:
        raise pytest.UsageError(f"Invalid shard {value!r} from {source}: {fix}")
    return Shard(index, count)


@dataclass(frozen=True)
class EarlierRuns:
    """What earlier runs' summaries say per fault x recovery: how long a run took, and its TTRs."""

    sources: tuple[str, ...] = ()
    entries: tuple[Mapping[str, Any], ...] = ()

    def durations(self) -> dict[tuple[str, str], float]:
        """Median wall seconds of a run per (fault, recovery), where recorded."""
        seen: dict[tuple[str, str], list[float]] = {}
        for entry in self.entries:
            seconds = entry.get("run_seconds")
            if isinstance(seconds, int | float) and not isinstance(seconds, bool) and seconds > 0:
                seen.setdefault((str(entry.get("fault")), str(entry.get("recovery"))), []).append(float(seconds))
        return {key: statistics.median(values) for key, values in seen.items()}

    def solo_ttr(self, fault: str, recovery: str) -> float | None:
        """Median TTR of the earlier runs of this cell that ran without neighbours (one worker), if any."""
        ttrs = [
            float(e["ttr_seconds"])
            for e in self.entries
            if e.get("fault") == fault
            and e.get("recovery") == recovery
            and isinstance(e.get("ttr_seconds"), int | float)
            and int((e.get("host") or {}).get("workers", 1)) == 1
        ]
        return statistics.median(ttrs) if ttrs else None


def read_earlier_runs(paths: Sequence[str], source: str) -> EarlierRuns:
    """The entries of earlier summaries (lists of JSON objects); a usage error naming a bad file."""
    entries: list[Mapping[str, Any]] = []
    for path in paths:
        try:
            data = schema.read_summary(path)
        except UserError as e:
            raise pytest.UsageError(f"Invalid earlier runs {path!r} from {source}: {e}") from None
        entries += data
    return EarlierRuns(tuple(str(p) for p in paths), tuple(entries))


def weights(cells: Iterable[Cell], durations: Mapping[tuple[str, str], float]) -> dict[Cell, float]:
    """Each cell's expected length: its fault x recovery's earlier duration, else the median of the known ones
    (1 when none is known, so every cell weighs the same)."""
    unique = set(cells)
    known = [durations[(c.fault, c.recovery)] for c in unique if (c.fault, c.recovery) in durations]
    default = statistics.median(known) if known else 1.0
    return {c: durations.get((c.fault, c.recovery), default) for c in unique}


def plan(
    cells: Iterable[Cell], count: int, durations: Mapping[tuple[str, str], float] | None = None
) -> dict[Cell, int]:
    """Each cell's shard (1-based): longest first (weights()) to the least loaded shard."""
    weight = weights(cells, durations or {})
    unique = sorted(weight)
    loads = [0.0] * count
    shards: dict[Cell, int] = {}
    for cell in sorted(unique, key=lambda c: (-weight[c], c)):
        target = min(range(count), key=lambda i: (loads[i], i))
        loads[target] += weight[cell]
        shards[cell] = target + 1
    return shards


def digest(shards: Mapping[Cell, int], count: int, durations: Mapping[tuple[str, str], float]) -> str:
    """A short name of the plan's inputs and outcome: equal on every shard of one planned run."""
    body = {
        "count": count,
        "cells": sorted([c.fault, c.recovery, c.repeat, s] for c, s in shards.items()),
        "durations": sorted([f, r, round(d, 3)] for (f, r), d in durations.items()),
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def cell_of(item: pytest.Item) -> Cell | None:
    """The matrix cell a scenario test runs (None for a test that is not parametrized as one)."""
    callspec = getattr(item, "callspec", None)
    params = callspec.params if callspec is not None else {}
    if not {"fault_name", "recovery_name", "repeat_index"} <= set(params):
        return None
    return Cell(str(params["fault_name"]), str(params["recovery_name"]), int(params["repeat_index"]))


# -- the pytest plugin (loaded with scenarios.plugin) ------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chaos")
    group.addoption(
        "--shard",
        metavar="I/N",
        help="run shard I of N of the session's cells (each cell in exactly one shard) [env RESILIENCE_SHARD]",
    )
    group.addoption(
        "--earlier-runs",
        action="append",
        metavar="SUMMARY",
        help="summary.json of an earlier run (repeatable): shards are balanced by its run durations, and a TTR "
        "slowed by neighbours beyond the SLO's noise margin is noted against it "
        f"[env RESILIENCE_EARLIER_RUNS, {os.pathsep!r}-separated]",
    )
    group.addoption(
        "--run-id",
        metavar="ID",
        help="names the run the shards belong to (CI: the pipeline id); the gate merges shards of one run only "
        "[env RESILIENCE_RUN_ID]",
    )


def _option(config: pytest.Config, name: str, env: str) -> tuple[Any, str]:
    value = config.getoption(name)
    if value is not None:
        return value, name
    if os.environ.get(env):
        return os.environ[env], env
    return None, ""


@pytest.hookimpl(trylast=True)  # after scenarios.plugin resolved the suite, and the reports plugin registered
def pytest_configure(config: pytest.Config) -> None:
    """Validate the options before any cluster, and tell the reports plugin what this shard belongs to."""
    from scenarios.plugin import SUITE  # loaded first: this plugin is registered by scenarios.plugin

    value, source = _option(config, "--shard", "RESILIENCE_SHARD")
    shard = parse_shard(str(value), source) if value is not None else Shard(1, 1)
    config.stash[SHARD] = shard
    earlier, earlier_source = _option(config, "--earlier-runs", "RESILIENCE_EARLIER_RUNS")
    paths = earlier if isinstance(earlier, list) else [p for p in str(earlier or "").split(os.pathsep) if p]
    config.stash[EARLIER_RUNS] = read_earlier_runs(paths, earlier_source)
    run_id, _ = _option(config, "--run-id", "RESILIENCE_RUN_ID")
    suite = config.stash[SUITE]
    config.pluginmanager.register(NeighbourNotes(config.stash[EARLIER_RUNS], suite.slo.noise), NEIGHBOUR_NOTES)
    config.hook.pytest_resilience_plan(
        plan={
            "run": run_id,
            "profile": suite.profile,
            "slo": str(Path(suite.slo.path)),
            "shard": [shard.index, shard.count],
            "earlier_runs": list(config.stash[EARLIER_RUNS].sources),
        }
    )


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """After every other selection (profile, -m, -k): keep this shard's cells, longest first when earlier runs
    give durations (xdist hands tests out in this order, so no long cell starts last and holds one worker while
    the others idle; tests that are not cells keep their place after them), and record the whole plan."""
    shard = config.stash[SHARD]
    durations = config.stash[EARLIER_RUNS].durations()
    cells = {item.nodeid: cell for item in items if (cell := cell_of(item)) is not None}
    shards = plan(cells.values(), shard.count, durations)
    keep = [item for item in items if item.nodeid not in cells or shards[cells[item.nodeid]] == shard.index]
    drop = [item for item in items if item.nodeid in cells and shards[cells[item.nodeid]] != shard.index]
    if durations:
        weight = weights(cells.values(), durations)
        keep.sort(key=lambda item: -weight[cells[item.nodeid]] if item.nodeid in cells else 0.0)  # stable
    if drop:
        config.hook.pytest_deselected(items=drop)
    items[:] = keep
    config.stash[PLAN_DIGEST] = planned = digest(shards, shard.count, durations)
    config.hook.pytest_resilience_plan(
        plan={
            "digest": planned,
            "matrix": [
                [cell.fault, cell.recovery, cell.repeat, shards[cell], nodeid] for nodeid, cell in sorted(cells.items())
            ],
        }
    )


class NeighbourNotes:
    """Notes a TTR that neighbours moved beyond the SLO's noise margin, against the earlier runs' solo reference,
    before the run is judged (a plugin object: it holds the session's earlier runs and noise margin)."""

    def __init__(self, earlier: EarlierRuns, noise: NoiseMargin) -> None:
        self.earlier, self.noise = earlier, noise

    @pytest.hookimpl(optionalhook=True)
    def pytest_resilience_annotate(self, result: RunResult) -> None:
        reference = self.earlier.solo_ttr(result.fault, result.recovery)
        note = neighbour_note(result.ttr_seconds, result.host, reference, self.noise)
        if note is not None:
            result.notes.append(note)


def pytest_unconfigure(config: pytest.Config) -> None:
    plugin = config.pluginmanager.get_plugin(NEIGHBOUR_NOTES)
    if plugin is not None:
        config.pluginmanager.unregister(plugin)
