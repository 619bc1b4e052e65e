"""Baseline runs reused from the store (scenarios.baseline_store) in the reports: where each came from, and the
gate's check that its key still holds.

A reused entry is judged by the one judge like any recorded run; what the gate adds is the key: recomputed now from
the pins, the fault's and the mode's definitions and the SLO file's entry (the one given, else the entry's recorded
budget), with the provider, monitoring and load the entry itself records. A key that does not match (a pin bumped,
the fault changed) or that is not the digest of its recorded parts makes the gate fail, one line per run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from assertions.slo import SloFile


def reused_text(reused: Mapping[str, Any]) -> str:
    """Where a reused baseline comes from, for people: when, on which run, under which key."""
    return f"measured {reused['measured_at']} on run {reused['run']} (key {str(reused['key'])[:12]})"


def column(entries: Iterable[Mapping[str, Any]]) -> str:
    """A cell's REUSED column: `-` when every run was measured now, else how many and from when."""
    runs = list(entries)
    reused = [e["reused"] for e in runs if e.get("reused")]
    if not reused:
        return "-"
    sources = sorted({(str(r["measured_at"]), str(r["run"]), str(r["key"])[:12]) for r in reused})
    shown = ", ".join(f"{at} run {run} key {key}" for at, run, key in sources)
    return f"{len(reused)}/{len(runs)} from {shown}"


def key_problems(entries: Iterable[Mapping[str, Any]], slo: SloFile | None = None) -> list[str]:
    """Why a reused run no longer answers for its cell, one line each (none: every reused key still holds)."""
    problems = []
    for entry in entries:
        reused = entry.get("reused")
        if not reused:
            continue
        cell = f"{entry['fault']} x {entry['recovery']} r{entry.get('repeat', 1)}"
        why = _mismatch(entry, reused, slo)
        if why:
            problems.append(f"reused {cell} ({reused_text(reused)}): {why}")
    return problems


def _mismatch(entry: Mapping[str, Any], reused: Mapping[str, Any], slo: SloFile | None) -> str | None:
    from injectors import baseline_key  # the pins and the catalog: only when a run was reused
    from injectors.registry import FAULTS

    recorded = reused["parts"]
    if baseline_key.key_of(recorded) != reused["key"]:
        return "its key is not the digest of its recorded parts"
    fault, mode = FAULTS.get(str(entry["fault"])), str(entry["recovery"])
    if fault is None:
        return f"fault {entry['fault']} is no longer in the catalog"
    if mode not in baseline_key.STORABLE_MODES:
        return f"{mode} is under test: its runs are never reused"
    budget = slo.budget(fault.name, mode).to_json() if slo is not None else entry.get("budget") or {}
    load = entry.get("load")
    try:
        now = baseline_key.parts(
            fault,
            mode,
            budget,
            str(entry.get("provider") or ""),
            "alerts" in entry,
            str(load["profile"]) if isinstance(load, Mapping) else None,
            recorded["measure"]["load_settings"],  # the load profile's settings: checked by the suite's key
        )
    except OSError as e:
        return f"its key cannot be computed here ({e})"
    if baseline_key.key_of(now) == reused["key"]:
        return None
    changed = baseline_key.changes(recorded, now) or ["the key differs"]
    return "key no longer matches: " + "; ".join(changed)
