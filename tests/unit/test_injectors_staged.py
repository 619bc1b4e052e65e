"""The staged faults' own checks, on objects as the watch would show them: proof, held at the last good revision,
and the controller-kill's "each stage once"."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from clusters.bootstrap import Bootstrap
from injectors.apps import NEW_IMAGE
from injectors.base import FaultContext
from injectors.records import RevertRecord
from injectors.registry import FAULTS, families
from injectors.staged import StagedControllerKill, StagedUnhealthyRollout, staged_object, stages

GOOD, BAD = "main@sha1:" + "a" * 40, "main@sha1:" + "b" * 40


class Reader:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}

    def put(self, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        self.objects[(obj["kind"], meta.get("namespace") or "", meta["name"])] = obj

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        return self.objects.get((kind, namespace or "", name))


def context(tmp_path: Path, mode: str = "staged") -> FaultContext:
    cluster: Any = SimpleNamespace(bootstrap=Bootstrap())
    ctx = FaultContext(cluster, RevertRecord(tmp_path / "r.json", "f", {}), "app", mode=mode)
    ctx.setup_revision = GOOD
    ctx.state.update(head=GOOD, bad=BAD)
    return ctx


def world(
    ctx: FaultContext, at: dict[str, str], status: dict[str, Any], image: str = "registry.local/app:1.0.0"
) -> Reader:
    reader = Reader()
    for stage in stages(ctx):
        ready = {"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded"}
        reader.put(
            {
                "kind": "Kustomization",
                "metadata": {"name": stage.kustomization, "namespace": "flux-system", "generation": 1},
                "status": {"observedGeneration": 1, "lastAppliedRevision": at[stage.name], "conditions": [ready]},
            }
        )
        reader.put(
            {
                "kind": "Deployment",
                "metadata": {"name": "web", "namespace": stage.namespace, "generation": 1},
                "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "app", "image": image}]}}},
                "status": {
                    "observedGeneration": 1,
                    "replicas": 1,
                    "updatedReplicas": 1,
                    "readyReplicas": 1,
                    "conditions": [{"type": "Available", "status": "True"}],
                },
            }
        )
        reader.put(
            {
                "kind": "GitRepository",
                "metadata": {
                    "name": stage.kustomization,
                    "namespace": "flux-system",
                    "generation": 2,
                    "annotations": {"gitops.flux.io/pinned-by": "StagedKustomization/flux-system/app"},
                },
            }
        )
    obj = staged_object(ctx)
    obj["status"] = status
    reader.put(obj)
    return reader


def test_the_family_is_registered_and_runs_with_and_without_stages() -> None:
    names = families()["staged"]
    assert len(names) == 5
    for name in names:
        fault = FAULTS[name]
        assert fault.runs_under("staged") and not fault.runs_under("operator")
    assert not StagedControllerKill().runs_under("none") and StagedUnhealthyRollout().runs_under("none")


def test_an_unhealthy_rollout_is_recovered_once_held_at_the_last_good_revision(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    fault = StagedUnhealthyRollout()
    failed = {"failedRevisions": [{"revision": BAD, "stage": "canary", "check": "pod-ready"}]}
    held = world(ctx, {"validation": BAD, "canary": GOOD, "production": GOOD}, failed)
    assert fault.visible(ctx)(held)[0] and fault.recovered(ctx)(held)[0]
    wrong_check = world(
        ctx,
        {"validation": BAD, "canary": GOOD, "production": GOOD},
        {"failedRevisions": [{**failed["failedRevisions"][0], "check": "applied"}]},
    )
    ok, why = fault.visible(ctx)(wrong_check)
    assert not ok and "failed applied, not pod-ready" in why
    reached_production = world(ctx, {"validation": BAD, "canary": GOOD, "production": BAD}, failed)
    assert not fault.recovered(ctx)(reached_production)[0]
    assert not fault.visible(ctx)(world(ctx, {"validation": BAD, "canary": GOOD, "production": GOOD}, {}))[0]


def test_the_controller_kill_is_recovered_only_if_each_stage_moved_once(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    ctx.state["head"] = BAD  # the good change of this fault is the new head
    ctx.state["generations"] = {s.kustomization: 1 for s in stages(ctx)}
    history = [{"stage": s.name, "revision": BAD, "result": r} for s in stages(ctx) for r in ("Applying", "Passed")]
    ready = {"conditions": [{"type": "Ready", "status": "True", "reason": "Succeeded"}], "history": history}
    at_head = dict.fromkeys(("validation", "canary", "production"), BAD)
    fault = StagedControllerKill()
    assert fault.recovered(ctx)(world(ctx, at_head, ready, NEW_IMAGE))[0]
    ok, why = fault.recovered(ctx)(world(ctx, at_head, ready))
    assert not ok and why == f"Deployment app/web not at image {NEW_IMAGE}"  # serving the old release
    twice = {**ready, "history": [*history, {"stage": "canary", "revision": BAD, "result": "Applying"}]}
    ok, why = fault.recovered(ctx)(world(ctx, at_head, twice, NEW_IMAGE))
    assert not ok and "stage canary history" in why
    ctx.state["generations"] = {s.kustomization: 0 for s in stages(ctx)}  # a source changed twice
    ok, why = fault.recovered(ctx)(world(ctx, at_head, ready, NEW_IMAGE))
    assert not ok and "changed 2 time(s), not once" in why
