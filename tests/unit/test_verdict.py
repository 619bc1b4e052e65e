"""The one judge: every kind of run, from its evidence, the same in the runner and in the gate."""

from __future__ import annotations

import math
from typing import Any

import pytest

from assertions.schema import ClusterLock, Host, SummaryEntry
from assertions.slo import Budget, Limit
from assertions.timeline import Timeline
from assertions.verdict import Evidence, RunResult, Verdict, evidence_from_entry, judge
from foundation.errors import HarnessError
from reports.matrix import build_cells, judge_entry
from reports.summary import entry_problem

BUDGET = Budget(ttr=Limit(max=60.0), detect=Limit(max=30.0), wait=120.0)
LOOSE = Budget(ttr=Limit(max=10_000.0), detect=Limit(max=10_000.0), wait=20_000.0)
PROVEN = Evidence(ttr=50.0, detect=5.0, proven=True)


def evidence(**fields: Any) -> Evidence:
    return Evidence(**{**PROVEN.__dict__, **fields})


@pytest.mark.parametrize(
    ("fields", "verdict", "reason"),
    [
        ({}, Verdict.PASS, "TTR 50.0s within 60s"),
        ({"ttr": 60.0}, Verdict.PASS, "TTR 60.0s within 60s"),
        ({"ttr": 70.5}, Verdict.BREACH, "TTR 70.5s > max 60s"),
        ({"detect": 40.0}, Verdict.BREACH, "time to detect 40.0s > max 30s"),
        ({"ttr": 100.0, "detect": 40.0}, Verdict.BREACH, "TTR 100.0s > max 60s; time to detect 40.0s > max 30s"),
        ({"ttr": None}, Verdict.NOT_RECOVERED, "not recovered within 120s of injection"),
        (
            {"ttr": None, "not_recovered_detail": "at rev1"},
            Verdict.NOT_RECOVERED,
            "not recovered within 120s of injection (at rev1)",
        ),
        ({"ttr": 130.0}, Verdict.NOT_RECOVERED, "recovered after 130.0s, later than the wait of 120s"),
    ],
)
def test_time_verdicts(fields: dict[str, Any], verdict: Verdict, reason: str) -> None:
    judgement = judge(evidence(**fields), BUDGET)
    assert (judgement.verdict, judgement.reason) == (verdict, reason)
    assert judgement.excusable is (verdict is not Verdict.PASS)  # only time was missed


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"proven": False}, "fault not proven: no evidence that it happened"),
        ({"invalid": ("not in steady state before injection: web missing",)}, "not in steady state"),
        ({"harness_errors": ("ApiError: boom",)}, "harness error: ApiError: boom"),
        ({"foreign_activity": ("the recovery operator's RecoveryAction Event on Kustomization x",)}, "not measured"),
        ({"ttr": math.nan}, "not a finite measurement"),
        ({"ttr": math.inf}, "not a finite measurement"),
        ({"detect": -1.0}, "not a finite measurement"),
    ],
)
def test_runs_that_prove_nothing_are_invalid_under_any_budget(fields: dict[str, Any], reason: str) -> None:
    for budget in (BUDGET, LOOSE):
        judgement = judge(evidence(**fields), budget)
        assert judgement.verdict is Verdict.INVALID and reason in judgement.reason
        assert not judgement.excusable


def test_lost_data_is_a_breach_whatever_the_budget_and_never_excusable() -> None:
    lost = evidence(data_violations=("Secret/app/db was deleted",))
    for budget in (BUDGET, LOOSE):
        judgement = judge(lost, budget)
        assert judgement.verdict is Verdict.BREACH and not judgement.excusable
        assert judgement.reason == "user data not preserved: Secret/app/db was deleted"
    slow = judge(evidence(ttr=None, data_violations=("PersistentVolumeClaim/app/data was re-created",)), BUDGET)
    assert slow.verdict is Verdict.NOT_RECOVERED and not slow.excusable and "user data not preserved" in slow.reason


def test_notes_are_reported_and_change_nothing() -> None:
    judgement = judge(evidence(notes=("the operator's RecoveryDetected came before Flux showed the fault",)), BUDGET)
    assert judgement.verdict is Verdict.PASS
    assert judgement.reason.endswith("; note: the operator's RecoveryDetected came before Flux showed the fault")


# -- the same judge from a summary entry -------------------------------------------------------------------


def result(**fields: Any) -> RunResult:
    """A judged run."""
    t = Timeline()
    for phase, at in {"injected": 10.0, "visible": 12.0, "recovered": 40.25}.items():
        t.mark(phase, at)
    run = RunResult("selector-change", "selector", "operator", BUDGET, t, proven=True, **fields)
    run.judge()
    return run


def test_a_summary_entry_holds_the_whole_evidence_and_its_verdict() -> None:
    run = result(repeat=2, baselines=("none",), data_violations=["ConfigMap/app/settings data changed"])
    entry = run.summary_entry()
    assert entry_problem(entry, "[0]") is None
    assert entry["verdict"] == "breach" and entry["data_violations"] == ["ConfigMap/app/settings data changed"]
    assert entry["measured_from"] == "injected" and entry["proven"] is True and entry["baselines"] == ["none"]
    assert entry["ttr_seconds"] == 30.25 and entry["budget"]["wait"] == 120.0
    assert evidence_from_entry(entry) == run.evidence()
    assert judge_entry(entry).judgement == run.judgement


def test_a_run_is_judged_once_and_only_a_judged_run_makes_an_entry() -> None:
    t = Timeline()
    t.mark("injected", 10.0)
    run = RunResult("selector-change", "selector", "operator", BUDGET, t)
    with pytest.raises(HarnessError, match="read before it was judged"):
        run.summary_entry()
    run.judge()
    entry = run.summary_entry()
    assert entry["verdict"] == "invalid" and entry["proven"] is False and entry["ttr_seconds"] is None
    with pytest.raises(HarnessError, match="judged twice"):
        run.judge()


def test_where_and_how_long_a_run_ran_is_in_its_entry_as_the_schema_reads_it() -> None:
    run = result(test="scenarios/test_x.py::test_x[operator]", plan="c42d7584a28541c3", run_seconds=41.2)
    run.host = Host(workers=2, cpus=2)
    run.cluster_lock = ClusterLock(mode="shared", waited_seconds=0.0, others=0)
    entry = run.summary_entry()
    assert entry["host"] == {"workers": 2, "cpus": 2}  # an unknown CPU load is left out, not null
    assert entry["cluster_lock"] == {"mode": "shared", "waited_seconds": 0.0, "others": 0}
    assert (entry["test"], entry["plan"], entry["run_seconds"]) == (run.test, run.plan, 41.2)
    assert SummaryEntry.model_validate(entry).host == run.host
    assert "plan" not in result().summary_entry()  # a session without a plan records none


def test_a_run_that_makes_a_bad_entry_is_a_harness_error() -> None:
    run = result(run_seconds=-1.0)
    with pytest.raises(HarnessError, match=r"bad summary entry: selector-change\.run_seconds"):
        run.summary_entry()


@pytest.mark.parametrize(
    "fields",
    [
        {"data_violations": ["Secret/app/db was deleted"]},
        {"harness_errors": ["the snapshot of user data failed: timeout"]},
        {"foreign_activity": ["spec.force on Kustomization flux-system/app (flux-native's knob)"]},
        {"proven": False},
    ],
)
def test_another_slo_file_never_turns_these_into_a_pass(fields: dict[str, Any]) -> None:
    entry = {**result().summary_entry(), **fields}
    assert judge_entry(entry, LOOSE).verdict is not Verdict.PASS
    (cell,) = build_cells([entry], baselines={"operator"})
    assert cell.fails_gate and not cell.excused  # not even a baseline excuses it


def test_a_recorded_verdict_worse_than_the_evidence_counts() -> None:
    entry = {**result().summary_entry(), "verdict": "invalid", "reason": "hand-edited"}
    run = judge_entry(entry)
    assert run.verdict is Verdict.INVALID and "recorded invalid (hand-edited)" in run.reason


def test_the_wait_is_measured_from_the_injection_in_runner_and_gate_alike() -> None:
    """A run that recovered after its wait is not-recovered in both places (it was a breach in one before)."""
    t = Timeline()
    t.mark("injected", 0.0)
    t.mark("recovered", 125.0)
    run = RunResult("selector-change", "selector", "operator", BUDGET, t, proven=True)
    assert run.judge().verdict is Verdict.NOT_RECOVERED
    assert judge_entry(run.summary_entry()).verdict is Verdict.NOT_RECOVERED
    assert judge_entry(run.summary_entry(), BUDGET).verdict is Verdict.NOT_RECOVERED


def test_a_baseline_cell_is_excused_only_for_time() -> None:
    slow = {**result().summary_entry(), "recovery": "none", "ttr_seconds": None, "verdict": "not-recovered"}
    (cell,) = build_cells([slow], baselines={"none"})
    assert cell.verdict is Verdict.NOT_RECOVERED and cell.excused and not cell.fails_gate
    (judged,) = build_cells([slow])
    assert judged.fails_gate
