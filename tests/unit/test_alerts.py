"""Alerts as evidence: the ground truth that makes an alert due, the pages the receiver got, and the `alerts`
criterion that judges them (blind spots and late pages fail, noise is reported), through the one judge."""

from __future__ import annotations

from typing import Any

import pytest
from reports_support import entry

from assertions.alert_criterion import AlertCoverage
from assertions.isolation import owned_by_run
from assertions.slo import Budget, Limit, parse
from assertions.timeline import Timeline
from assertions.verdict import Evidence, Verdict, judge
from foundation.errors import UserError
from monitoring.facts import phases as alerts
from monitoring.facts import rules as alert_rules
from monitoring.facts.notification import Notification
from monitoring.facts.rules import PROMISES, UNPROMISED, duration, rules
from reports.matrix import build_cells
from reports.summary import entry_problem

KS = "Kustomization/flux-system/app-1"
HR = "HelmRelease/app-1/web"


def timeline(conditions: list[tuple[str, float, str]] = (), deps: list[tuple[str, float, list[str]]] = ()) -> Timeline:  # type: ignore[assignment]
    t = Timeline()
    t.mark("injected", 100.0)
    t.conditions = [{"object": ref, "at": at, "type": "Ready", "status": status} for ref, at, status in conditions]
    t.dependencies = [{"object": ref, "at": at, "dependsOn": d} for ref, at, d in deps]
    return t


def test_every_shipped_alert_is_promised_or_says_which_fault_it_would_need() -> None:
    promised = {p.alert for p in PROMISES}
    assert promised.isdisjoint(UNPROMISED) and promised | set(UNPROMISED) == set(rules())
    stuck = rules()["FluxKustomizationStuck"]
    assert stuck.for_seconds == 120 and alert_rules.promise("FluxKustomizationStuck").holds_for == 420  # type: ignore[union-attr]


@pytest.mark.parametrize(("text", "seconds"), [("2m", 120), ("1h30m", 5400), ("500ms", 0.5), ("0s", 0), ("1d", 86400)])
def test_prometheus_durations(text: str, seconds: float) -> None:
    assert duration(text) == seconds


@pytest.mark.parametrize("text", ["", "2", "m", "2 m", "1.5m", "2m!"])
def test_not_a_prometheus_duration(text: str) -> None:
    with pytest.raises(ValueError, match="not a Prometheus duration"):
        duration(text)


def test_not_ready_intervals_open_and_close_on_the_ready_condition() -> None:
    t = timeline([(KS, 1.0, "Unknown"), (KS, 2.0, "False"), (KS, 50.0, "True"), (KS, 60.0, "False")])
    assert alerts.not_ready(t) == {KS: [alerts.Interval(1.0, 50.0), alerts.Interval(60.0, None)]}


def test_a_kustomization_stuck_past_threshold_and_for_is_due_and_must_page_while_watched() -> None:
    t = timeline([(KS, 2.0, "False")])
    (due,) = alerts.due(t, watch_end=600.0, delivery=20.0).items()
    assert due == ("FluxKustomizationStuck", alerts.Due(422.0, must_have_fired=True))
    late = alerts.due(t, watch_end=430.0, delivery=20.0)["FluxKustomizationStuck"]
    assert late == alerts.Due(422.0, must_have_fired=False)  # its page could still be on the way
    assert alerts.due(t, watch_end=400.0, delivery=20.0) == {}
    healed = timeline([(KS, 2.0, "False"), (KS, 60.0, "True")])
    assert alerts.due(healed, watch_end=900.0, delivery=20.0) == {}


def test_cycles_and_blocked_dependents_come_from_the_recorded_depends_on() -> None:
    a, b = "Kustomization/flux-system/app-1-a", "Kustomization/flux-system/app-1-b"
    deps = [(a, 0.0, []), (b, 0.0, [a]), (a, 3.0, [b]), (a, 200.0, [])]
    t = timeline([(a, 1.0, "False")], deps)
    assert alerts.cycles(t) == {a: [alerts.Interval(3.0, 200.0)], b: [alerts.Interval(3.0, 200.0)]}
    assert alerts.due(t, 300.0, 20.0)["FluxDependencyCycle"] == alerts.Due(63.0, must_have_fired=True)
    assert alerts.blocking(t) == {a: [alerts.Interval(1.0, None)]}  # b waited for a when a failed
    assert alerts.due(t, 2000.0, 20.0)["FluxDependencyDeadlock"] == alerts.Due(901.0, must_have_fired=True)


def test_an_escalation_event_makes_the_escalation_alert_due() -> None:
    t = timeline()
    t.events = [{"at": 30.0, "reason": "RecoveryEscalated", "component": "gitops-resilience-operator", "object": HR}]
    assert alerts.due(t, 100.0, 20.0) == {"FluxRecoveryEscalated": alerts.Due(30.0, must_have_fired=True)}


def note(at: float, *alerts_: dict[str, Any]) -> Notification:
    return Notification(1000.0 + at, "firing", tuple(alerts_))


def alert(alertname: str, status: str, fingerprint: str, **labels: str) -> dict[str, Any]:
    return {"status": status, "fingerprint": fingerprint, "labels": {"alertname": alertname, **labels}}


NAMES = alerts.names_run(owned_by_run("app-1", "app-1"), "none")


def test_pages_name_the_run_by_object_or_by_its_recoverys_exporter() -> None:
    assert NAMES({"namespace": "flux-system", "name": "app-1-a"}) and NAMES({"namespace": "app-1", "name": "web"})
    assert not NAMES({"namespace": "flux-system", "name": "app-2"})
    assert NAMES({"kind": "HelmRelease", "recovery": "none"}) and not NAMES({"recovery": "operator"})
    assert not NAMES({})  # a cluster-wide alert (no leader) names no run


def test_first_page_and_resolution_per_alert_across_its_instances() -> None:
    stuck = "FluxKustomizationStuck"
    notes = [
        note(-5, alert(stuck, "firing", "x", namespace="flux-system", name="app-1")),  # before the injection
        note(430, alert(stuck, "firing", "a", namespace="flux-system", name="app-1")),
        note(440, alert(stuck, "firing", "a", namespace="flux-system", name="app-1"),
             alert(stuck, "firing", "b", namespace="flux-system", name="app-1-b")),
        note(700, alert(stuck, "resolved", "a", namespace="flux-system", name="app-1"),
             alert(stuck, "firing", "b", namespace="flux-system", name="app-1-b")),
        note(720, alert("Other", "firing", "o", namespace="flux-system", name="app-2")),
    ]  # fmt: skip
    assert alerts.fired(notes, 1000.0, NAMES) == {stuck: {"name": stuck, "fired_after": 430.0, "resolved_after": None}}
    notes.append(note(725, alert(stuck, "resolved", "b", namespace="flux-system", name="app-1-b")))
    assert alerts.fired(notes, 1000.0, NAMES)[stuck]["resolved_after"] == 725.0


def test_the_measurement_lists_pages_then_blind_spots_and_marks_the_alert_phases() -> None:
    pages = {
        "FluxKustomizationStuck": {"name": "FluxKustomizationStuck", "fired_after": 430.0, "resolved_after": 700.0}
    }
    due = {
        "FluxKustomizationStuck": alerts.Due(422.0, True),
        "FluxDependencyCycle": alerts.Due(63.0, True),
        "FluxRecoveryEscalated": alerts.Due(590.0, False),  # could still have been on its way: not a blind spot
    }
    items = alerts.measurement(pages, due)
    assert items == [
        {"name": "FluxKustomizationStuck", "fired_after": 430.0, "resolved_after": 700.0, "due_after": 422.0},
        {"name": "FluxDependencyCycle", "fired_after": None, "resolved_after": None, "due_after": 63.0},
    ]
    t = timeline()
    alerts.mark(t, items)
    assert t.since_injected("alerted") == 430.0 and t.since_injected("alert-resolved") == 700.0
    assert t.phase_seconds() == {"alerted": 430.0, "alert-resolved": 270.0}


CRITERION = AlertCoverage()
BUDGET = Budget(ttr=Limit(180.0), measures={"alerts": {"FluxKustomizationStuck": {"max": 480}}})


def evidence(items: list[dict[str, Any]], ttr: float | None = None) -> Evidence:
    return Evidence(ttr=ttr, proven=True, measurements={"alerts": items})


def test_a_blind_spot_fails_any_run_and_no_baseline_excuses_it() -> None:
    blind = [{"name": "FluxKustomizationStuck", "fired_after": None, "resolved_after": None, "due_after": 422.0}]
    verdict = judge(evidence(blind, ttr=10.0), BUDGET)
    assert verdict.verdict is Verdict.BREACH and not verdict.excusable
    assert verdict.reason == (
        "monitoring blind spot: FluxKustomizationStuck never paged although the fault outlasted its threshold and "
        "`for` (due 422s after injection)"
    )
    run = entry("selector-change", "none", {"injected": 0.0, "visible": 1.0})
    run["alerts"] = blind
    (cell,) = build_cells([run], baselines={"none"})
    assert cell.fails_gate and "blind spot" in cell.reasons[0]


def test_a_late_page_misses_its_time_to_alert_budget() -> None:
    late = [{"name": "FluxKustomizationStuck", "fired_after": 500.0, "resolved_after": None, "due_after": 422.0}]
    verdict = judge(evidence(late, ttr=10.0), BUDGET)
    assert verdict.verdict is Verdict.BREACH
    assert verdict.reason == "time to alert: FluxKustomizationStuck paged after 500.0s > max 480s"
    on_time = [{**late[0], "fired_after": 440.0}]
    assert judge(evidence(on_time, ttr=10.0), BUDGET).verdict is Verdict.PASS


def test_noise_is_reported_and_changes_no_verdict() -> None:
    noisy = [{"name": "FluxKustomizationStuck", "fired_after": 40.0, "resolved_after": 70.0}]
    verdict = judge(evidence(noisy, ttr=10.0), BUDGET)
    assert verdict.verdict is Verdict.PASS
    assert verdict.reason.endswith(
        "; note: alert noise: 1 page(s) for nothing that had lasted its threshold and `for`: "
        "FluxKustomizationStuck after 40s"
    )
    early = [{**noisy[0], "due_after": 422.0}]
    assert "alert noise" in judge(evidence(early, ttr=10.0), BUDGET).reason
    assert "alert noise" not in judge(evidence([{**noisy[0], "due_after": 50.0}], ttr=10.0), BUDGET).reason
    assert judge(evidence([], ttr=10.0), BUDGET).reason == "TTR 10.0s within 180s"


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ([], "expected a mapping of alert name"),
        ({"Nope": {"max": 1}}, "unknown alert 'Nope' (the shipped rules have: FluxDependencyCycle"),
        ({"FluxKustomizationStuck": {"max": -1}}, "FluxKustomizationStuck: expected {max: seconds}"),
        ({"FluxKustomizationStuck": {"max": 1, "p95": 1}}, "expected {max: seconds}"),
        ({"FluxKustomizationStuck": {"max": float("nan")}}, "expected {max: seconds}"),
    ],
)
def test_time_to_alert_budgets_are_validated_like_the_others(raw: Any, problem: str) -> None:
    with pytest.raises(UserError) as info:
        parse({"defaults": {"alerts": raw}}, "slo.yaml", [])
    assert str(info.value).startswith("slo.yaml: defaults.alerts: ") and problem in str(info.value)


def test_time_to_alert_budgets_merge_per_alert_like_ttr() -> None:
    slo = parse(
        {
            "defaults": {"alerts": {"FluxKustomizationStuck": {"max": 480}, "FluxDependencyCycle": {"max": 120}}},
            "scenarios": {"selector-change": {"alerts": {"FluxKustomizationStuck": {"max": 500}}}},
        },
        "slo.yaml",
        ["selector-change"],
    )
    assert slo.merged("selector-change", "none").measures["alerts"] == {
        "FluxKustomizationStuck": {"max": 500},
        "FluxDependencyCycle": {"max": 120},
    }


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ({}, "expected a list of alerts"),
        ([{"fired_after": 1}], "expected an object with a non-empty name"),
        ([{"name": "A", "fired_after": 1}], "fired_after and resolved_after are required"),
        ([{"name": "A", "fired_after": -1, "resolved_after": None}], "[0].fired_after: expected a finite number"),
        ([{"name": "A", "fired_after": None, "resolved_after": None}], "listed only as a blind spot, with due_after"),
        ([{"name": "A", "fired_after": 1, "resolved_after": None, "why": 1}], "unknown key(s) why"),
    ],
)
def test_a_summary_entrys_alerts_are_validated(value: Any, problem: str) -> None:
    run = entry("selector-change", "none", {"injected": 0.0, "visible": 1.0})
    run["alerts"] = value
    found = entry_problem(run, "[3]")
    assert found is not None and found.startswith("[3].alerts: ") and problem in found
    run["alerts"] = []
    assert entry_problem(run, "[3]") is None


def test_profiles_turn_monitoring_on_and_refuse_anything_but_a_boolean() -> None:
    slo = parse({"defaults": {"ttr": {"max": 9}}, "profiles": {"n": {"monitoring": True}, "q": {}}}, "s.yaml", [])
    assert slo.profile("n").monitoring and not slo.profile("q").monitoring
    with pytest.raises(UserError, match=r"^s.yaml: profiles.n.monitoring: expected true or false, got 'yes'$"):
        parse({"defaults": {"ttr": {"max": 9}}, "profiles": {"n": {"monitoring": "yes"}}}, "s.yaml", [])


def test_a_stage_rolled_back_makes_the_rollback_alert_due_at_once() -> None:
    staged = "StagedKustomization/flux-system/app-1"
    t = timeline()
    t.stages = [
        {"object": staged, "at": 12.0, "stage": "canary", "phase": "Progressing", "revision": "r2"},
        {"object": staged, "at": 48.5, "stage": "canary", "phase": "RolledBack", "revision": "r2"},
        {"object": staged, "at": 60.0, "stage": "canary", "phase": "RolledBack", "revision": "r3"},
    ]
    assert alerts.rollbacks(t) == {staged: [alerts.Interval(48.5), alerts.Interval(60.0)]}
    assert alerts.due(t, 100.0, 20.0) == {"FluxStageRolledBack": alerts.Due(48.5, must_have_fired=True)}
    assert alerts.due(t, 60.0, 20.0) == {"FluxStageRolledBack": alerts.Due(48.5, must_have_fired=False)}
    t.stages = t.stages[:1]
    assert alerts.due(t, 100.0, 20.0) == {}


def test_the_stage_controllers_escalation_makes_the_escalation_alert_due_too() -> None:
    """It counts a failed revision under the operator's escalation metric, so FluxRecoveryEscalated pages for it."""
    staged = "StagedKustomization/flux-system/app-1"
    t = timeline()
    t.events = [
        {"at": 40.0, "reason": "RecoveryEscalated", "component": "gitops-resilience-stages", "object": staged},
        {"at": 20.0, "reason": "RecoveryEscalated", "component": "someone-else", "object": staged},
    ]
    assert alerts.due(t, 100.0, 20.0) == {"FluxRecoveryEscalated": alerts.Due(40.0, must_have_fired=True)}
