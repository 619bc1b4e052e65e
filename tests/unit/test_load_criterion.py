"""The `load` criterion and load profiles: budgets and profiles validated with key paths, measurements validated in
the summary entry, and a load that misses its budget judged by the one judge, in the run and in the gate alike."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from reports_support import entry, load, recovered, stats

from assertions.load_criterion import LoadCriterion
from assertions.slo import Budget, Limit, parse
from assertions.verdict import Evidence, Verdict, evidence_from_entry, judge
from foundation.errors import UserError
from reports.matrix import build_cells
from reports.summary import entry_problem

FAULTS = ["selector-change", "dependency-cycle"]
CRITERION = LoadCriterion()


BUDGET = {"p95_ratio": {"same-source": 2, "other-source": 2}, "failed": 0, "blast_radius": 0, "downtime": 0}


def slo(**scenarios: Any) -> dict[str, Any]:
    return {"defaults": {"ttr": {"max": 60}, "load": BUDGET}, "scenarios": scenarios}


# -- budgets in the SLO file --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("budget", "message"),
    [
        (3, "defaults.load: expected a mapping with p95_ratio, failed, blast_radius, downtime, got 3"),
        ({"p95": {}}, "defaults.load: unknown key 'p95' (expected p95_ratio, failed, blast_radius, downtime)"),
        ({"p95_ratio": {}}, "defaults.load: p95_ratio: expected a mapping of group -> factor"),
        ({"p95_ratio": {"same-source": 0.5}}, "defaults.load: p95_ratio.same-source: expected a factor >= 1"),
        ({"p95_ratio": {"same-source": True}}, "defaults.load: p95_ratio.same-source: expected a factor >= 1"),
        ({"p95_ratio": {"same-source": "2"}}, "defaults.load: p95_ratio.same-source: expected a factor >= 1"),
        ({"p95_ratio": {"a": 2}, "failed": -1}, "defaults.load: failed: expected a whole number >= 0, got -1"),
        ({"p95_ratio": {"a": 2}, "blast_radius": 1.5}, "defaults.load: blast_radius: expected a whole number >= 0"),
        ({"p95_ratio": {"a": 2}, "downtime": float("nan")}, "defaults.load: downtime: expected a finite number"),
    ],
)
def test_a_bad_load_budget_names_the_key_path(budget: Any, message: str) -> None:
    with pytest.raises(UserError) as info:
        parse({"defaults": {"load": budget}}, "slo.yaml", FAULTS)
    assert str(info.value).startswith(f"slo.yaml: {message}")


def test_budgets_merge_like_ttr_and_a_scenario_may_relax_one_group() -> None:
    raw = slo(
        **{
            "dependency-cycle": {
                "load": {"p95_ratio": {"other-source": 5}},
                "recoveries": {"operator": {"load": {"downtime": 3}}},
            }
        }
    )
    budgets = parse(raw, "slo.yaml", FAULTS)
    assert budgets.budget("selector-change", "none").measures["load"] == BUDGET
    relaxed = budgets.budget("dependency-cycle", "operator").measures["load"]
    assert relaxed == {**BUDGET, "p95_ratio": {"same-source": 2, "other-source": 5}, "downtime": 3}
    budget = budgets.budget("dependency-cycle", "operator")
    assert Budget.from_json(budget.to_json()).measures == budget.measures


def test_a_scenario_may_leave_a_group_unjudged_and_failures_still_count() -> None:
    """A fault every team's deliveries pass through slows them all: null un-judges the ratio, not the failures."""
    raw = slo(**{"dependency-cycle": {"load": {"p95_ratio": {"same-source": None, "other-source": None}}}})
    budget = parse(raw, "slo.yaml", FAULTS).budget("dependency-cycle", "operator")
    slow = Evidence(ttr=5.0, proven=True, measurements={"load": load(9.0)})
    assert judge(slow, budget).verdict is Verdict.PASS
    assert judge(slow, parse(raw, "slo.yaml", FAULTS).budget("selector-change", "operator")).verdict is Verdict.BREACH
    failing = judge(Evidence(ttr=5.0, proven=True, measurements={"load": load(9.0, failed=1)}), budget)
    assert failing.verdict is Verdict.BREACH
    assert failing.reason == "load: 1 failed deliveries (same-source during 1) > max 0"
    assert Budget.from_json(budget.to_json()).measures == budget.measures


# -- load profiles ------------------------------------------------------------------------------------------


def test_load_profiles_are_read_with_defaults_and_named_by_suite_profiles() -> None:
    raw = {
        **slo(),
        "profiles": {"nightly": {"load": "light"}, "quick": {}},
        "load_profiles": {
            "light": {"teams": {"same-source": 3}, "every": 5},
            "busy": {"teams": {"other-source": 1}, "api": {"users": 4, "every": 0.25}, "workers": 2},
        },
    }
    budgets = parse(raw, "slo.yaml", FAULTS)
    light, busy = budgets.load_profiles["light"], budgets.load_profiles["busy"]
    assert (dict(light.teams), light.team_count, light.every, light.deadline) == (
        {"same-source": 3, "other-source": 0},
        3,
        5.0,
        60.0,
    )
    assert (busy.api_users, busy.api_every, busy.workers) == (4, 0.25, 2)
    assert (budgets.profile("nightly").load, budgets.profile("quick").load) == ("light", "none")


@pytest.mark.parametrize(
    ("profiles", "message"),
    [
        ({"light": {"teams": {"same-source": 1}, "every": 0}}, "load_profiles.light.every: expected a finite number"),
        ({"light": {"teams": {"same-source": 1}, "every": -2}}, "load_profiles.light.every: expected a finite number"),
        ({"light": {"teams": {"same-source": 1}, "deadline": 0}}, "load_profiles.light.deadline: expected a finite"),
        ({"light": {"teams": {"same-source": 0}}}, "load_profiles.light.teams: no teams"),
        ({"light": {"teams": {"same-source": -1}}}, "load_profiles.light.teams.same-source: expected a whole number"),
        ({"light": {"teams": {"monorepo": 1}}}, "load_profiles.light.teams.monorepo: unknown key"),
        ({"light": {"every": 5}}, "load_profiles.light: missing teams"),
        ({"light": {"teams": {"same-source": 1}, "rate": 1}}, "load_profiles.light.rate: unknown key"),
        ({"light": {"teams": {"same-source": 1}, "api": {"every": 1}}}, "load_profiles.light.api: missing users"),
        ({"light": {"teams": {"same-source": 1}, "workers": 65}}, "load_profiles.light.workers: expected a whole"),
        ({"none": {"teams": {"same-source": 1}}}, "load_profiles.none: 'none' means no load"),
    ],
)
def test_a_bad_load_profile_names_the_key_path(profiles: dict[str, Any], message: str) -> None:
    with pytest.raises(UserError) as info:
        parse({**slo(), "load_profiles": profiles}, "slo.yaml", FAULTS)
    assert str(info.value).startswith(f"slo.yaml: {message}")


def test_a_suite_profile_naming_an_unknown_load_profile_is_refused() -> None:
    raw = {
        **slo(),
        "profiles": {"nightly": {"load": "hevy"}},
        "load_profiles": {"heavy": {"teams": {"same-source": 1}}},
    }
    with pytest.raises(
        UserError, match=r"profiles.nightly.load: unknown load profile 'hevy' \(load_profiles: none, heavy"
    ):
        parse(raw, "slo.yaml", FAULTS)


# -- measurements and the judge ---------------------------------------------------------------------------


def test_each_missed_load_budget_is_a_reason_a_baseline_may_be_excused_for() -> None:
    budget = Budget(ttr=Limit(180.0), measures={"load": BUDGET})
    assert judge(Evidence(ttr=5.0, proven=True, measurements={"load": load()}), budget).verdict is Verdict.PASS
    missed = judge(
        Evidence(ttr=5.0, proven=True, measurements={"load": load(2.5, failed=2, radius=["same-1"], downtime=1.5)}),
        budget,
    )
    assert missed.verdict is Verdict.BREACH and missed.excusable
    assert missed.reason == (
        "load: same-source p95 2.5s during the fault > 2x its baseline 1.0s; "
        "load: 2 failed deliveries (same-source during 2) > max 0; "
        "load: blast radius 1 team(s) (same-1) > max 0; load: downtime 1.5s > max 0s"
    )


def test_what_was_not_measured_or_not_budgeted_is_not_judged() -> None:
    # Nothing delivered during the fault (its failures are counted elsewhere), nothing served (no Service).
    quiet = load(same_during=None, downtime=None)
    assert CRITERION.problems(quiet, BUDGET) == []
    assert CRITERION.problems(load(9.0, downtime=9.0), {"p95_ratio": {"other-source": 2}}) == []
    assert CRITERION.problems(load(9.0), None) == []


def test_a_slower_group_without_baseline_deliveries_cannot_be_compared() -> None:
    measured = load(2.0)
    measured["groups"]["same-source"]["baseline"] = stats(done=0, p95=None)
    assert CRITERION.problems(measured, BUDGET) == [
        "load: no same-source delivery before the fault to compare its p95 with"
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m.update(profile=""), "[0].load: profile: expected a non-empty string"),
        (lambda m: m.update(groups=[]), "[0].load: groups: expected a mapping of group -> windows"),
        (lambda m: m["groups"]["same-source"].pop("after"), "[0].load: groups.same-source: expected the windows"),
        (
            lambda m: m["groups"]["same-source"]["during"].update(done=-1),
            "[0].load: groups.same-source.during.done: expected a whole number >= 0",
        ),
        (
            lambda m: m["groups"]["same-source"]["during"].update(p95=float("inf")),
            "[0].load: groups.same-source.during.p95: expected seconds >= 0 or null",
        ),
        (
            lambda m: m["groups"]["same-source"]["during"].update(max=None),
            "[0].load: groups.same-source.during: 3 done but no latency",
        ),
        (lambda m: m.update(blast_radius="same-1"), "[0].load: blast_radius: expected a list of team names"),
        (lambda m: m.update(downtime_seconds=-1), "[0].load: downtime_seconds: expected a finite number"),
    ],
)
def test_a_malformed_load_object_in_a_summary_is_refused(change: Any, message: str) -> None:
    run = entry("selector-change", "operator", recovered(10.0))
    run["load"] = copy.deepcopy(load())
    assert entry_problem(run, "[0]") is None
    change(run["load"])
    problem = entry_problem(run, "[0]")
    assert problem is not None and problem.startswith(message)


def test_entries_without_load_keep_their_shape_and_the_gate_re_judges_load() -> None:
    plain = entry("selector-change", "operator", recovered(10.0))
    assert "load" not in plain and evidence_from_entry(plain).measurements == {}
    slow = entry("selector-change", "operator", recovered(10.0))
    slow["load"] = load(3.0)
    assert slow["verdict"] == "pass"  # recorded without a load budget
    budgets = parse(slo(), "slo.yaml", FAULTS)
    (cell,) = build_cells([slow], budgets)
    assert cell.fails_gate
    assert cell.reasons == ("load: same-source p95 3.0s during the fault > 2x its baseline 1.0s",)
    (excused,) = build_cells([{**slow, "recovery": "none"}], budgets, baselines={"none"})
    assert excused.excused and not excused.fails_gate
