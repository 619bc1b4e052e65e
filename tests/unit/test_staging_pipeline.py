"""Promotion logic with fakes: ordering, races of commits, rollback, restarts, drift, approval, retry, suspend.

A small simulation plays Flux: a pinned GitRepository makes its Kustomization apply that revision. After every
reconcile the invariant is checked that no stage's source was ever pinned to a revision a stage it depends on
had not passed, and the status goes through its JSON form, as it does through the API server.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import pytest

from fluxmodel import staged
from fluxmodel.conditions import revision_commit
from fluxmodel.kinds import ObjectRef
from staging.pipeline import APPLIED, Pin, Plan, StageWorld, World, reconcile
from staging.status import INVALID, NOT_FOUND, REVISION_FAILED, SOURCE_PROBLEM, SUCCEEDED, CheckResult, PipelineStatus

HOLDER = "StagedKustomization/flux-system/shop"
R0, R1, R2, R3 = (f"main@sha1:{c * 40}" for c in "0123")


def spec(*stages: dict[str, Any], suspend: bool = False) -> staged.StagedSpec:
    body = {"stages": list(stages), "suspend": suspend}
    return staged.parse(
        {"kind": "StagedKustomization", "metadata": {"name": "shop", "namespace": "flux-system"}, "spec": body}
    )


def stage(
    name: str, *deps: str, checks: tuple[str, ...] = (), health: str = "", soak: str = "", **extra: Any
) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "kustomizationRef": {"name": f"shop-{name}"}}
    if deps:
        out["dependsOn"] = list(deps)
    if checks:
        out["validationChecks"] = [{"type": c} for c in checks]
    if health:
        out["healthChecks"] = [{"type": health, "timeout": "30s"}]
    if soak:
        out["soakTime"] = soak
    return {**out, **extra}


PIPELINE = (
    stage("validation", checks=("build-success", "compatibility-check")),
    stage("canary", "validation", health="pod-ready"),
    stage("production", "canary", health="kustomization-ready"),
)


@dataclass
class FakeChecks:
    refused: dict[tuple[str, str], str] = field(default_factory=dict)  # (stage, revision) -> message
    unhealthy: set[tuple[str, str]] = field(default_factory=set)  # (stage, revision) never healthy
    calls: list[tuple[str, str, str]] = field(default_factory=list)

    def validate(self, stage: staged.Stage, revision: str) -> list[CheckResult]:
        self.calls.append(("validate", stage.name, revision))
        message = self.refused.get((stage.name, revision))
        return [CheckResult(t, message is None, message or "ok") for t in stage.validation_checks]

    def health(self, stage: staged.Stage, revision: str, kustomization: dict[str, Any] | None) -> list[CheckResult]:
        self.calls.append(("health", stage.name, revision))
        ok = (stage.name, revision) not in self.unhealthy
        return [CheckResult(h.type, ok, "ready" if ok else "pods not ready") for h in stage.health_checks]


class Sim:
    """Flux in miniature: each stage's Kustomization applies whatever its own GitRepository is pinned to."""

    def __init__(self, spec_: staged.StagedSpec, at: str = R0, checks: FakeChecks | None = None):
        self.spec = spec_
        self.checks = checks or FakeChecks()
        self.now = 1000.0
        self.head: str | None = at
        self.annotations: dict[str, str] = {}
        self.status_json: dict[str, Any] = {}
        self.sources: dict[str, dict[str, Any]] = {}
        self.kustomizations: dict[str, dict[str, Any]] = {}
        self.pins: list[Pin] = []
        self.notices: list[Any] = []
        self.fail_apply: set[tuple[str, str]] = set()
        for s in spec_.stages:
            self.sources[s.name] = {"metadata": {"name": f"shop-{s.name}", "annotations": {}}, "spec": {"ref": {}}}
            self.kustomizations[s.name] = self._ks(s.name, at)

    def _ks(
        self, name: str, revision: str, ready: bool = True, reason: str = "ReconciliationSucceeded"
    ) -> dict[str, Any]:
        status = {
            "observedGeneration": 1,
            "lastAttemptedRevision": revision,
            "conditions": [{"type": "Ready", "status": str(ready), "reason": reason, "message": "m"}],
        }
        if ready:
            status["lastAppliedRevision"] = revision
        else:
            previous = (self.kustomizations.get(name) or {}).get("status", {}).get("lastAppliedRevision")
            if previous:
                status["lastAppliedRevision"] = previous
        return {
            "metadata": {"name": f"shop-{name}", "namespace": "flux-system", "generation": 1},
            "spec": {"sourceRef": {"kind": "GitRepository", "name": f"shop-{name}"}},
            "status": status,
        }

    def pinned(self, name: str) -> str | None:
        return self.sources[name]["spec"]["ref"].get("commit")

    def world(self) -> World:
        stages = {
            n: StageWorld(copy.deepcopy(self.kustomizations.get(n)), copy.deepcopy(self.sources[n]))
            for n in self.sources
        }
        return World(self.head, stages, dict(self.annotations), self.now, HOLDER)

    def step(self, seconds: float = 1.0, flux: bool = True) -> Plan:
        """One reconcile (status read back from its JSON), then Flux applies what is pinned."""
        status = PipelineStatus.from_object({"status": self.status_json})
        plan = reconcile(self.spec, status, self.world(), self.checks)
        self.status_json = status.to_json([s.name for s in self.spec.order()], 1, self.now)
        for pin in plan.pins:
            self._check_invariant(pin, status)
            self.pins.append(pin)
            source = self.sources[pin.stage]
            source["spec"]["ref"]["commit"] = revision_commit(pin.revision)
            source["metadata"]["annotations"]["gitops.flux.io/pinned-by"] = HOLDER
        self.notices += plan.notices
        if flux:
            self.flux()
        self.now += seconds
        return plan

    def _check_invariant(self, pin: Pin, status: PipelineStatus) -> None:
        for dep in self.spec.stage(pin.stage).depends_on:
            passed = [
                h["revision"] for h in status.history if h.get("stage") == dep and h["result"] in ("Passed", "Adopted")
            ]
            assert pin.revision in passed, f"{pin.stage} pinned to {pin.revision} which {dep} never passed"

    def flux(self) -> None:
        for name in self.sources:
            commit = self.pinned(name)
            if commit is None:
                continue
            revision = f"main@sha1:{commit}"
            if (name, revision) in self.fail_apply:
                self.kustomizations[name] = self._ks(name, revision, ready=False, reason="ReconciliationFailed")
            else:
                self.kustomizations[name] = self._ks(name, revision)

    def run(self, steps: int = 20, seconds: float = 1.0) -> None:
        for _ in range(steps):
            self.step(seconds)

    def stage_status(self, name: str) -> dict[str, Any]:
        return next(s for s in self.status_json["stages"] if s["name"] == name)

    def phases(self) -> dict[str, tuple[str, str | None]]:
        return {s["name"]: (s["phase"], s.get("passedRevision")) for s in self.status_json["stages"]}

    def ready(self) -> dict[str, Any]:
        return dict(self.status_json["conditions"][0])

    def pinned_to(self, name: str) -> list[str]:
        return [p.revision for p in self.pins if p.stage == name]


def test_adoption_holds_every_stage_at_what_its_kustomization_applied() -> None:
    sim = Sim(spec(*PIPELINE))
    sim.step()
    assert sim.phases() == {n: ("Passed", R0) for n in ("validation", "canary", "production")}
    assert {p.stage: p.revision for p in sim.pins} == dict.fromkeys(("validation", "canary", "production"), R0)
    assert sim.ready()["status"] == "True" and sim.ready()["reason"] == SUCCEEDED
    assert sim.status_json["summary"] == (
        f"validation={staged.short(R0)} Passed, canary={staged.short(R0)} Passed, production={staged.short(R0)} Passed"
    )


def test_a_good_revision_moves_one_stage_at_a_time_in_order() -> None:
    sim = Sim(spec(*PIPELINE))
    sim.step()
    sim.head = R1
    order = []
    for _ in range(10):
        plan = sim.step()
        order += [p.stage for p in plan.pins if p.revision == R1]
    assert order == ["validation", "canary", "production"]
    assert sim.phases() == {n: ("Passed", R1) for n in ("validation", "canary", "production")}
    results = [(h.get("stage"), h["result"]) for h in sim.status_json["history"] if h.get("revision") == R1]
    assert results == [(s, r) for s in ("validation", "canary", "production") for r in ("Applying", "Passed")]
    assert [n.kind for n in sim.notices if n.revision == R1] == ["promoting", "passed"] * 3
    assert ("validate", "validation", R1) in sim.checks.calls
    assert sim.ready()["reason"] == SUCCEEDED


def test_a_refused_revision_is_held_at_validation_and_nothing_is_applied() -> None:
    checks = FakeChecks(refused={("validation", R1): "Deployment/shop/web: spec.selector: field is immutable"})
    sim = Sim(spec(*PIPELINE), checks=checks)
    sim.step()
    sim.head = R1
    sim.run(10)
    assert not [p for p in sim.pins if p.revision == R1]
    assert sim.stage_status("validation")["phase"] == "Failed"
    assert "field is immutable" in sim.stage_status("validation")["message"]
    assert sim.phases()["production"] == ("Passed", R0)
    assert sim.status_json["failedRevisions"][0]["revision"] == R1
    assert sim.ready()["status"] == "False" and sim.ready()["reason"] == REVISION_FAILED
    (failed,) = [n for n in sim.notices if n.kind == "failed"]
    assert failed.warning and failed.check == "build-success"
    assert len([c for c in checks.calls if c == ("validate", "validation", R1)]) == 1  # decided once
    sim.head = R2  # a fix: a newer commit starts a new attempt
    sim.run(10)
    assert sim.phases() == {n: ("Passed", R2) for n in ("validation", "canary", "production")}


def test_a_failed_health_check_rolls_the_stage_back_and_no_later_stage_gets_it() -> None:
    checks = FakeChecks(unhealthy={("canary", R1)})
    sim = Sim(spec(*PIPELINE), checks=checks)
    sim.step()
    sim.head = R1
    sim.run(40)
    assert sim.pinned_to("canary") == [R0, R1, R0]
    assert sim.pinned_to("production") == [R0]
    canary = sim.stage_status("canary")
    assert canary["phase"] == "RolledBack" and canary["passedRevision"] == R0
    assert "pod-ready" in canary["message"] and "rolled back to" in canary["message"]
    assert sim.pins[-1].bad == R1
    assert [n.kind for n in sim.notices if n.stage == "canary" and n.revision == R1] == ["promoting", "rolled-back"]
    assert sim.phases()["validation"] == ("Passed", R1)  # it passed there, and stays
    assert sim.ready()["reason"] == REVISION_FAILED


def test_an_apply_failure_rolls_back_at_once_without_waiting_for_the_timeout() -> None:
    sim = Sim(spec(*PIPELINE))
    sim.step()
    sim.fail_apply.add(("canary", R1))
    sim.head = R1
    sim.run(6)
    assert sim.stage_status("canary")["phase"] == "RolledBack"
    assert "ReconciliationFailed" in sim.stage_status("canary")["message"]


def test_r2_while_r1_is_in_stage_one_finishes_r1_and_converges_on_r2() -> None:
    sim = Sim(spec(*PIPELINE))
    sim.step()
    sim.head = R1
    sim.step(flux=False)  # validation now applies R1
    assert sim.stage_status("validation")["phase"] == "Progressing"
    sim.head = R2
    sim.run(20)
    assert sim.pinned_to("validation") == [R0, R1, R2]
    assert sim.phases() == {n: ("Passed", R2) for n in ("validation", "canary", "production")}
    for name in ("canary", "production"):
        assert sim.pinned_to(name)[-1] == R2
        assert len(sim.pinned_to(name)) == len(set(sim.pinned_to(name)))  # applied once each


def test_two_quick_commits_the_first_bad_production_ends_on_the_second_never_the_first() -> None:
    checks = FakeChecks(unhealthy={("canary", R1)})
    sim = Sim(spec(*PIPELINE), checks=checks)
    sim.step()
    sim.head = R1
    sim.run(3)
    sim.head = R2
    sim.run(60)
    assert R1 not in sim.pinned_to("production")
    assert sim.phases()["production"] == ("Passed", R2)
    assert sim.ready()["reason"] == SUCCEEDED


def test_a_dependent_never_goes_back_to_an_older_revision() -> None:
    sim = Sim(spec(*PIPELINE))
    sim.step()
    sim.head = R1
    sim.run(10)
    # Someone rolls the validation stage's status back (or it was adopted behind): production keeps R1.
    sim.head = R1
    sim.status_json["stages"][0]["passedRevision"] = R0
    sim.run(5)
    assert sim.pinned_to("production")[-1] == R1


def test_a_restart_between_the_status_write_and_the_pin_applies_nothing_twice() -> None:
    sim = Sim(spec(*PIPELINE))
    sim.step()
    sim.head = R1
    status = PipelineStatus.from_object({"status": sim.status_json})
    plan = reconcile(sim.spec, status, sim.world(), sim.checks)
    assert [p.stage for p in plan.pins] == ["validation"]
    sim.status_json = status.to_json([s.name for s in sim.spec.order()], 1, sim.now)  # written, then killed
    sim.run(10)  # a new instance from the status alone
    assert sim.pinned_to("validation") == [R0, R1]
    assert sim.phases() == {n: ("Passed", R1) for n in ("validation", "canary", "production")}
    applying = [h for h in sim.status_json["history"] if h["result"] == "Applying" and h["revision"] == R1]
    assert [h["stage"] for h in applying] == ["validation", "canary", "production"]


def test_a_moved_source_is_pinned_back_to_the_revision_its_stage_holds() -> None:
    sim = Sim(spec(*PIPELINE))
    sim.step()
    sim.sources["production"]["spec"]["ref"].pop("commit")  # drift: the pin was removed (a reapply, a person)
    plan = sim.step()
    assert [(p.stage, p.revision) for p in plan.pins] == [("production", R0)]
    sim.sources["canary"]["metadata"]["annotations"]["gitops.flux.io/pinned-by"] = "Kustomization/flux-system/x"
    plan = sim.step()
    assert [(p.stage, p.revision) for p in plan.pins] == [("canary", R0)]  # the operator's pin is taken over


def test_a_manual_stage_waits_for_approval_of_that_commit() -> None:
    sim = Sim(spec(PIPELINE[0], PIPELINE[1], {**PIPELINE[2], "approval": "manual"}))
    sim.step()
    sim.head = R1
    sim.run(10)
    production = sim.stage_status("production")
    assert production["phase"] == "Pending" and "awaits approval" in production["message"]
    assert sim.pinned_to("production") == [R0]
    sim.annotations[staged.approve_annotation("production")] = revision_commit(R1)[:7]  # type: ignore[index]
    sim.run(3)
    assert sim.phases()["production"] == ("Passed", R1)


def test_a_failed_revision_is_tried_again_only_on_request() -> None:
    checks = FakeChecks(refused={("validation", R1): "boom"})
    sim = Sim(spec(*PIPELINE), checks=checks)
    sim.step()
    sim.head = R1
    sim.run(5)
    checks.refused.clear()  # the cause went away, outside Git
    sim.run(5)
    assert sim.phases()["validation"][0] == "Failed"
    sim.annotations[staged.RETRY_ANNOTATION] = R1
    sim.run(10)
    assert sim.phases() == {n: ("Passed", R1) for n in ("validation", "canary", "production")}
    assert any(h["result"] == "RetryRequested" for h in sim.status_json["history"])


def test_soak_must_stay_green_for_its_whole_time() -> None:
    checks = FakeChecks()
    sim = Sim(spec(PIPELINE[0], stage("canary", "validation", health="pod-ready", soak="10s")), checks=checks)
    sim.step()
    sim.head = R1
    sim.run(4)
    assert sim.stage_status("canary")["phase"] == "Soaking"
    checks.unhealthy.add(("canary", R1))
    sim.run(2)
    assert sim.stage_status("canary")["phase"] == "RolledBack"
    assert "while soaking" in sim.stage_status("canary")["message"]
    sim.head = R2
    sim.run(20)
    assert sim.phases()["canary"] == ("Passed", R2)
    passed = [h for h in sim.status_json["history"] if h.get("stage") == "canary" and h["result"] == "Passed"]
    assert passed[-1]["seconds"] >= 10


def test_suspend_moves_nothing() -> None:
    sim = Sim(spec(*PIPELINE, suspend=True))
    sim.head = R1
    sim.run(5)
    assert sim.pins == [] and sim.ready()["reason"] == "Suspended"


@pytest.mark.parametrize(
    ("change", "reason", "fragment"),
    [
        (lambda s: s.kustomizations.pop("canary"), NOT_FOUND, "stage canary: Kustomization flux-system/shop-canary"),
        (
            lambda s: s.kustomizations["production"]["spec"].update(
                sourceRef={"kind": "GitRepository", "name": "shop-canary"}
            ),
            SOURCE_PROBLEM,
            "stage production: reads GitRepository flux-system/shop-canary like stage canary",
        ),
        (
            lambda s: s.kustomizations["canary"]["spec"].update(sourceRef={"kind": "OCIRepository", "name": "shop"}),
            SOURCE_PROBLEM,
            "stage canary: Kustomization flux-system/shop-canary reads a source of kind OCIRepository",
        ),
        (lambda s: s.sources["validation"]["spec"]["ref"].update(commit="f" * 40), SOURCE_PROBLEM, "by someone else"),
        (
            lambda s: s.sources["canary"]["metadata"]["annotations"].update(
                {"gitops.flux.io/pinned-by": "StagedKustomization/x/y"}
            ),
            SOURCE_PROBLEM,
            "held by StagedKustomization/x/y",
        ),
    ],
)
def test_what_the_schema_cannot_catch_is_ready_false_naming_the_stage(change: Any, reason: str, fragment: str) -> None:
    sim = Sim(spec(*PIPELINE))
    change(sim)
    status = PipelineStatus()
    plan = reconcile(sim.spec, status, sim.world(), sim.checks)
    assert plan.pins == [] and status.ready.status == "False" and status.ready.reason == reason
    assert fragment in status.ready.message and "nothing is promoted" in status.ready.message


def test_a_cycle_is_ready_false_naming_the_stage() -> None:
    cyclic = spec(stage("a", "b"), stage("b", "a"))
    status = PipelineStatus()
    plan = reconcile(cyclic, status, Sim(cyclic).world(), FakeChecks())
    assert plan.pins == [] and status.ready.reason == INVALID
    assert status.ready.message.startswith("stage a: dependsOn cycle a -> b -> a")


def test_a_stage_never_applied_is_held_at_its_source_revision_and_the_applied_check_comes_first() -> None:
    sim = Sim(spec(*PIPELINE))
    sim.kustomizations["production"]["status"] = {}
    sim.sources["production"]["status"] = {"artifact": {"revision": R0}}
    sim.step(flux=False)
    assert ("production", R0) in [(p.stage, p.revision) for p in sim.pins]
    sim.head = R1
    sim.run(8)
    production = sim.stage_status("production")
    assert production["phase"] == "Passed" and production["checks"][0]["type"] == APPLIED


def test_world_refs_of_the_plan_name_the_stage_source() -> None:
    sim = Sim(spec(*PIPELINE))
    plan = sim.step()
    assert plan.pins[0].source == ObjectRef("GitRepository", "flux-system", "shop-validation")
