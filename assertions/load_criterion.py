"""The `load` criterion: delivery latency of other teams, failed deliveries, blast radius and downtime under a fault.

A run under load (the `loadgen` package) records one `load` object in its summary entry:

    {"profile": "light",
     "groups": {"same-source": W, "other-source": W},     # W: {"baseline": S, "during": S, "after": S}
     "blast_radius": ["same-2"],                          # teams whose deliveries failed or slowed down
     "downtime_seconds": 0.0}                             # null when the faulted app serves nothing

where S is {"done": int, "failed": int, "p50": s, "p95": s, "p99": s, "max": s} (seconds of commit to delivered;
null when nothing was delivered). Its budget, in the SLO file like `ttr` (defaults < scenario < recovery):

    load:
      p95_ratio: {same-source: 2, other-source: 2}   # a group's p95 during the fault over its own baseline
      failed: 0                                      # failed deliveries, all windows
      blast_radius: 0                                # teams in the blast radius
      downtime: 0                                    # seconds without a Ready endpoint of the faulted app

A key left out is not judged, and so is a group whose factor a scenario sets to null: a fault that every team's
deliveries pass through (the git server down, kustomize-controller crashed) slows them all by its own nature,
which no recovery can spare; for those only failures count. `p95_ratio` is also each team's own blast-radius
factor (LoadBudget), so the two can never disagree. A baseline mode (Flux alone) may miss it, as it may miss its
time budget.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from assertions.criterion import Criterion

# The delivery groups: teams on the faulted app's own GitRepository (the monorepo), and teams on their own.
SAME_SOURCE = "same-source"
OTHER_SOURCE = "other-source"
GROUPS: tuple[str, ...] = (SAME_SOURCE, OTHER_SOURCE)
WINDOWS: tuple[str, ...] = ("baseline", "during", "after")
PERCENTILES: tuple[str, ...] = ("p50", "p95", "p99", "max")
BUDGET_KEYS: tuple[str, ...] = ("p95_ratio", "failed", "blast_radius", "downtime")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


@dataclass(frozen=True)
class LoadBudget:
    """A validated `load` budget; None for a key not written (not judged)."""

    p95_ratio: Mapping[str, float] = field(default_factory=dict)
    failed: int | None = None
    blast_radius: int | None = None
    downtime: float | None = None

    @classmethod
    def from_raw(cls, raw: Any) -> LoadBudget:
        """The budget as written (validated by LoadCriterion.budget_problem first); None means no budget."""
        raw = raw if isinstance(raw, Mapping) else {}
        return cls(
            {str(k): float(v) for k, v in (raw.get("p95_ratio") or {}).items() if v is not None},
            raw.get("failed"),
            raw.get("blast_radius"),
            None if raw.get("downtime") is None else float(raw["downtime"]),
        )


class LoadCriterion(Criterion):
    key = "load"

    def budget_problem(self, raw: Any) -> str | None:
        if not isinstance(raw, dict):
            return f"expected a mapping with {', '.join(BUDGET_KEYS)}, got {raw!r}"
        for key in raw:
            if key not in BUDGET_KEYS:
                return f"unknown key {key!r} (expected {', '.join(BUDGET_KEYS)})"
        ratios = raw.get("p95_ratio", {"": 1})
        if not isinstance(ratios, dict) or not ratios:
            return f"p95_ratio: expected a mapping of group -> factor (groups: {', '.join(GROUPS)}), got {ratios!r}"
        for group, factor in raw.get("p95_ratio", {}).items():
            if not isinstance(group, str) or not group:
                return f"p95_ratio: expected group names, got {group!r}"
            if factor is not None and (not _number(factor) or factor < 1):
                return (
                    f"p95_ratio.{group}: expected a factor >= 1 (p95 during the fault over baseline) or null (not "
                    f"judged), got {factor!r}"
                )
        for key in ("failed", "blast_radius"):
            if key in raw and not _count(raw[key]):
                return f"{key}: expected a whole number >= 0, got {raw[key]!r}"
        if "downtime" in raw and not (_number(raw["downtime"]) and raw["downtime"] >= 0):
            return f"downtime: expected a finite number of seconds >= 0, got {raw['downtime']!r}"
        return None

    def merge(self, outer: Any, inner: Any) -> Any:
        """Mappings merge one level, and the groups of p95_ratio one more (a scenario may relax one group)."""
        merged = super().merge(outer, inner)
        if isinstance(outer, dict) and isinstance(inner, dict):
            wider, narrower = outer.get("p95_ratio"), inner.get("p95_ratio")
            if isinstance(wider, dict) and isinstance(narrower, dict):
                merged["p95_ratio"] = {**wider, **narrower}
        return merged

    def describe(self, measured: Any) -> str:
        downtime = measured.get("downtime_seconds")
        radius = measured.get("blast_radius") or []
        down = "-" if downtime is None else f"{downtime:.1f}s"
        return f"load ({measured.get('profile')}): downtime {down}, blast radius {len(radius)}"

    def measurement_problem(self, value: Any) -> str | None:
        if not isinstance(value, dict):
            return f"expected an object with profile, groups, blast_radius, downtime_seconds, got {value!r}"
        if not isinstance(value.get("profile"), str) or not value["profile"]:
            return f"profile: expected a non-empty string, got {value.get('profile')!r}"
        groups = value.get("groups")
        if not isinstance(groups, dict):
            return f"groups: expected a mapping of group -> windows, got {groups!r}"
        for group, windows in groups.items():
            problem = _windows_problem(windows, f"groups.{group}")
            if problem:
                return problem
        radius = value.get("blast_radius")
        if not isinstance(radius, list) or not all(isinstance(t, str) for t in radius):
            return f"blast_radius: expected a list of team names, got {radius!r}"
        downtime = value.get("downtime_seconds")
        if downtime is not None and not (_number(downtime) and downtime >= 0):
            return f"downtime_seconds: expected a finite number of seconds >= 0 or null, got {downtime!r}"
        return None

    def problems(self, measured: Any, budget: Any | None) -> list[str]:
        limits = LoadBudget.from_raw(budget)
        groups: Mapping[str, Any] = measured.get("groups") or {}
        out = []
        for group, factor in limits.p95_ratio.items():
            windows = groups.get(group)
            if windows is None:
                out.append(f"load: {group} deliveries not measured, although the budget judges their p95")
                continue
            baseline, during = windows["baseline"]["p95"], windows["during"]["p95"]
            if during is None:
                continue  # nothing delivered during the fault: its failures are judged below
            if baseline is None:
                out.append(f"load: no {group} delivery before the fault to compare its p95 with")
            elif during > factor * baseline:
                out.append(
                    f"load: {group} p95 {during:.1f}s during the fault > {factor:g}x its baseline {baseline:.1f}s"
                )
        failed = {
            f"{group} {window}": windows[window]["failed"]
            for group, windows in groups.items()
            for window in WINDOWS
            if windows[window]["failed"]
        }
        if limits.failed is not None and sum(failed.values()) > limits.failed:
            where = ", ".join(f"{k} {n}" for k, n in failed.items())
            out.append(f"load: {sum(failed.values())} failed deliveries ({where}) > max {limits.failed}")
        radius = list(measured.get("blast_radius") or [])
        if limits.blast_radius is not None and len(radius) > limits.blast_radius:
            out.append(f"load: blast radius {len(radius)} team(s) ({', '.join(radius)}) > max {limits.blast_radius}")
        downtime = measured.get("downtime_seconds")
        if limits.downtime is not None and downtime is not None and downtime > limits.downtime:
            out.append(f"load: downtime {downtime:.1f}s > max {limits.downtime:g}s")
        return out


def _windows_problem(windows: Any, where: str) -> str | None:
    if not isinstance(windows, dict) or set(windows) != set(WINDOWS):
        return f"{where}: expected the windows {', '.join(WINDOWS)}, got {windows!r}"
    for window in WINDOWS:
        stats = windows[window]
        at = f"{where}.{window}"
        if not isinstance(stats, dict):
            return f"{at}: expected an object with done, failed, {', '.join(PERCENTILES)}, got {stats!r}"
        for key in ("done", "failed"):
            if not _count(stats.get(key)):
                return f"{at}.{key}: expected a whole number >= 0, got {stats.get(key)!r}"
        for key in PERCENTILES:
            value = stats.get(key, "missing")
            if value is not None and not (_number(value) and value >= 0):
                return f"{at}.{key}: expected seconds >= 0 or null, got {value!r}"
        if stats["done"] and stats["max"] is None:
            return f"{at}: {stats['done']} done but no latency"
    return None
