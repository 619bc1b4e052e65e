"""The whole verdict path, runner to gate, with a fake fault on a FakeKube cluster (no API server, no Flux).

A scripted "controller" thread plays Flux and the recoveries: it shows the fault, recovers it (or not), deletes
user data, or leaves another recovery's marks on the run's objects. Each kind of run gets the verdict it must,
and the gate, re-judging the summary entry, agrees.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from assertions import invariants
from assertions.slo import Budget, Limit
from assertions.steady import Check, kustomization_ready
from assertions.verdict import RunResult, Verdict
from clusters.gitops import GitOpsRepo
from clusters.model import Cluster
from fluxmodel.annotations import OPERATOR_COMPONENT, PINNED_BY
from fluxmodel.kinds import GIT_REPOSITORY, KUSTOMIZATION
from foundation.errors import HarnessError
from injectors import apps
from injectors.base import Fault, FaultContext
from reports.matrix import build_cells, judge_entry
from scenarios import runner
from scenarios.recoveries import RecoveryMode, parse
from testsupport.fakekube import FakeKube

BUDGET = Budget(ttr=Limit(max=1.0), detect=Limit(max=5.0), wait=2.0)
Script = Callable[["FakeFault", FaultContext], None]


def ready(kube: FakeKube, ctx: FaultContext, status: str, reason: str) -> None:
    generation = kube.must(KUSTOMIZATION.api_version, KUSTOMIZATION.kind, ctx.app, ctx.flux_namespace)["metadata"]
    condition = {"type": "Ready", "status": status, "reason": reason, "message": reason}
    patch = {"status": {"observedGeneration": generation["generation"], "conditions": [condition]}}
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

    def __init__(self, kube: FakeKube, script: Script) -> None:
        self.kube, self.script = kube, script
        self.thread: threading.Thread | None = None

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


@pytest.fixture
def cluster(tmp_path: Path) -> Cluster:
    git = GitOpsRepo.create(tmp_path / "git", "http://git.invalid/gitops.git", {"README.md": "fake\n"})
    fake = FakeKube()
    return Cluster("fake", "fake", tmp_path / "kubeconfig", git, connector=lambda kubeconfig, context: fake)  # type: ignore[arg-type,return-value]


def fake_kube(cluster: Cluster) -> FakeKube:
    """The FakeKube the fixture put behind `cluster.kube`."""
    kube = cluster.kube
    assert isinstance(kube, FakeKube)
    return kube


def execute(
    cluster: Cluster,
    tmp_path: Path,
    script: Script,
    mode: str = "none",
    baselines: tuple[str, ...] = (),
    budget: Budget = BUDGET,
) -> RunResult:
    fault = FakeFault(fake_kube(cluster), script)
    recovery: RecoveryMode = parse(mode)
    run = runner.ScenarioRun(
        cluster, fault, recovery, budget, tmp_path / "run", node_id=f"t-{mode}", baselines=baselines
    )
    result = run.execute()
    if fault.thread is not None:
        fault.thread.join(5)
        assert not fault.thread.is_alive(), "the scripted controller did not finish"
    return result


def agrees_with_the_gate(result: RunResult) -> None:
    entry = result.summary_entry()
    assert judge_entry(entry).judgement == result.judgement
    assert judge_entry(entry, BUDGET).judgement == result.judgement


def test_a_recovery_within_budget_passes_and_everything_it_made_is_reverted(cluster: Cluster, tmp_path: Path) -> None:
    result = execute(cluster, tmp_path, recover_after(0.3))
    assert result.verdict is Verdict.PASS, result.reason
    assert result.proven and result.data_violations == [] and 0.25 < (result.ttr_seconds or 0) < 1.0
    assert cluster.kube.list(KUSTOMIZATION.api_version, KUSTOMIZATION.kind) == []  # the revert record ran
    agrees_with_the_gate(result)


def test_a_slow_recovery_is_a_breach(cluster: Cluster, tmp_path: Path) -> None:
    # A wait well past the recovery: on a loaded machine the 1.3 s recovery may arrive after 2 s.
    result = execute(cluster, tmp_path, recover_after(1.3), budget=dataclasses.replace(BUDGET, wait=30.0))
    assert result.verdict is Verdict.BREACH and result.reason.startswith("TTR ")
    agrees_with_the_gate(result)


def test_no_recovery_within_the_wait_from_injection_is_not_recovered(cluster: Cluster, tmp_path: Path) -> None:
    result = execute(cluster, tmp_path, never)
    assert result.verdict is Verdict.NOT_RECOVERED
    assert result.reason.startswith("not recovered within 2s of injection (Kustomization ")
    agrees_with_the_gate(result)


def test_a_baseline_mode_may_miss_its_time_budget(cluster: Cluster, tmp_path: Path) -> None:
    result = execute(cluster, tmp_path, never, baselines=("none",))
    assert result.verdict is Verdict.NOT_RECOVERED and result.judgement and result.judgement.excusable
    (cell,) = build_cells([result.summary_entry()], baselines={"none"})
    assert cell.excused and not cell.fails_gate


def test_lost_user_data_is_a_breach_even_when_recovered_in_time(cluster: Cluster, tmp_path: Path) -> None:
    result = execute(cluster, tmp_path, recover_after(0.2, then=delete_user_secret), baselines=("none",))
    assert result.verdict is Verdict.BREACH
    assert result.data_violations and "was deleted" in result.data_violations[0]
    (cell,) = build_cells([result.summary_entry()], baselines={"none"})
    assert cell.fails_gate  # a baseline does not excuse lost data
    agrees_with_the_gate(result)


def test_a_fault_that_never_shows_is_invalid(cluster: Cluster, tmp_path: Path) -> None:
    result = execute(cluster, tmp_path, nothing)
    assert result.verdict is Verdict.INVALID and result.reason.startswith("fault not proven: no effect within 2s")
    agrees_with_the_gate(result)


def test_a_harness_error_after_the_proof_is_invalid(cluster: Cluster, tmp_path: Path) -> None:
    class Broken(FakeFault):
        def after_proof(self, ctx: FaultContext) -> None:
            raise HarnessError("the git server went away")

    run = runner.ScenarioRun(cluster, Broken(fake_kube(cluster), recover_after(0.1)), parse("none"), BUDGET, tmp_path)
    result = run.execute()
    assert (
        result.verdict is Verdict.INVALID and result.reason == "harness error: HarnessError: the git server went away"
    )
    agrees_with_the_gate(result)


def test_a_failed_data_check_never_leaves_a_pass(
    cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runner judged first and snapshotted after; a snapshot that raised left the pass standing."""
    snapshot = invariants.snapshot
    calls: list[int] = []

    def flaky(kube: Any, namespaces: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise TimeoutError("the API server did not answer")
        return snapshot(kube, namespaces)

    monkeypatch.setattr(invariants, "snapshot", flaky)
    result = execute(cluster, tmp_path, recover_after(0.1))
    assert result.verdict is Verdict.INVALID and "TimeoutError: the API server did not answer" in result.reason


@pytest.mark.parametrize(
    ("script", "what"),
    [
        (recover_after(0.2, then=operator_acts), "the recovery operator's RecoveryAction Event on Kustomization"),
        (recover_after(0.2, then=pin_source), "pinned by the recovery operator"),
    ],
)
def test_another_recovery_acting_on_the_runs_objects_makes_it_invalid(
    cluster: Cluster, tmp_path: Path, script: Script, what: str
) -> None:
    for mode in ("none", "flux-native"):
        result = execute(cluster, tmp_path, script, mode=mode)
        assert result.verdict is Verdict.INVALID, result.reason
        assert what in result.reason and f"while measuring {mode!r}" in result.reason
        agrees_with_the_gate(result)


def test_a_flux_native_knob_on_an_operator_run_makes_it_invalid(cluster: Cluster, tmp_path: Path) -> None:
    def force(fault: FakeFault, ctx: FaultContext) -> None:
        patch = {"spec": {"force": True}}
        fault.kube.merge_patch(KUSTOMIZATION.api_version, KUSTOMIZATION.kind, ctx.app, ctx.flux_namespace, patch)

    result = execute(cluster, tmp_path, recover_after(0.2, then=force), mode="command:true")
    assert result.verdict is Verdict.INVALID and "spec.force on Kustomization" in result.reason


def test_an_operator_detecting_before_flux_shows_the_fault_is_timed_and_reported(
    cluster: Cluster, tmp_path: Path
) -> None:
    result = execute(cluster, tmp_path, detect_before_flux, mode="command:true")
    assert result.verdict is Verdict.PASS, result.reason
    assert result.timeline.marks["detected"] < result.timeline.marks["visible"]
    assert "note: the operator's RecoveryDetected came before Flux showed the fault" in result.reason
    agrees_with_the_gate(result)


def test_each_runs_flux_objects_carry_its_mode(cluster: Cluster, tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []

    def look(fault: FakeFault, ctx: FaultContext) -> None:
        seen.append(fault.kube.must(KUSTOMIZATION.api_version, KUSTOMIZATION.kind, ctx.app, ctx.flux_namespace))
        recover_after(0.1)(fault, ctx)

    execute(cluster, tmp_path, look, mode="flux-native")
    assert seen[0]["metadata"]["labels"]["resilience.gitops.io/recovery"] == "flux-native"
    assert seen[0]["spec"]["force"] is True


class StepRecorder:
    """A stand-in for pytest's hook relay: each phase the runner announces, with how it ended."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, str]] = []

    def pytest_resilience_step(self, run: runner.ScenarioRun, name: str) -> list[Any]:
        return [self.record(name)]

    @contextlib.contextmanager
    def record(self, name: str) -> Iterator[None]:
        try:
            yield
        except BaseException as e:
            self.steps.append((name, type(e).__name__))
            raise
        self.steps.append((name, "ok"))


def test_the_runner_announces_its_phases_through_the_step_hook(cluster: Cluster, tmp_path: Path) -> None:
    class Broken(FakeFault):
        def after_proof(self, ctx: FaultContext) -> None:
            raise HarnessError("the git server went away")

    steps = StepRecorder()
    fault = Broken(fake_kube(cluster), recover_after(0.1))
    run = runner.ScenarioRun(cluster, fault, parse("none"), BUDGET, tmp_path, hook=steps)  # type: ignore[arg-type]
    assert run.execute().verdict is Verdict.INVALID
    names = [name for name, _ in steps.steps]
    assert names[0].startswith("set up ") and names[0].endswith(": steady state before injection")
    assert names[1:] == [
        "inject fake-fault",
        "prove the fault: its effect",
        "revert",
        "judge",
    ]
    assert dict(steps.steps)["prove the fault: its effect"] == "HarnessError"  # a phase that raised ends so
    assert dict(steps.steps)["revert"] == "ok"
