"""Alert coverage from the runs' records: what an `alerts` item says (a blind spot, noise) and each cell's tally.

Read from summary entries' `alerts` lists (monitoring.facts.phases writes them; a run without the key ran without
monitoring). The judge (assertions.alert_criterion) fails blind spots and counts noise; the coverage table
(reports.alert_coverage) renders the tally of each fault x recovery cell.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# How much earlier than the harness's own ground truth a page may come and still count as due: the exporter
# sees a change up to a scrape (5 s) before the harness's watch event is processed, and an evaluation rounds it.
EARLY_TOLERANCE = 15.0
ITEM_KEYS = ("name", "fired_after", "resolved_after", "due_after")


def is_noise(item: Mapping[str, Any]) -> bool:
    """Paged, but not (or long before) due."""
    fired = item.get("fired_after")
    if fired is None:
        return False
    due = item.get("due_after")
    return due is None or fired + EARLY_TOLERANCE < due


def is_blind_spot(item: Mapping[str, Any]) -> bool:
    return item.get("fired_after") is None


@dataclass
class Paged:
    runs: int = 0
    fired_max: float = 0.0
    resolved_max: float | None = None
    unresolved: int = 0


@dataclass
class CoverageRow:
    fault: str
    recovery: str
    runs: int
    monitored: int
    paged: dict[str, Paged] = field(default_factory=dict)
    blind_spots: list[str] = field(default_factory=list)
    noise: int = 0
    scaled: bool = False  # a run evaluated other rules than the shipped ones


def tally(fault: str, recovery: str, entries: Iterable[Mapping[str, Any]]) -> CoverageRow:
    """One cell's row: each alert that paged in any of its runs, in how many, the slowest page and resolution."""
    entries = list(entries)
    row = CoverageRow(fault, recovery, len(entries), sum("alerts" in e for e in entries))
    for entry in entries:
        row.scaled |= any("not the operator's shipped rules" in str(n) for n in entry.get("notes") or ())
        for item in entry.get("alerts") or ():
            if is_blind_spot(item):
                row.blind_spots.append(str(item["name"]))
                continue
            row.noise += is_noise(item)
            paged = row.paged.setdefault(str(item["name"]), Paged())
            paged.runs += 1
            paged.fired_max = max(paged.fired_max, float(item["fired_after"]))
            if item.get("resolved_after") is None:
                paged.unresolved += 1
            else:
                paged.resolved_max = max(paged.resolved_max or 0.0, float(item["resolved_after"]))
    return row
