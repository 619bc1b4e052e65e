"""The whole verdict path, runner to gate, with a fake fault on a FakeKube cluster (no API server, no Flux).

A scripted "controller" thread plays Flux and the recoveries: it shows the fault, recovers it (or not), deletes
user data, or leaves another recovery's marks on the run's objects. Each kind of run gets the verdict it must,
and the gate, re-judging the summary entry, agrees.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pluggy
import pytest
from scripted_runs import (
    BUDGET,
    FakeFault,
    Script,
    agrees_with_the_gate,
    delete_user_secret,
    detect_before_flux,
    fake_cluster,
    fake_kube,
    never,
    nothing,
    operator_acts,
    pin_source,
    recover_after,
)

from assertions import decided, invariants, verdict
from assertions.slo import Budget
from assertions.verdict import RunResult, Verdict
from clusters.model import Cluster
from fluxmodel.kinds import KUSTOMIZATION
from foundation.errors import HarnessError
from injectors.base import FaultContext
from reports.matrix import build_cells, judge_entry
from scenarios import hooks, runner
from scenarios.recoveries import RecoveryMode, parse


@pytest.fixture
def cluster(tmp_path: Path) -> Cluster:
    return fake_cluster(tmp_path)


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


@pytest.mark.process
@pytest.mark.slow
def test_a_recovery_within_budget_passes_and_everything_it_made_is_reverted(cluster: Cluster, tmp_path: Path) -> None:
    result = execute(cluster, tmp_path, recover_after(0.3))
    assert result.verdict is Verdict.PASS, result.reason
    assert result.proven and result.data_violations == [] and 0.25 < (result.ttr_seconds or 0) < 1.0
    assert cluster.kube.list(KUSTOMIZATION.api_version, KUSTOMIZATION.kind) == []  # the revert record ran
    agrees_with_the_gate(result)


@pytest.mark.process
@pytest.mark.slow
def test_a_slow_recovery_is_a_breach(cluster: Cluster, tmp_path: Path) -> None:
    # A wait well past the recovery: on a loaded machine the 1.3 s recovery may arrive after 2 s.
    result = execute(cluster, tmp_path, recover_after(1.3), budget=dataclasses.replace(BUDGET, wait=30.0))
    assert result.verdict is Verdict.BREACH and result.reason.startswith("TTR ")
    agrees_with_the_gate(result)


@pytest.mark.process
@pytest.mark.slow
def test_no_recovery_within_the_wait_from_injection_is_not_recovered(cluster: Cluster, tmp_path: Path) -> None:
    result = execute(cluster, tmp_path, never)
    assert result.verdict is Verdict.NOT_RECOVERED
    assert result.reason.startswith("not recovered within 2s of injection (Kustomization ")
    agrees_with_the_gate(result)


@pytest.mark.process
@pytest.mark.slow
def test_a_baseline_mode_may_miss_its_time_budget(cluster: Cluster, tmp_path: Path) -> None:
    result = execute(cluster, tmp_path, never, baselines=("none",))
    assert result.verdict is Verdict.NOT_RECOVERED and result.judgement and result.judgement.excusable
    (cell,) = build_cells([result.summary_entry()], baselines={"none"})
    assert cell.excused and not cell.fails_gate


@pytest.mark.process
@pytest.mark.slow
def test_lost_user_data_is_a_breach_even_when_recovered_in_time(cluster: Cluster, tmp_path: Path) -> None:
    result = execute(cluster, tmp_path, recover_after(0.2, then=delete_user_secret), baselines=("none",))
    assert result.verdict is Verdict.BREACH
    assert result.data_violations and "was deleted" in result.data_violations[0]
    (cell,) = build_cells([result.summary_entry()], baselines={"none"})
    assert cell.fails_gate  # a baseline does not excuse lost data
    agrees_with_the_gate(result)


@pytest.mark.process
@pytest.mark.slow
def test_a_fault_that_never_shows_is_invalid(cluster: Cluster, tmp_path: Path) -> None:
    result = execute(cluster, tmp_path, nothing)
    assert result.verdict is Verdict.INVALID and result.reason.startswith("fault not proven: no effect within 2s")
    agrees_with_the_gate(result)


@pytest.mark.process
@pytest.mark.slow
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


@pytest.mark.process
@pytest.mark.slow
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


@pytest.mark.process
@pytest.mark.slow
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


@pytest.mark.process
@pytest.mark.slow
def test_a_flux_native_knob_on_an_operator_run_makes_it_invalid(cluster: Cluster, tmp_path: Path) -> None:
    def force(fault: FakeFault, ctx: FaultContext) -> None:
        patch = {"spec": {"force": True}}
        fault.kube.merge_patch(KUSTOMIZATION.api_version, KUSTOMIZATION.kind, ctx.app, ctx.flux_namespace, patch)

    result = execute(cluster, tmp_path, recover_after(0.2, then=force), mode="command:true")
    assert result.verdict is Verdict.INVALID and "spec.force on Kustomization" in result.reason


@pytest.mark.process
@pytest.mark.slow
def test_an_operator_detecting_before_flux_shows_the_fault_is_timed_and_reported(
    cluster: Cluster, tmp_path: Path
) -> None:
    result = execute(cluster, tmp_path, detect_before_flux, mode="command:true")
    assert result.verdict is Verdict.PASS, result.reason
    assert result.timeline.marks["detected"] < result.timeline.marks["visible"]
    assert "note: the operator's RecoveryDetected came before Flux showed the fault" in result.reason
    agrees_with_the_gate(result)


@pytest.mark.process
@pytest.mark.slow
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

    def pytest_resilience_annotate(self, result: RunResult) -> list[None]:
        return []

    @contextlib.contextmanager
    def record(self, name: str) -> Iterator[None]:
        try:
            yield
        except BaseException as e:
            self.steps.append((name, type(e).__name__))
            raise
        self.steps.append((name, "ok"))


@pytest.mark.process
@pytest.mark.slow
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


class Neighbour:
    """A plugin that notes something about every run before it is judged, as scenarios.sharding's does."""

    @pytest.hookimpl
    def pytest_resilience_annotate(self, result: RunResult) -> None:
        result.notes.append("a neighbour was busy")


@pytest.mark.process
@pytest.mark.slow
def test_a_run_is_judged_once_with_its_notes_and_saved_as_its_summary_entry(
    cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    judged: list[verdict.Evidence] = []
    judge = verdict.judge

    def counted(evidence: verdict.Evidence, budget: Budget) -> verdict.Judgement:
        judged.append(evidence)
        return judge(evidence, budget)

    monkeypatch.setattr(verdict, "judge", counted)
    plugins = pluggy.PluginManager("pytest")
    plugins.add_hookspecs(hooks)
    plugins.register(Neighbour())
    fault = FakeFault(fake_kube(cluster), recover_after(0.1))
    node = "scenarios/test_fake.py::test_fake[none]"
    run = runner.ScenarioRun(
        cluster, fault, parse("none"), BUDGET, tmp_path, node_id=node, hook=plugins.hook, plan="d1"
    )
    result = run.execute()
    assert len(judged) == 1 and judged[0].notes == ("a neighbour was busy",)
    assert result.judgement is not None and result.reason.endswith("; note: a neighbour was busy")
    entry = result.summary_entry()  # what the reports plugin records in summary.json
    assert (entry["test"], entry["plan"]) == (node, "d1") and entry["host"]["workers"] >= 1
    assert entry["run_seconds"] >= 0 and entry["cluster_lock"]["mode"] == "shared"
    (saved,) = (tmp_path / "results").glob("*.json")
    body = json.loads(saved.read_text())
    assert body.pop("timeline") == json.loads(json.dumps(result.timeline.to_json()))
    assert body == json.loads(json.dumps(entry))  # the same entry, not a second format
    assert len(judged) == 1


@pytest.mark.process
@pytest.mark.slow
def test_once_recovered_the_next_commit_is_pushed_timed_and_reverted(cluster: Cluster, tmp_path: Path) -> None:
    result = execute(cluster, tmp_path, recover_after(0.2))
    assert result.verdict is Verdict.PASS, result.reason
    marks = result.timeline.marks
    assert marks["injected"] < marks["recovered"] < marks["next-commit"]
    measured = result.measurements["next_commit"]
    assert measured["pushed_at"] >= result.ttr_seconds and 0 <= measured["taken_after"] < 1.0
    assert result.timeline.since_injected("next-commit") == pytest.approx(
        measured["pushed_at"] + measured["taken_after"], abs=0.01
    )
    entry = result.summary_entry()
    assert entry["next_commit"] == measured and "next-commit" in entry["since_injected"]
    assert not any(p.name == "NEXT_COMMIT" for p in cluster.git.work.rglob("NEXT_COMMIT"))  # Git put back
    agrees_with_the_gate(result)


@pytest.mark.process
@pytest.mark.slow
def test_a_next_commit_never_taken_breaches_its_budget(cluster: Cluster, tmp_path: Path) -> None:
    budget = dataclasses.replace(BUDGET, phases={"next_commit": 0.5})
    fault = FakeFault(fake_kube(cluster), recover_after(0.1), takes_next_commit=False)
    result = runner.ScenarioRun(cluster, fault, parse("none"), budget, tmp_path / "run", node_id="t").execute()
    assert result.verdict is Verdict.BREACH and result.timeline.has("recovered")
    assert result.measurements["next_commit"]["taken_after"] is None and not result.timeline.has("next-commit")
    assert result.reason.startswith("next-commit: the commit pushed after recovery was not taken (budget max 0.5s)")
    assert "note: next commit not taken within 1s (Kustomization " in result.reason
    entry = result.summary_entry()
    assert judge_entry(entry).judgement == result.judgement and judge_entry(entry, budget).judgement == result.judgement


@pytest.mark.process
@pytest.mark.slow
def test_no_next_commit_without_recovery(cluster: Cluster, tmp_path: Path) -> None:
    result = execute(cluster, tmp_path, never)
    assert "next_commit" not in result.measurements and not result.timeline.has("next-commit")
    assert result.reason.endswith("; note: next commit not pushed: the run did not recover")


@pytest.mark.process
@pytest.mark.slow
def test_a_run_not_recovered_past_its_ttr_max_stops_waiting_and_says_so(
    cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its verdict can no longer be a pass: the wait ends there, not at the give-up time, and the record says why."""
    monkeypatch.setattr(decided, "margin", lambda budget: 0.2)
    budget = dataclasses.replace(BUDGET, ttr=dataclasses.replace(BUDGET.ttr, max=0.3), wait=30.0)
    result = execute(cluster, tmp_path, never, budget=budget)
    ended = result.wait_ended
    assert ended is not None and ended.by == "decided" and 0.5 < ended.after < 3.0, ended
    assert result.verdict is Verdict.NOT_RECOVERED and result.judgement and result.judgement.excusable
    assert f"not recovered within {ended.after:.0f}s of injection (Kustomization " in result.reason
    assert f"; the wait ended: verdict decided at {ended.after:.0f}s (ttr.max 0.3s passed); note: " in result.reason
    entry = result.summary_entry()
    assert entry["wait_ended"] == {"by": "decided", "after": ended.after, "detail": "ttr.max 0.3s passed"}
    assert judge_entry(entry).judgement == result.judgement
    assert judge_entry(entry, budget).judgement == result.judgement


@pytest.mark.process
@pytest.mark.slow
def test_the_whole_wait_asked_for_runs_to_the_give_up_time(cluster: Cluster, tmp_path: Path) -> None:
    budget = dataclasses.replace(BUDGET, ttr=dataclasses.replace(BUDGET.ttr, max=0.3), wait=1.5)
    fault = FakeFault(fake_kube(cluster), never)
    run = runner.ScenarioRun(cluster, fault, parse("none"), budget, tmp_path / "run", node_id="t", wait_full=True)
    result = run.execute()
    assert result.wait_ended is not None and result.wait_ended.by == "gave-up" and result.wait_ended.after == 1.5
    assert result.reason.startswith("not recovered within 2s of injection (Kustomization ")
    assert "the wait ended" not in result.reason
    agrees_with_the_gate(result)


@pytest.mark.process
@pytest.mark.slow
def test_a_recovered_run_records_that_recovery_ended_its_wait(cluster: Cluster, tmp_path: Path) -> None:
    result = execute(cluster, tmp_path, recover_after(0.2))
    assert result.wait_ended is not None and result.wait_ended.by == "recovered"
    assert result.wait_ended.after == result.ttr_seconds
