"""Criteria beside time-to-recover go through the same SLO file, summary entry and judge (a fake one here)."""

from __future__ import annotations

from typing import Any

import pytest
from reports_support import entry

from assertions import criteria
from assertions.criterion import Criterion
from assertions.slo import Budget, Limit, parse
from assertions.verdict import Evidence, Verdict, evidence_from_entry, judge
from foundation.errors import UserError
from reports.matrix import build_cells, judge_entry
from reports.summary import entry_problem


class Downtime(Criterion):
    """Seconds with no serving endpoint; budget {max: seconds}."""

    key = "downtime"

    def budget_problem(self, raw: Any) -> str | None:
        if not isinstance(raw, dict) or set(raw) - {"max"}:
            return f"expected a mapping with max, got {raw!r}"
        return None

    def measurement_problem(self, value: Any) -> str | None:
        return None if isinstance(value, int | float) and value >= 0 else f"expected seconds >= 0, got {value!r}"

    def problems(self, measured: Any, budget: Any | None) -> list[str]:
        limit = (budget or {}).get("max")
        return [f"downtime {measured}s > max {limit}s"] if limit is not None and measured > limit else []


class Reached(Downtime):
    key = "reached"
    excusable = False


@pytest.fixture(autouse=True)
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(criteria, "CRITERIA", (Downtime(), Reached()))


SLO = {
    "defaults": {"ttr": {"max": 60}, "downtime": {"max": 5}},
    "scenarios": {"selector-change": {"recoveries": {"none": {"downtime": {"max": 100}}}}},
}


def test_budgets_are_validated_and_merged_like_ttr() -> None:
    slo = parse(SLO, "slo.yaml", ["selector-change"])
    assert slo.budget("selector-change", "operator").measures == {"downtime": {"max": 5}}
    assert slo.budget("selector-change", "none").measures == {"downtime": {"max": 100}}
    with pytest.raises(UserError, match=r"^slo.yaml: defaults.downtime: expected a mapping with max, got 3$"):
        parse({"defaults": {"downtime": 3}}, "slo.yaml", [])
    budget = slo.budget("selector-change", "operator")
    assert Budget.from_json(budget.to_json()).to_json() == budget.to_json()


def test_a_missed_measurement_is_a_breach_a_baseline_may_be_excused_for() -> None:
    budget = Budget(ttr=Limit(180.0), measures={"downtime": {"max": 5}, "reached": {"max": 0}})
    ok = Evidence(ttr=10.0, proven=True, measurements={"downtime": 2})
    assert judge(ok, budget).verdict is Verdict.PASS
    slow = judge(Evidence(ttr=10.0, proven=True, measurements={"downtime": 9}), budget)
    assert (slow.verdict, slow.reason, slow.excusable) == (Verdict.BREACH, "downtime 9s > max 5s", True)
    reached = judge(Evidence(ttr=10.0, proven=True, measurements={"reached": 1}), budget)
    assert reached.verdict is Verdict.BREACH and not reached.excusable


def test_measurements_travel_in_the_summary_entry_and_are_re_judged_there() -> None:
    run = entry("selector-change", "operator", {"injected": 0.0, "visible": 1.0, "recovered": 10.0})
    run["downtime"] = 9
    assert entry_problem(run, "[0]") is None
    assert evidence_from_entry(run).measurements == {"downtime": 9}
    slo = parse(SLO, "slo.yaml", ["selector-change"])
    assert judge_entry(run, slo.budget("selector-change", "operator")).verdict is Verdict.BREACH
    (cell,) = build_cells([run], slo)
    assert cell.fails_gate and "downtime 9s > max 5s" in cell.reasons
    assert entry_problem({**run, "downtime": -1}, "[0]") == "[0].downtime: expected seconds >= 0, got -1"
