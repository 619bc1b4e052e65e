"""Deliveries cut into windows around a fault, per group and per team: the `load` object of a summary entry.

The load process records one line per locust request event (requests.jsonl, wall-clock times, so workers on
other machines can contribute). A delivery belongs to the window it overlaps: `baseline` when it ended before
the injection, `after` when it started once the fault was over (recovered, or the wait gave up), `during`
otherwise, so a delivery the fault held up counts against the fault even if it started a moment before it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assertions.load_criterion import PERCENTILES, WINDOWS
from assertions.verdict import percentile
from foundation.errors import HarnessError

DELIVERY = "delivery"  # the request type of a team's delivery
QUANTILES: dict[str, float] = {"p50": 50, "p95": 95, "p99": 99, "max": 100}


@dataclass(frozen=True)
class Request:
    """One request event: a team's delivery, or a request of a user's own locustfile (team None)."""

    group: str
    team: str | None
    ended: float  # wall clock
    seconds: float  # response time; for a failure, how long it waited
    ok: bool

    @property
    def started(self) -> float:
        return self.ended - self.seconds


@dataclass(frozen=True)
class Windows:
    """Wall-clock bounds of a run's windows: the load ran before `injected`, and past `fault_end`."""

    injected: float
    fault_end: float

    def of(self, request: Request) -> str:
        if request.ended <= self.injected:
            return "baseline"
        if request.started >= self.fault_end:
            return "after"
        return "during"


def from_record(record: Mapping[str, Any]) -> Request | None:
    """A Request from one line of requests.jsonl; None for instruments (API pressure) that are no group."""
    if record.get("instrument"):
        return None
    group = record.get("group") or record.get("name")
    if not group:
        return None
    return Request(
        str(group),
        str(record["team"]) if record.get("team") else None,
        float(record["ended"]),
        float(record["ms"]) / 1000.0,
        not record.get("error"),
    )


def read(path: Path) -> list[Request]:
    """The requests a load process recorded (none when it recorded nothing)."""
    if not path.exists():
        return []
    out = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            request = from_record(json.loads(line))
        except (ValueError, KeyError, TypeError) as e:
            raise HarnessError(f"{path}:{number}: not a request record ({e}): {line[:200]}") from e
        if request is not None:
            out.append(request)
    return out


def stats(requests: Sequence[Request]) -> dict[str, Any]:
    """S: done and failed, and percentiles of the done ones' seconds (null when none was done)."""
    seconds = [r.seconds for r in requests if r.ok]
    out: dict[str, Any] = {"done": len(seconds), "failed": sum(1 for r in requests if not r.ok)}
    for key in PERCENTILES:
        out[key] = round(percentile(seconds, QUANTILES[key]), 3) if seconds else None
    return out


def by_window(requests: Iterable[Request], windows: Windows) -> dict[str, list[Request]]:
    out: dict[str, list[Request]] = {w: [] for w in WINDOWS}
    for request in requests:
        out[windows.of(request)].append(request)
    return out


def groups(requests: Sequence[Request], windows: Windows, expected: Iterable[str] = ()) -> dict[str, Any]:
    """W per group: S per window. `expected` groups appear even when they recorded nothing."""
    names = list(dict.fromkeys([*expected, *(r.group for r in requests)]))
    out = {}
    for name in names:
        cut = by_window([r for r in requests if r.group == name], windows)
        out[name] = {window: stats(cut[window]) for window in WINDOWS}
    return out


def blast_radius(requests: Sequence[Request], windows: Windows, factors: Mapping[str, float]) -> list[str]:
    """Teams hit by the fault: a delivery failed during it or after, or their own p95 during it exceeded their
    own baseline p95 by their group's factor (the budget's p95_ratio; without one, only failures count)."""
    hit = []
    for team in sorted({r.team for r in requests if r.team is not None}):
        own = [r for r in requests if r.team == team]
        cut = by_window(own, windows)
        if any(not r.ok for r in (*cut["during"], *cut["after"])):
            hit.append(team)
            continue
        factor = factors.get(own[0].group)
        baseline, during = stats(cut["baseline"])["p95"], stats(cut["during"])["p95"]
        if factor is not None and baseline is not None and during is not None and during > factor * baseline:
            hit.append(team)
    return hit


def summary(
    profile: str,
    requests: Sequence[Request],
    windows: Windows,
    factors: Mapping[str, float],
    downtime: float | None,
    expected_groups: Iterable[str] = (),
) -> dict[str, Any]:
    """The `load` object of a summary entry (shape: assertions.load_criterion)."""
    return {
        "profile": profile,
        "groups": groups(requests, windows, expected_groups),
        "blast_radius": blast_radius(requests, windows, factors),
        "downtime_seconds": None if downtime is None else round(downtime, 3),
    }
