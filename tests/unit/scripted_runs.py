"""A fake fault on a FakeKube cluster, its scripted "controller" (a thread playing Flux and the recoveries), and the
gate's agreement with a run's verdict: the runner-to-gate tests share them (a helper module, not a test module)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from assertions.slo import Budget, Limit
from assertions.steady import Check, always, kustomization_ready
from assertions.verdict import RunResult
from clusters.gitops import GitOpsRepo
from clusters.model import Cluster
from fluxmodel.annotations import OPERATOR_COMPONENT, PINNED_BY
from fluxmodel.kinds import GIT_REPOSITORY, KUSTOMIZATION
from injectors import apps
from injectors.base import Fault, FaultContext
from reports.matrix import judge_entry
from testsupport.fakekube import FakeKube

BUDGET = Budget(ttr=Limit(max=1.0), detect=Limit(max=5.0), wait=2.0)
Script = Callable[["FakeFault", FaultContext], None]


def ready(kube: FakeKube, ctx: FaultContext, status: str, reason: str, revision: str | None = None) -> None:
    generation = kube.must(KUSTOMIZATION.api_version, KUSTOMIZATION.kind, ctx.app, ctx.flux_namespace)["metadata"]
    condition = {"type": "Ready", "status": status, "reason": reason, "message": reason}
    patch: dict[str, Any] = {"status": {"observedGeneration": generation["generation"], "conditions": [condition]}}
    if revision is not None:
        patch["status"]["lastAppliedRevision"] = revision
    kube.merge_patch(KUSTOMIZATION.api_version, KUSTOMIZATION.kind, ctx.app, ctx.flux_namespace, patch)


def event(kube: FakeKube, ctx: FaultContext, reason: str) -> None:
    kube.add(
        {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{ctx.app}.{reason}.{time.monotonic_ns()}", "namespace": ctx.flux_namespace},
            "reason": reason,
            "type": "Normal",
            "reportingComponent": OPERATOR_COMPONENT,
            "involvedObject": {"kind": KUSTOMIZATION.kind, "namespace": ctx.flux_namespace, "name": ctx.app},
        }
    )


class FakeFault(Fault):
    """Setup makes a Ready Kustomization and user data; inject runs the scripted controller in a thread."""

    name: ClassVar[str] = "fake-fault"
    family: ClassVar[str] = "fake"
    summary: ClassVar[str] = "a scripted fault"
    prove_within: ClassVar[float] = 1.5
    # Recovery counts only once the fault showed (its "Git" holds no new revision to wait for).
    desired_state_valid: ClassVar[bool] = False

    def __init__(self, kube: FakeKube, script: Script, takes_next_commit: bool = True) -> None:
        self.kube, self.script, self.takes_next_commit = kube, script, takes_next_commit
        self.thread: threading.Thread | None = None

    def serving(self, ctx: FaultContext) -> Check:
        return always()  # no workload: the Kustomization's Ready is the whole recovery

    def announce(self, ctx: FaultContext) -> None:
        """Flux, played: the next commit applied at once (unless this run's "Flux" never takes it)."""
        if self.takes_next_commit:
            ready(self.kube, ctx, "True", "ReconciliationSucceeded", revision=ctx.head())

    def setup(self, ctx: FaultContext) -> None:
        ctx.create_namespace()
        for obj in apps.user_data(ctx.namespace):
            ctx.apply(obj)
        ctx.apply(ctx.source())
        ctx.flux_kustomization(ctx.app, ctx.path)
        ready(self.kube, ctx, "True", "ReconciliationSucceeded")

    def steady(self, ctx: FaultContext, revision: Any) -> Check:
        return kustomization_ready(ctx.flux_namespace, ctx.app)

    def visible(self, ctx: FaultContext) -> Check:
        def shown(reader: Any) -> tuple[bool, str]:
            obj = reader.get(KUSTOMIZATION.api_version, KUSTOMIZATION.kind, ctx.app, ctx.flux_namespace) or {}
            conditions = (obj.get("status") or {}).get("conditions") or []
            return any(c.get("reason") == "FakeFailure" for c in conditions), "the fake failure"

        return Check("the fake failure", shown)

    def inject(self, ctx: FaultContext) -> None:
        self.thread = threading.Thread(target=self.script, args=(self, ctx), daemon=True)
        self.thread.start()


def show(fault: FakeFault, ctx: FaultContext) -> None:
    ready(fault.kube, ctx, "False", "FakeFailure")


def recover_after(seconds: float, then: Script | None = None) -> Script:
    def script(fault: FakeFault, ctx: FaultContext) -> None:
        show(fault, ctx)
        time.sleep(seconds)
        if then is not None:
            then(fault, ctx)
        ready(fault.kube, ctx, "True", "ReconciliationSucceeded")

    return script


def never(fault: FakeFault, ctx: FaultContext) -> None:
    show(fault, ctx)


def delete_user_secret(fault: FakeFault, ctx: FaultContext) -> None:
    for secret in fault.kube.list("v1", "Secret", ctx.namespace):
        fault.kube.delete("v1", "Secret", secret["metadata"]["name"], ctx.namespace)


def operator_acts(fault: FakeFault, ctx: FaultContext) -> None:
    event(fault.kube, ctx, "RecoveryAction")


def pin_source(fault: FakeFault, ctx: FaultContext) -> None:
    patch = {"metadata": {"annotations": {PINNED_BY: f"Kustomization/{ctx.flux_namespace}/{ctx.app}"}}}
    fault.kube.merge_patch(GIT_REPOSITORY.api_version, GIT_REPOSITORY.kind, ctx.app, ctx.flux_namespace, patch)


def detect_before_flux(fault: FakeFault, ctx: FaultContext) -> None:
    event(fault.kube, ctx, "RecoveryDetected")
    time.sleep(0.3)
    show(fault, ctx)
    event(fault.kube, ctx, "RecoveryAction")
    time.sleep(0.2)
    ready(fault.kube, ctx, "True", "ReconciliationSucceeded")


def nothing(fault: FakeFault, ctx: FaultContext) -> None:
    """The fault never shows."""


def fake_cluster(tmp_path: Path) -> Cluster:
    """A Cluster with a real GitOps repository and a FakeKube behind `cluster.kube` (no kubeconfig, no API server)."""
    git = GitOpsRepo.create(tmp_path / "git", "http://git.invalid/gitops.git", {"README.md": "fake\n"})
    fake = FakeKube()
    return Cluster("fake", "fake", tmp_path / "kubeconfig", git, connector=lambda kubeconfig, context: fake)  # type: ignore[arg-type,return-value]


def fake_kube(cluster: Cluster) -> FakeKube:
    """The FakeKube the fixture put behind `cluster.kube`."""
    kube = cluster.kube
    assert isinstance(kube, FakeKube)
    return kube


def agrees_with_the_gate(result: RunResult) -> None:
    entry = result.summary_entry()
    assert judge_entry(entry).judgement == result.judgement
    assert judge_entry(entry, BUDGET).judgement == result.judgement
