"""The stage controller against an in-memory API: head source, status before pins, one pin per move, rollback
with Events, escalation and metrics, a restart that repeats nothing, pins released when the object goes."""

from __future__ import annotations

from typing import Any

from fakeclock import FakeClock as Clock

from fluxmodel.annotations import PINNED_BY, RECOVERY_ESCALATED, STAGES_COMPONENT
from fluxmodel.kinds import GIT_REPOSITORY, KUSTOMIZATION, STAGED_KUSTOMIZATION, ObjectRef
from fluxmodel.staged import HEAD_FOR_LABEL
from staging.controller import Config, Controller
from testsupport.fakekube import FakeKube

NS = "flux-system"
R0, R1 = (f"main@sha1:{c * 40}" for c in "01")
STAGED = ObjectRef(STAGED_KUSTOMIZATION.kind, NS, "shop")
STAGE = {"namespace": NS, "name": STAGED.name}


def source(name: str, revision: str) -> dict[str, Any]:
    return {
        "apiVersion": GIT_REPOSITORY.api_version,
        "kind": GIT_REPOSITORY.kind,
        "metadata": {"name": name, "namespace": NS},
        "spec": {"url": "http://git/repo.git", "interval": "1m", "ref": {"branch": "main"}},
        "status": {"artifact": {"revision": revision}},
    }


def kustomization(name: str, revision: str, ready: bool = True) -> dict[str, Any]:
    status: dict[str, Any] = {
        "observedGeneration": 1,
        "lastAttemptedRevision": revision,
        "conditions": [
            {
                "type": "Ready",
                "status": str(ready),
                "reason": "ReconciliationSucceeded" if ready else "HealthCheckFailed",
            }
        ],
    }
    if ready:
        status["lastAppliedRevision"] = revision
    return {
        "apiVersion": KUSTOMIZATION.api_version,
        "kind": KUSTOMIZATION.kind,
        "metadata": {"name": name, "namespace": NS, "generation": 1},
        "spec": {"path": "./apps/shop", "sourceRef": {"kind": "GitRepository", "name": name}},
        "status": status,
    }


def staged(timeout: str = "30s") -> dict[str, Any]:
    return {
        "apiVersion": STAGED_KUSTOMIZATION.api_version,
        "kind": STAGED_KUSTOMIZATION.kind,
        "metadata": {"name": "shop", "namespace": NS, "uid": "u-1", "generation": 1},
        "spec": {
            "stages": [
                {
                    "name": "canary",
                    "kustomizationRef": {"name": "shop-canary"},
                    "healthChecks": [{"type": "kustomization-ready", "timeout": timeout}],
                },
                {"name": "production", "kustomizationRef": {"name": "shop-production"}, "dependsOn": ["canary"]},
            ]
        },
    }


def cluster() -> FakeKube:
    kube = FakeKube()
    for name in ("shop-canary", "shop-production"):
        kube.add(source(name, R0))
        kube.add(kustomization(name, R0))
    kube.add(staged())
    return kube


def controller(kube: FakeKube, clock: Clock) -> Controller:
    ctl = Controller(kube, Config(metrics_host=None), clock)
    ctl.leader = True
    return ctl


def sync(ctl: Controller, kube: FakeKube) -> None:
    """What the informers would deliver: a fresh list of every kind."""
    for kind, table in (
        (STAGED_KUSTOMIZATION, ctl.staged),
        (KUSTOMIZATION, ctl.kustomizations),
        (GIT_REPOSITORY, ctl.sources),
    ):
        ctl._lister(kind.kind, None, table)(kube.list(kind.api_version, kind.kind))


def step(ctl: Controller, kube: FakeKube) -> None:
    sync(ctl, kube)
    ctl.process(STAGED)


def flux(kube: FakeKube, healthy: bool = True) -> None:
    """Each stage's Kustomization applies what its GitRepository is pinned to; the head follows the branch."""
    for name in ("shop-canary", "shop-production"):
        src = kube.must(GIT_REPOSITORY.api_version, GIT_REPOSITORY.kind, name, NS)
        commit = src["spec"]["ref"].get("commit")
        if commit:
            revision = f"main@sha1:{commit}"
            ok = healthy or name != "shop-canary"
            kube.patch_status(
                KUSTOMIZATION.api_version, KUSTOMIZATION.kind, name, NS, kustomization(name, revision, ok)["status"]
            )


def spec_patches(kube: FakeKube, name: str) -> list[Any]:
    return [w[4] for w in kube.writes if w[0] == "patch" and w[3] == name and "spec" in (w[4] or {})]


def status(kube: FakeKube) -> dict[str, Any]:
    return dict(kube.must(STAGED_KUSTOMIZATION.api_version, STAGED.kind, STAGED.name, NS)["status"])


def head_moves(kube: FakeKube, revision: str) -> None:
    kube.patch_status(
        GIT_REPOSITORY.api_version, GIT_REPOSITORY.kind, "shop-head", NS, {"artifact": {"revision": revision}}
    )


def test_adoption_creates_the_head_source_writes_status_then_pins() -> None:
    kube, clock = cluster(), Clock()
    ctl = controller(kube, clock)
    step(ctl, kube)
    head = kube.must(GIT_REPOSITORY.api_version, GIT_REPOSITORY.kind, "shop-head", NS)
    assert head["metadata"]["labels"][HEAD_FOR_LABEL] == "shop"
    assert head["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    assert "commit" not in head["spec"]["ref"]
    verbs = [(w[0], w[3]) for w in kube.writes]
    assert verbs.index(("patch_status", "shop")) < verbs.index(("patch", "shop-canary"))  # status first
    for name in ("shop-canary", "shop-production"):
        src = kube.must(GIT_REPOSITORY.api_version, GIT_REPOSITORY.kind, name, NS)
        assert src["spec"]["ref"]["commit"] == "0" * 40 and src["metadata"]["annotations"][PINNED_BY] == str(STAGED)
    assert status(kube)["conditions"][0]["status"] == "Unknown"  # the head has not fetched yet
    head_moves(kube, R0)
    step(ctl, kube)
    assert status(kube)["conditions"][0]["reason"] == "Succeeded"
    writes = len(kube.writes)
    step(ctl, kube)
    assert len(kube.writes) == writes  # nothing changed, nothing written


def test_a_revision_flows_and_each_source_is_pinned_once_to_it() -> None:
    kube, clock = cluster(), Clock()
    ctl = controller(kube, clock)
    step(ctl, kube)
    head_moves(kube, R1)
    for _ in range(6):
        step(ctl, kube)
        flux(kube)
        clock.now += 1
    assert [s["passedRevision"] for s in status(kube)["stages"]] == [R1, R1]
    for name in ("shop-canary", "shop-production"):
        commits = [p["spec"]["ref"]["commit"] for p in spec_patches(kube, name)]
        assert commits == ["0" * 40, "1" * 40]
    reasons = [o["reason"] for o in kube.list("v1", "Event", NS)]
    assert reasons.count("StagePromoting") == 2 and reasons.count("StagePassed") == 2
    assert {o["reportingComponent"] for o in kube.list("v1", "Event", NS)} == {STAGES_COMPONENT}


def test_every_series_a_stage_can_move_is_exported_at_zero_once_the_object_is_seen() -> None:
    """A counter that first appears at 1 shows Prometheus no increase(): FluxStageRolledBack would miss the first
    rollback of each stage and check."""
    kube, clock = cluster(), Clock()
    ctl = controller(kube, clock)
    step(ctl, kube)
    registry = ctl.metrics.registry
    for stage, checks in (("canary", ("applied", "kustomization-ready")), ("production", ("applied",))):
        assert registry.get_sample_value("flux_staged_promotion_duration_seconds_count", {**STAGE, "stage": stage}) == 0
        for check in checks:
            labels = {**STAGE, "stage": stage, "check": check}
            assert registry.get_sample_value("flux_staged_rollbacks_total", labels) == 0
            assert registry.get_sample_value("flux_staged_failed_revisions_total", labels) == 0
            for action in ("rollback_stage", "hold_revision"):
                why = {"kind": STAGED.kind, "action": action, "why": check}
                assert registry.get_sample_value("flux_recovery_escalations_total", why) == 0


def test_a_failing_stage_rolls_back_escalates_and_counts() -> None:
    kube, clock = cluster(), Clock()
    ctl = controller(kube, clock)
    step(ctl, kube)
    head_moves(kube, R1)
    for _ in range(40):
        step(ctl, kube)
        flux(kube, healthy=False)
        clock.now += 1
    canary, production = status(kube)["stages"]
    assert canary["phase"] == "RolledBack" and production["passedRevision"] == R0
    assert [p["spec"]["ref"]["commit"] for p in spec_patches(kube, "shop-canary")] == ["0" * 40, "1" * 40, "0" * 40]
    assert [p["spec"]["ref"]["commit"] for p in spec_patches(kube, "shop-production")] == ["0" * 40]
    events = {o["reason"]: o for o in kube.list("v1", "Event", NS)}
    assert events["StageRolledBack"]["type"] == "Warning" and events["RecoveryEscalated"]["type"] == "Warning"
    obj = kube.must(STAGED_KUSTOMIZATION.api_version, STAGED.kind, STAGED.name, NS)
    assert obj["metadata"]["annotations"][RECOVERY_ESCALATED].startswith("canary/kustomization-ready")
    registry = ctl.metrics.registry
    labels = {"namespace": NS, "name": "shop", "stage": "canary", "check": "kustomization-ready"}
    assert registry.get_sample_value("flux_staged_rollbacks_total", labels) == 1
    assert registry.get_sample_value("flux_staged_failed_revisions_total", labels) == 1
    why = {"kind": "StagedKustomization", "action": "rollback_stage", "why": "kustomization-ready"}
    assert registry.get_sample_value("flux_recovery_escalations_total", why) == 1
    held = {"namespace": NS, "name": "shop", "stage": "canary", "revision": R0, "phase": "RolledBack"}
    assert registry.get_sample_value("flux_staged_stage_revision", held) == 1


def test_a_new_instance_resumes_from_the_status_and_pins_nothing_again() -> None:
    kube, clock = cluster(), Clock()
    first = controller(kube, clock)
    step(first, kube)
    head_moves(kube, R1)
    step(first, kube)  # canary now Progressing at R1, its source pinned
    assert status(kube)["stages"][0]["phase"] == "Progressing"
    second = controller(kube, clock)  # the first one was killed here
    step(second, kube)
    assert len(spec_patches(kube, "shop-canary")) == 2
    flux(kube)
    clock.now += 1
    for _ in range(4):
        step(second, kube)
        flux(kube)
        clock.now += 1
    assert [s["passedRevision"] for s in status(kube)["stages"]] == [R1, R1]
    assert [p["spec"]["ref"]["commit"] for p in spec_patches(kube, "shop-canary")] == ["0" * 40, "1" * 40]
    assert [h["result"] for h in status(kube)["history"] if h.get("stage") == "canary" and h.get("revision") == R1] == [
        "Applying",
        "Passed",
    ]


def test_pins_are_released_when_the_staged_kustomization_is_deleted() -> None:
    kube, clock = cluster(), Clock()
    ctl = controller(kube, clock)
    step(ctl, kube)
    kube.delete(STAGED_KUSTOMIZATION.api_version, STAGED.kind, STAGED.name, NS)
    step(ctl, kube)
    for name in ("shop-canary", "shop-production"):
        src = kube.must(GIT_REPOSITORY.api_version, GIT_REPOSITORY.kind, name, NS)
        assert "commit" not in src["spec"]["ref"] and PINNED_BY not in (src["metadata"].get("annotations") or {})


def test_a_standby_writes_nothing() -> None:
    kube, clock = cluster(), Clock()
    ctl = controller(kube, clock)
    ctl.leader = False
    writes = len(kube.writes)
    step(ctl, kube)
    assert len(kube.writes) == writes


def test_events_on_a_stage_object_reach_its_staged_kustomization() -> None:
    kube, clock = cluster(), Clock()
    ctl = controller(kube, clock)
    sync(ctl, kube)
    assert ctl._users(ObjectRef(KUSTOMIZATION.kind, NS, "shop-production")) == {STAGED}
    assert ctl._users(ObjectRef(GIT_REPOSITORY.kind, NS, "shop-canary")) == {STAGED}
    assert ctl._users(ObjectRef(GIT_REPOSITORY.kind, NS, "shop-head")) == {STAGED}
    assert ctl._users(ObjectRef(GIT_REPOSITORY.kind, NS, "other")) == set()
