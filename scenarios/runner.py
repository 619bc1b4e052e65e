"""One scenario run, start to finish: steady state, inject, prove, time the recovery, judge, always revert.

Phases are Allure steps. The revert in `finally` never raises, so an interrupted run still puts Git and the
cluster back; what the revert could not do stays in the run's revert record for `resilience revert RUN`.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import allure

from assertions import invariants
from assertions.recorder import PhaseRecorder
from assertions.slo import Budget
from assertions.verdict import RunResult, Verdict
from assertions.watch import WatchCache
from clusters.model import Cluster
from fluxmodel.kinds import HELM_RELEASE, KUSTOMIZATION
from foundation.waiting import poll
from injectors.base import Fault, FaultContext
from injectors.records import Reverter, RevertRecord, cluster_locator
from scenarios.recoveries import RecoveryMode

log = logging.getLogger(__name__)
STEADY_TIMEOUT = 120.0
LOG_COMPONENTS = ("kustomize-controller", "helm-controller", "source-controller")


@dataclass
class ScenarioRun:
    """Inputs of one run; `execute` returns its RunResult."""

    cluster: Cluster
    fault: Fault
    recovery: RecoveryMode
    budget: Budget
    run_dir: Path
    repeat: int = 1
    node_id: str = ""
    # Stop once the fault is proven (no recovery wait, no verdict): the catalog's signature tests.
    prove_only: bool = False

    def execute(self) -> RunResult:
        result = RunResult(
            self.fault.name,
            self.fault.family,
            self.recovery.name,
            self.budget,
            repeat=self.repeat,
            provider=self.cluster.provider,
            signature=self.fault.signature.name if self.fault.signature else None,
        )
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.node_id or f"{self.fault.name}-{self.recovery.name}")[-150:]
        record = RevertRecord(self.run_dir / "revert" / f"{slug}.json", self.fault.name, cluster_locator(self.cluster))
        prefix = self.fault.name[:24].rstrip("-")
        ctx = FaultContext.new(self.cluster, record, prefix, self.recovery.decorate)
        started = time.monotonic()
        try:
            self._run(ctx, result)
        except Exception as e:
            if result.verdict is None:
                result.invalidate(f"harness error: {e}")
            log.exception("scenario %s failed", self.fault.name)
        finally:
            with allure.step("revert"):
                problems = Reverter(record, kube=self.cluster.kube, git=self.cluster.git).run()
                if problems:
                    result.attachments["revert_problems"] = problems
            # The harness's own share of the run: everything but the time from injection to verdict.
            measured = result.timeline.ttr if result.timeline.ttr is not None else self._waited(result)
            result.attachments["harness_seconds"] = round(time.monotonic() - started - measured, 3)
            self._save(result, slug)
        return result

    def _waited(self, result: RunResult) -> float:
        marks = result.timeline.marks
        return 0.0 if "injected" not in marks else max(marks.values()) - marks["injected"]

    def _save(self, result: RunResult, slug: str) -> None:
        """The run's summary entry and timeline beside its revert record, for post-mortems without Allure."""
        path = self.run_dir / "results" / f"{slug}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        body = {
            **result.summary_entry(),
            "timeline": result.timeline.to_json(),
            "proof": result.attachments.get("proof"),
            "harness_seconds": result.attachments.get("harness_seconds"),
        }
        path.write_text(json.dumps(body, indent=2, default=str) + "\n")

    def _run(self, ctx: FaultContext, result: RunResult) -> None:
        fault, kube = self.fault, self.cluster.kube
        with allure.step(f"set up {ctx.app}: steady state before injection"):
            fault.setup(ctx)
            steady = fault.steady(ctx, ctx.setup_revision)
            ok, detail = poll(lambda: steady(kube), STEADY_TIMEOUT, done=lambda outcome: outcome[0])
            if not ok:
                result.invalidate(f"not in steady state before injection: {detail}")
                return
            before = invariants.snapshot(kube, [ctx.namespace])
            result.attachments["flux_before"] = self._flux_objects(ctx)
        recorder = PhaseRecorder(
            result.timeline,
            fault.visible(ctx),
            None,
            fault.watched_refs(ctx),
            requires_visible=not fault.desired_state_valid,
        )
        with WatchCache(kube, fault.targets(ctx), recorder.on_change) as cache:
            recorder.attach(cache)
            with allure.step(f"inject {fault.name}"):
                result.timeline.mark("injected")
                fault.inject(ctx)
                recorder.recovered = fault.recovered(ctx)
            with allure.step(f"prove the fault: {fault.signature.name if fault.signature else 'its effect'}"):
                poll(
                    lambda: recorder.reached("visible", "recovered"),
                    fault.prove_within,
                    0.25,
                    before_sleep=recorder.evaluate,
                )
                evidence = ctx.state.get("proof")
                if evidence:
                    result.attachments["proof"] = evidence
                # Without the signature, only independent evidence (taken before the fault landed) proves it:
                # the recovery under test may keep Flux from ever showing it.
                if not result.timeline.has("visible") and evidence is None:
                    result.invalidate(
                        f"fault not proven: no {result.signature or 'effect'} within {fault.prove_within:.0f}s "
                        f"({recorder.last_visible})"
                    )
                    return
                if self.prove_only:
                    return
                fault.after_proof(ctx)
            with allure.step(f"recover under {self.recovery.name} (budget {self.budget.ttr.max}s)"):
                poll(
                    lambda: recorder.reached("recovered"),
                    self.budget.give_up_after,
                    0.25,
                    before_sleep=recorder.evaluate,
                )
                self.recovery.check_alive()
        with allure.step("judge"):
            result.judge()
            lost = invariants.violations(before, invariants.snapshot(kube, [ctx.namespace]))
            if lost:
                if result.verdict is Verdict.PASS:
                    result.verdict = Verdict.BREACH
                    result.reason = ""
                result.reason = "; ".join(filter(None, [result.reason, "user data not preserved: " + "; ".join(lost)]))
            if result.verdict is Verdict.NOT_RECOVERED:
                result.reason += f" ({recorder.last_recovered})"
            result.attachments["flux_after"] = self._flux_objects(ctx)
            result.attachments["logs"] = self._log_excerpts(ctx)
            result.attachments["events"] = result.timeline.events

    def _flux_objects(self, ctx: FaultContext) -> list[dict[str, Any]]:
        """The run's Flux objects with their status, for the report."""
        out = []
        for kind in (KUSTOMIZATION, HELM_RELEASE):
            for obj in self.cluster.kube.list(kind.api_version, kind.kind):
                meta = obj.get("metadata") or {}
                if ctx.app in str(meta.get("name")) or meta.get("namespace") == ctx.namespace:
                    out.append({"kind": kind.kind, "metadata": _slim_meta(meta), "status": obj.get("status")})
        return out

    def _log_excerpts(self, ctx: FaultContext, lines: int = 40) -> dict[str, str]:
        """Controller log lines that mention the run's app."""
        out = {}
        for component in LOG_COMPONENTS:
            path = self.cluster.logs.get(component)
            if path is None or not path.exists():
                continue
            matching = [line for line in path.read_text(errors="replace").splitlines() if ctx.app in line]
            if matching:
                out[component] = "\n".join(matching[-lines:])
        if self.recovery.log is not None and self.recovery.log.exists():
            matching = [line for line in self.recovery.log.read_text(errors="replace").splitlines() if ctx.app in line]
            out[f"recovery-{self.recovery.name}"] = "\n".join(matching[-lines:])
        return out


def _await(recorder: PhaseRecorder, phases: tuple[str, ...], timeout: float) -> bool:
    """Wait for any of `phases`, re-evaluating the checks between polls (a safety net under the watch events)."""
    return poll(lambda: recorder.reached(*phases), timeout, 0.25, before_sleep=recorder.evaluate)


def _slim_meta(meta: dict[str, Any]) -> dict[str, Any]:
    return {k: meta.get(k) for k in ("name", "namespace", "generation", "annotations") if meta.get(k) is not None}
