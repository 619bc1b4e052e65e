"""The `alerts` criterion: did monitoring page for what the run's fault did, in time, and only for that?

Budget (SLO file, like `ttr`): time to alert per shipped alert, `alerts: {FluxKustomizationStuck: {max: 480}}`,
seconds from the injection until its first page reached the receiver. Measurement: the run's `alerts` list
(monitoring.facts.phases), read from its record; what an item means is monitoring.facts.coverage's. Judged, never
excused under any mode (the alert path is under test in every mode):

- a blind spot, an alert that was due and never paged (`fired_after: null`), fails the run naming the rule;
- a page later than its budget fails the run.

Noise, an alert that paged although nothing of the run had lasted its threshold and `for` (what the operator
repaired within budget pages nobody), is counted and reported in the verdict's notes, and fails nothing.
"""

from __future__ import annotations

import math
from typing import Any

from assertions.criterion import Criterion
from monitoring.facts.coverage import ITEM_KEYS, is_blind_spot, is_noise
from monitoring.facts.rules import rules


def _seconds(value: Any, nullable: bool) -> bool:
    if value is None:
        return nullable
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


class AlertCoverage(Criterion):
    key = "alerts"
    excusable = False

    def budget_problem(self, raw: Any) -> str | None:
        if not isinstance(raw, dict):
            return f"expected a mapping of alert name -> {{max: seconds}}, got {raw!r}"
        known = rules()
        for name, limit in raw.items():
            if name not in known:
                return f"unknown alert {name!r} (the shipped rules have: {', '.join(sorted(known))})"
            if not isinstance(limit, dict) or set(limit) != {"max"} or not _seconds(limit["max"], False):
                return f"{name}: expected {{max: seconds}} with a finite number > 0, got {limit!r}"
            if limit["max"] == 0:
                return f"{name}: max must be > 0 seconds"
        return None

    def describe(self, measured: Any) -> str:
        def one(item: dict[str, Any]) -> str:
            fired = item.get("fired_after")
            return f"{item['name']} blind spot" if fired is None else f"{item['name']} after {fired:.0f}s"

        return "alerts: " + (", ".join(one(i) for i in measured) or "none paged")

    def measurement_problem(self, value: Any) -> str | None:
        if not isinstance(value, list):
            return f"expected a list of alerts, got {value!r}"
        for index, item in enumerate(value):
            where = f"[{index}]"
            if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
                return f"{where}: expected an object with a non-empty name, got {item!r}"
            extra = sorted(set(item) - set(ITEM_KEYS))
            if extra:
                return f"{where}: unknown key(s) {', '.join(extra)} (known: {', '.join(ITEM_KEYS)})"
            for key in ITEM_KEYS[1:]:
                if key in item and not _seconds(item[key], True):
                    return f"{where}.{key}: expected a finite number of seconds >= 0 or null, got {item[key]!r}"
            if "fired_after" not in item or "resolved_after" not in item:
                return f"{where}: fired_after and resolved_after are required (null when it did not happen)"
            if item["fired_after"] is None and (item.get("due_after") is None or item["resolved_after"] is not None):
                return f"{where}: an alert that never fired is listed only as a blind spot, with due_after"
        return None

    def problems(self, measured: Any, budget: Any | None) -> list[str]:
        out = []
        limits = budget or {}
        for item in measured:
            name, fired = item["name"], item["fired_after"]
            if is_blind_spot(item):
                out.append(
                    f"monitoring blind spot: {name} never paged although the fault outlasted its threshold and "
                    f"`for` (due {item['due_after']:.0f}s after injection)"
                )
            elif name in limits and fired > limits[name]["max"]:
                out.append(f"time to alert: {name} paged after {fired:.1f}s > max {limits[name]['max']:.0f}s")
        return out

    def notes(self, measured: Any) -> list[str]:
        noisy = [i for i in measured if is_noise(i)]
        if not noisy:
            return []
        what = ", ".join(f"{i['name']} after {i['fired_after']:.0f}s" for i in noisy)
        return [f"alert noise: {len(noisy)} page(s) for nothing that had lasted its threshold and `for`: {what}"]
