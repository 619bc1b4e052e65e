"""What recovered means, as phases: `serving` (a good revision's workload), `reporting` (Flux's status telling the
truth, Helm's honest rollback included), `recovered` (both at once), the next commit after it; their SLO budgets,
how the one judge weighs them and how the strict schemas take them. Fake objects, no cluster."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from assertions import slo
from assertions.recorder import PhaseRecorder
from assertions.schema import entry_problem
from assertions.slo import Budget, Limit
from assertions.steady import always, helmrelease_reporting
from assertions.timeline import PHASES, Timeline
from assertions.verdict import Evidence, Verdict, judge
from clusters.bootstrap import Bootstrap
from foundation.errors import UserError
from injectors import apps
from injectors.base import Fault, FaultContext
from injectors.helm import BASE_VERSION, CHARTS, HelmRetriesExhausted, HelmUpgradeUnready, at_chart
from injectors.records import RevertRecord
from injectors.registry import FAULTS
from injectors.rollout import UnhealthyRollout

HEAD = "main@sha1:" + "c" * 40
ROLLBACK_MESSAGE = "Helm rollback to previous release app/web.v1 with chart demo-app@1.0.0 succeeded"


class Reader:
    def __init__(self, *objects: dict[str, Any]) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        for obj in objects:
            self.put(obj)

    def put(self, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        self.objects[(obj["kind"], meta.get("namespace") or "", meta["name"])] = obj

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        return self.objects.get((kind, namespace or "", name))


def context(tmp_path: Path) -> FaultContext:
    git = SimpleNamespace(includes=lambda applied, wanted: False)
    cluster: Any = SimpleNamespace(bootstrap=Bootstrap(), git=git)
    ctx = FaultContext(cluster, RevertRecord(tmp_path / "r.json", "f", {}), "app")
    ctx.state["head"] = HEAD
    return ctx


def conditions(*conds: tuple[str, str, str, str]) -> list[dict[str, str]]:
    return [{"type": t, "status": s, "reason": r, "message": m} for t, s, r, m in conds]


def kustomization(ready: str = "True", reason: str = "ReconciliationSucceeded", revision: str = HEAD) -> dict[str, Any]:
    return {
        "kind": "Kustomization",
        "metadata": {"name": "app", "namespace": "flux-system", "generation": 1},
        "status": {
            "observedGeneration": 1,
            "lastAppliedRevision": revision,
            "conditions": conditions(("Ready", ready, reason, reason)),
        },
    }


def helmrelease(
    *conds: tuple[str, str, str, str], deployed: str = BASE_VERSION, failed: str = "1.2.0"
) -> dict[str, Any]:
    history = [{"chartVersion": failed, "status": "failed"}, {"chartVersion": deployed, "status": "deployed"}]
    return {
        "kind": "HelmRelease",
        "metadata": {"name": "web", "namespace": "app", "generation": 2},
        "status": {"observedGeneration": 2, "history": history, "conditions": conditions(*conds)},
    }


UPGRADE_FAILED = (
    ("Ready", "False", "UpgradeFailed", "Helm upgrade failed for release app/web with chart demo-app@1.2.0: timeout"),
    (
        "Released",
        "False",
        "UpgradeFailed",
        "Helm upgrade failed for release app/web with chart demo-app@1.2.0: timeout",
    ),
)
ROLLED_BACK = (
    ("Ready", "False", "RollbackSucceeded", ROLLBACK_MESSAGE),
    ("Remediated", "True", "RollbackSucceeded", ROLLBACK_MESSAGE),
    (
        "Released",
        "False",
        "UpgradeFailed",
        "Helm upgrade failed for release app/web with chart demo-app@1.2.0: timeout",
    ),
)


def deployment(
    name: str = "web", chart: str | None = BASE_VERSION, available: bool = True, **spec: Any
) -> dict[str, Any]:
    """The release's Deployment as the demo-app chart renders `chart` (or the app's own with an image)."""
    template: dict[str, Any] = {"metadata": {"labels": {"app.kubernetes.io/name": name}, "annotations": {}}}
    values = CHARTS.get(chart or "", {})
    template["metadata"]["labels"] |= values.get("podLabels") or {}
    template["metadata"]["annotations"] |= values.get("podAnnotations") or {}
    if values.get("podBehavior"):
        template["metadata"]["annotations"][apps.POD_BEHAVIOR] = values["podBehavior"]
    template["spec"] = {"containers": [{"name": "app", "image": spec.pop("image", "registry.local/app:1.0.0")}]}
    ready = 2 if available else 1
    return {
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "app", "generation": 1},
        "spec": {"replicas": 2, "template": template, **spec},
        "status": {
            "observedGeneration": 1,
            "replicas": 2,
            "updatedReplicas": 2,
            "readyReplicas": ready,
            "conditions": [{"type": "Available", "status": "True"}],
        },
    }


# -- the checks ------------------------------------------------------------------------------------------------


def test_a_chart_version_is_told_by_the_pod_template_its_values_render() -> None:
    assert at_chart(BASE_VERSION)(deployment(chart=BASE_VERSION))
    assert not at_chart(BASE_VERSION)(deployment(chart="1.2.0"))  # never-ready pods
    assert at_chart("1.3.0")(deployment(chart="1.3.0")) and not at_chart("1.3.0")(deployment(chart=BASE_VERSION))
    assert at_chart("1.4.0")(deployment(chart="1.4.0")) and not at_chart(BASE_VERSION)(deployment(chart="1.4.0"))
    live, values = deployment(chart="1.3.0"), {"podLabels": {"next-commit": "1"}}
    live["spec"]["template"]["metadata"]["labels"]["next-commit"] = "1"
    assert at_chart("1.3.0", values)(live) and not at_chart("1.3.0", values)(deployment(chart="1.3.0"))
    assert at_chart("1.3.0")(live)  # labels no chart version sets are not the chart's


def test_a_helm_rollback_reported_honestly_counts_as_reporting_only_at_the_last_good_release() -> None:
    check = helmrelease_reporting("app", "web", None, BASE_VERSION)
    assert check(Reader(helmrelease(*ROLLED_BACK))) == (True, "HelmRelease app/web rolled back to 1.0.0 and says so")
    assert check(Reader(helmrelease(*UPGRADE_FAILED)))[0] is False
    ok, why = check(Reader(helmrelease(*ROLLED_BACK, deployed="0.9.0")))
    assert not ok and why.endswith("nor HelmRelease app/web rolled back to 0.9.0, want 1.0.0")
    stale = helmrelease(*ROLLED_BACK)
    stale["metadata"]["generation"] = 3  # a new spec not yet seen: the rollback says nothing about it
    assert check(Reader(stale))[0] is False
    ready_only = helmrelease_reporting("app", "web")
    assert ready_only(Reader(helmrelease(*ROLLED_BACK)))[0] is False  # without a last good release: Ready only
    # Remediated=True alone says it too (Ready moved on to the retry's Progressing).
    retrying = helmrelease(("Ready", "Unknown", "Progressing", "upgrading"), *ROLLED_BACK[1:])
    assert check(Reader(retrying))[0] is True


def test_every_fault_defines_recovered_as_serving_and_reporting(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    for name, fault in FAULTS.items():
        assert type(fault).recovered is Fault.recovered, f"{name} overrides recovered"
        assert fault.recovered(ctx).name == f"{fault.serving(ctx).name} & {fault.reporting(ctx).name}"


# -- the recorder ------------------------------------------------------------------------------------------------


def test_a_helm_rollback_serves_then_reports_and_is_recovered_with_a_note(tmp_path: Path) -> None:
    ctx, fault = context(tmp_path), HelmUpgradeUnready()
    reader, timeline = Reader(kustomization(), helmrelease(("Ready", "True", "Succeeded", "ok"))), Timeline()
    reader.put(deployment(chart=BASE_VERSION))
    recorder = PhaseRecorder(timeline, fault.visible(ctx), None, fault.watched_refs(ctx), requires_visible=True)
    recorder.attach(reader)
    timeline.mark("injected", 100.0)
    recorder.expect(fault.serving(ctx), fault.reporting(ctx))
    recorder.evaluate(100.5)  # the good release still serves, but the fault has not shown: nothing yet
    assert set(timeline.marks) == {"injected"}

    def at(when: float, *objects: dict[str, Any]) -> None:
        for obj in objects:
            reader.put(obj)
            recorder.on_change("MODIFIED", obj, when)

    at(101.0, deployment(chart="1.2.0", available=False), helmrelease(*UPGRADE_FAILED))
    at(102.0, deployment(chart=BASE_VERSION))  # Helm rolled the Deployment back; the status lags
    assert set(timeline.marks) == {"injected", "visible", "serving"}
    assert recorder.last_recovered.startswith("HelmRelease app/web not Ready: UpgradeFailed; nor ")
    at(103.0, helmrelease(*ROLLED_BACK))
    assert timeline.since_injected_all() == {
        "injected": 0.0,
        "visible": 1.0,
        "recovered": 3.0,
        "serving": 2.0,
        "reporting": 3.0,
    }
    assert recorder.notes == [
        "HelmRelease/app/web recovered by Helm's own rollback to 1.0.0: Flux reports RollbackSucceeded, not Ready=True"
    ]


def test_a_kustomization_not_ready_is_not_reporting_even_while_a_good_revision_serves(tmp_path: Path) -> None:
    ctx, fault = context(tmp_path), UnhealthyRollout()
    failed = kustomization("False", "HealthCheckFailed")
    reader, timeline = Reader(failed, deployment(image="registry.local/app:1.0.0")), Timeline()
    recorder = PhaseRecorder(timeline, fault.visible(ctx), None, fault.watched_refs(ctx), requires_visible=True)
    recorder.attach(reader)
    timeline.mark("injected", 100.0)
    recorder.expect(fault.serving(ctx), fault.reporting(ctx))
    failed["status"]["conditions"][0]["message"] = "timeout waiting for: [Deployment/app/web status: 'InProgress']"
    recorder.on_change("MODIFIED", failed, 120.0)
    assert set(timeline.marks) == {"injected", "visible", "serving"}
    rolled = kustomization("False", "RollbackSucceeded")  # no such remediation for a Kustomization: not the truth
    reader.put(rolled)
    recorder.on_change("MODIFIED", rolled, 121.0)
    assert not timeline.has("reporting") and not timeline.has("recovered")
    reader.put(kustomization())
    recorder.on_change("MODIFIED", kustomization(), 122.0)
    assert timeline.marks["reporting"] == timeline.marks["recovered"] == 122.0 and recorder.notes == []


def test_a_fault_whose_git_is_good_still_needs_ready_at_its_version(tmp_path: Path) -> None:
    """helm-retries-exhausted: an honest rollback reports, but does not serve 1.3.0: not recovered."""
    ctx, fault = context(tmp_path), HelmRetriesExhausted()
    rolled_back = Reader(kustomization(), helmrelease(*ROLLED_BACK, failed="1.3.0"), deployment(chart=BASE_VERSION))
    assert fault.reporting(ctx)(rolled_back)[0] is True
    assert fault.recovered(ctx)(rolled_back) == (False, "Deployment app/web not at demo-app 1.3.0")
    upgraded = helmrelease(("Ready", "True", "UpgradeSucceeded", "ok"), deployed="1.3.0")
    assert fault.recovered(ctx)(Reader(kustomization(), upgraded, deployment(chart="1.3.0")))[0] is True
    older_head = kustomization(revision="main@sha1:" + "d" * 40)
    ok, why = fault.recovered(ctx)(Reader(older_head, upgraded, deployment(chart="1.3.0")))
    assert not ok and f"want {HEAD} or later; nor " in why


def test_phases_after_recovery_are_marked_no_earlier_than_followed() -> None:
    reader, timeline = Reader(kustomization()), Timeline()
    recorder = PhaseRecorder(timeline, always(), always(), set(), requires_visible=False)
    recorder.attach(reader)
    timeline.mark("injected", 100.0)
    recorder.evaluate(101.0)
    assert timeline.marks["recovered"] == 101.0
    recorder.follow("next-commit", always())
    recorder.evaluate(50.0)  # an event received long before: counts from when the phase was followed
    assert timeline.marks["next-commit"] > 101.0


def test_outcome_and_next_commit_phases_neither_split_nor_add_to_the_ttr() -> None:
    timeline = Timeline()
    for phase, at in (("injected", 0.0), ("visible", 2.0), ("serving", 3.0), ("reporting", 5.0), ("recovered", 5.0)):
        timeline.mark(phase, at)
    timeline.mark("next-commit", 9.5)
    assert timeline.phase_seconds() == {
        "visible": 2.0,
        "recovered": 3.0,
        "serving": 3.0,
        "reporting": 5.0,
        "next-commit": 4.5,
    }
    assert timeline.ttr == 5.0 and {"serving", "reporting", "next-commit"} <= set(PHASES)


# -- budgets and the judge ---------------------------------------------------------------------------------------

BUDGET = Budget(ttr=Limit(max=60.0), wait=120.0)


def evidence(**phases: float) -> Evidence:
    next_commit = phases.pop("taken_after", None)
    measurements = {"next_commit": {"pushed_at": 12.0, "taken_after": next_commit}} if next_commit is not None else {}
    return Evidence(ttr=10.0, proven=True, phases=phases, measurements=measurements)


@pytest.mark.parametrize(
    ("phases", "budget", "verdict", "reason"),
    [
        ({"serving": 3.0}, {}, Verdict.PASS, "TTR 10.0s within 60s"),  # recorded, not judged
        ({}, {"serving": 30.0}, Verdict.BREACH, "serving never reached (budget max 30s)"),
        ({"serving": 45.0}, {"serving": 30.0}, Verdict.BREACH, "serving 45.0s > max 30s"),
        (
            {"serving": 3.0, "reporting": 9.0},
            {"serving": 30.0, "reporting": 5.0},
            Verdict.BREACH,
            "reporting 9.0s > max 5s",
        ),
        ({"serving": 3.0}, {"serving": 30.0}, Verdict.PASS, "TTR 10.0s within 60s"),
        ({}, {"next_commit": 60.0}, Verdict.BREACH, "next-commit never measured (budget max 60s)"),
        (
            {"taken_after": 70.0},
            {"next_commit": 60.0},
            Verdict.BREACH,
            "next-commit taken 70.0s after its push > max 60s",
        ),
        ({"taken_after": 7.0}, {"next_commit": 60.0}, Verdict.PASS, "TTR 10.0s within 60s"),
    ],
)
def test_the_judge_breaches_a_budgeted_phase_over_its_max_or_missing(
    phases: dict[str, float], budget: dict[str, float], verdict: Verdict, reason: str
) -> None:
    judgement = judge(evidence(**phases), dataclasses.replace(BUDGET, phases=budget))
    assert (judgement.verdict, judgement.reason) == (verdict, reason)
    assert judgement.excusable is (verdict is Verdict.BREACH)  # time missed: a baseline may


def test_a_next_commit_not_taken_is_a_breach_when_budgeted() -> None:
    measured = Evidence(ttr=10.0, proven=True, measurements={"next_commit": {"pushed_at": 12.0, "taken_after": None}})
    judgement = judge(measured, dataclasses.replace(BUDGET, phases={"next_commit": 60.0}))
    assert judgement.verdict is Verdict.BREACH
    assert judgement.reason == "next-commit: the commit pushed after recovery was not taken (budget max 60s)"
    assert judge(measured, BUDGET).passed


def test_phase_budgets_merge_like_ttr_and_are_recorded_for_the_gate() -> None:
    raw = {
        "defaults": {"ttr": {"max": 60}, "serving": {"max": 30}},
        "scenarios": {
            "helm-upgrade-broken": {"next_commit": {"max": 90}, "recoveries": {"operator": {"serving": {"max": 10}}}}
        },
    }
    slo_file = slo.parse(raw, "slo.yaml", FAULTS)
    assert slo_file.budget("helm-upgrade-broken", "none").phases == {"serving": 30, "next_commit": 90}
    budget = slo_file.budget("helm-upgrade-broken", "operator")
    assert budget.phases == {"serving": 10, "next_commit": 90}
    recorded = budget.to_json()
    assert recorded["serving"] == {"max": 10} and recorded["next_commit"] == {"max": 90}
    assert Budget.from_json(recorded).phases == budget.phases
    assert "reporting" not in recorded and "next_commit" not in slo_file.budget("selector-change", "none").to_json()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"defaults": {"ttr": {"max": 60}, "serving": {}}}, "defaults.serving: missing max"),
        ({"defaults": {"ttr": {"max": 60}, "serving": 30}}, "defaults.serving: expected a mapping, got int"),
        ({"defaults": {"ttr": {"max": 60}, "serving": {"max": 0}}}, "defaults.serving.max: expected a finite positive"),
        (
            {"defaults": {"ttr": {"max": 60}, "serving": {"max": True}}},
            "defaults.serving.max: expected a finite positive",
        ),
        ({"defaults": {"ttr": {"max": 60}, "reporting": {"max": 1e12}}}, "defaults.reporting.max: expected a finite"),
        (
            {"defaults": {"ttr": {"max": 60}, "next_commit": {"p95": 5}}},
            "defaults.next_commit.p95: unknown key (expected max)",
        ),
        ({"defaults": {"ttr": {"max": 60}, "next-commit": {"max": 5}}}, "defaults.next-commit: unknown key"),
    ],
)
def test_the_slo_schema_refuses_bad_phase_budgets(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(UserError) as refused:
        slo.parse(raw, "slo.yaml", FAULTS)
    assert str(refused.value).startswith(f"slo.yaml: {message}"), str(refused.value)


def test_the_summary_entry_schema_takes_phases_and_the_next_commit_strictly() -> None:
    entry: dict[str, Any] = {
        "fault": "helm-upgrade-broken",
        "recovery": "operator",
        "verdict": "pass",
        "ttr_seconds": 3.0,
        "phases": {"recovered": 3.0, "next-commit": 4.0},
        "proven": True,
        "data_violations": [],
        "since_injected": {"injected": 0.0, "serving": 1.0, "recovered": 3.0},
        "next_commit": {"pushed_at": 3.2, "taken_after": 4.0},
        "budget": {"ttr": {"max": 60}, "wait": 120, "serving": {"max": 30}, "next_commit": {"max": 60}},
    }
    assert entry_problem(entry, "e") is None
    assert entry_problem({**entry, "next_commit": {"pushed_at": 3.2, "taken_after": None}}, "e") is None
    assert (
        entry_problem({**entry, "next_commit": {"pushed_at": 3.2}}, "e") == "e.next_commit: missing key 'taken_after'"
    )
    assert entry_problem({**entry, "next_commit": {"pushed_at": -1, "taken_after": 1.0}}, "e") is not None
    bad_budget = {**entry["budget"], "serving": {"max": 30, "p95": 5}}
    assert entry_problem({**entry, "budget": bad_budget}, "e") == "e.budget.serving.p95: unknown key"
