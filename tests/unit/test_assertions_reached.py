"""The `reached` figure: what a bad revision touched per stage, seen in watch events, judged by the one judge."""

from __future__ import annotations

from typing import Any

import pytest

from assertions.isolation import ForeignActivity, owned_by_run
from assertions.reached import Reached, ReachedTracker, StageWatch
from assertions.slo import Budget, Limit, parse
from assertions.verdict import Evidence, Verdict, judge
from fluxmodel.annotations import PINNED_BY, STAGES_COMPONENT
from fluxmodel.kinds import ObjectRef
from foundation.errors import UserError

BAD, GOOD = "main@sha1:" + "b" * 40, "main@sha1:" + "a" * 40
STAGES = [
    StageWatch("canary", ObjectRef("Kustomization", "flux-system", "app-canary"), "app-canary"),
    StageWatch("production", ObjectRef("Kustomization", "flux-system", "app"), "app"),
]


def tracker(bad: str | None = BAD) -> ReachedTracker:
    return ReachedTracker(STAGES, lambda: bad, lambda obj: obj.get("spec", {}).get("image") == "bad")


def ks(name: str, attempted: str) -> dict[str, Any]:
    meta = {"name": name, "namespace": "flux-system"}
    return {"kind": "Kustomization", "metadata": meta, "status": {"lastAttemptedRevision": attempted}}


def dep(namespace: str, image: str) -> dict[str, Any]:
    return {"kind": "Deployment", "metadata": {"name": "web", "namespace": namespace}, "spec": {"image": image}}


def test_a_stage_counts_its_kustomization_once_it_attempted_and_each_bad_workload() -> None:
    t = tracker()
    for obj in (
        ks("app-canary", BAD),
        ks("app-canary", BAD),
        dep("app-canary", "bad"),
        ks("app", GOOD),
        dep("app", "ok"),
    ):
        t.observe(obj)
    assert t.figure() == {"canary": 2, "production": 0}
    assert t.where() == {"canary": ["Deployment/app-canary/web", "Kustomization/flux-system/app-canary"]}


def test_an_event_naming_the_revision_counts_like_the_status() -> None:
    t = tracker()
    event = {
        "kind": "Event",
        "metadata": {"annotations": {"kustomize.toolkit.fluxcd.io/revision": BAD}},
        "involvedObject": {"kind": "Kustomization", "namespace": "flux-system", "name": "app"},
        "message": "Deployment/app/web configured",
    }
    t.observe(event)
    assert t.figure() == {"canary": 0, "production": 1}


def test_nothing_counts_before_there_is_a_bad_revision() -> None:
    t = tracker(None)
    t.observe(ks("app", BAD))
    assert t.figure() == {"canary": 0, "production": 0}


def test_the_budget_and_the_measurement_are_validated_and_judged_never_excused() -> None:
    criterion = Reached()
    assert criterion.budget_problem({"production": 0}) is None
    assert criterion.budget_problem({"production": -1}) is not None
    assert criterion.measurement_problem({"production": True}) is not None
    budget = Budget(ttr=Limit(180.0), measures={"reached": {"production": 0}})
    ok = judge(Evidence(ttr=5.0, proven=True, measurements={"reached": {"canary": 2, "production": 0}}), budget)
    assert ok.verdict is Verdict.PASS
    bad = judge(Evidence(ttr=5.0, proven=True, measurements={"reached": {"production": 1}}), budget)
    assert bad.verdict is Verdict.BREACH and not bad.excusable
    assert bad.reason == "the bad revision reached production: 1 object(s) > 0"


def test_the_slo_file_budgets_it_per_recovery_mode() -> None:
    raw = {
        "defaults": {"ttr": {"max": 60}},
        "scenarios": {"f": {"recoveries": {"staged": {"reached": {"production": 0}}}}},
    }
    slo = parse(raw, "slo.yaml", ["f"])
    assert slo.budget("f", "staged").measures == {"reached": {"production": 0}}
    assert slo.budget("f", "none").measures == {}
    with pytest.raises(UserError, match=r"scenarios.f.reached: expected a mapping of stage name"):
        parse({"defaults": {"ttr": {"max": 60}}, "scenarios": {"f": {"reached": 0}}}, "slo.yaml", ["f"])


@pytest.mark.parametrize(("mode", "foreign"), [("none", True), ("operator", True), ("staged", False)])
def test_the_stage_controller_acting_on_another_modes_run_makes_it_foreign(mode: str, foreign: bool) -> None:
    activity = ForeignActivity(mode, owned_by_run("app", "app"))
    meta = {
        "name": "app-canary",
        "namespace": "flux-system",
        "annotations": {PINNED_BY: "StagedKustomization/flux-system/app"},
    }
    activity.observe({"kind": "GitRepository", "metadata": meta})
    event = {
        "kind": "Event",
        "reason": "StageRolledBack",
        "reportingComponent": STAGES_COMPONENT,
        "involvedObject": {"kind": "StagedKustomization", "namespace": "flux-system", "name": "app"},
    }
    activity.observe(event)
    assert bool(activity.findings) is foreign
    if foreign:
        assert "held by the stage controller" in activity.findings[0]


def test_the_report_shows_the_figure_of_each_run() -> None:
    from reports_support import entry

    from reports.matrix import build_cells, render_html, render_table

    run = entry("staged-selector-change", "staged", {"injected": 0.0, "visible": 1.0, "recovered": 2.0})
    run["reached"] = {"validation": 0, "canary": 0, "production": 0}
    cells = build_cells([run])
    assert "reached: validation 0, canary 0, production 0" in render_table(cells)
    assert "reached: validation 0, canary 0, production 0" in render_html(cells)
