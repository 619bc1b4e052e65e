"""One scenario run, start to finish: steady state, inject, prove, time the recovery, the next commit after it,
check data, revert, judge.

The run gathers evidence (proof, timeline, user data, other recoveries acting, harness errors, and with monitoring
the alerts that paged for it) and the one judge (assertions.verdict) decides, once, after the revert, so nothing
that goes wrong late can leave a pass behind; plugins add their notes before (`pytest_resilience_annotate`).
Phases are announced as steps through the `pytest_resilience_step` hook (scenarios.hooks: the reports plugin
makes them Allure steps; without it they are nothing). The revert never raises, so an interrupted run still puts
Git and the cluster back; what it could not do stays in the run's revert record for `resilience revert RUN` (and
makes the run invalid).
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assertions import decided, invariants
from assertions.isolation import ForeignActivity, owned_by_run
from assertions.recorder import PhaseRecorder
from assertions.schema import ClusterLock, Reconcilers, WaitEnded
from assertions.slo import Budget
from assertions.timeline import NEXT_COMMIT, NEXT_COMMIT_KEY
from assertions.verdict import RunResult
from assertions.watch import WatchCache
from clusters.faultlock import FaultLock, Held
from clusters.model import Cluster
from clusters.reconcilers import ControllerLogs
from fluxmodel import tuned
from fluxmodel.kinds import HELM_RELEASE, KUSTOMIZATION, STAGED_KUSTOMIZATION
from foundation.waiting import poll
from injectors.base import Fault, FaultContext
from injectors.records import Reverter, RevertRecord, cluster_locator
from kubeapi import UnknownKind
from loadgen.run import LoadPlan, LoadRun
from monitoring.facts import phases as alert_phases
from scenarios.contention import CpuTimes, host_record
from scenarios.recoveries import RecoveryMode

if TYPE_CHECKING:
    from pluggy import HookRelay

log = logging.getLogger(__name__)
STEADY_TIMEOUT = 120.0
# After the revert: how long pages that fired may take to be reported resolved (a scrape, an evaluation and
# Alertmanager's group interval, with room for Flux to put the objects back first).
ALERT_SETTLE = 120.0
LOG_COMPONENTS = tuned.CONTROLLER_PROCESSES
# How often a run past its TTR budget reads the pages it owes and got (the receiver's file), while it waits for them.
PAGES_EVERY = 1.0
# How long the next commit after recovery may take to be applied and reported Ready, when the SLO file budgets
# nothing for it (with a budget: twice the budget, as the recovery wait is twice the TTR budget).
NEXT_COMMIT_WAIT = 120.0


@dataclass
class ScenarioRun:
    """Inputs of one run; `execute` returns its RunResult, judged."""

    cluster: Cluster
    fault: Fault
    recovery: RecoveryMode
    budget: Budget
    run_dir: Path
    repeat: int = 1
    node_id: str = ""
    # Stop once the fault is proven (no recovery wait): the catalog's signature tests.
    prove_only: bool = False
    baselines: tuple[str, ...] = ()
    # Teams delivering beside the faulted app from before the injection until after recovery (loadgen).
    load: LoadPlan | None = None
    # pytest's hooks (config.hook): each phase of the run is a pytest_resilience_step, and plugins annotate the run
    # before it is judged (pytest_resilience_annotate); None: neither.
    hook: HookRelay | None = None
    # The digest of the session's plan (scenarios.sharding), recorded in the run's summary entry.
    plan: str = ""
    # Wait for recovery up to the give-up time even once the verdict is decided (assertions.decided): benchmarks
    # that measure how long a mode takes beyond its budget.
    wait_full: bool = False

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """A phase of the run: the context managers plugins return for it are entered, and left with its outcome."""
        with ExitStack() as stack:
            if self.hook is not None:
                for context in self.hook.pytest_resilience_step(run=self, name=name):
                    stack.enter_context(context)
            yield

    def execute(self) -> RunResult:
        """The run, holding the cluster's fault lock: exclusive for a fault that hits the whole cluster."""
        lock = FaultLock(self.cluster.kube, self.cluster.name)
        with lock.hold(exclusive=self.fault.touches_cluster) as held:
            return self._execute(held)

    def _execute(self, held: Held) -> RunResult:
        result = RunResult(
            self.fault.name,
            self.fault.family,
            self.recovery.name,
            self.budget,
            repeat=self.repeat,
            provider=self.cluster.provider,
            signature=self.fault.signature.name if self.fault.signature else None,
            baselines=self.baselines,
            test=self.node_id,
            plan=self.plan,
        )
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.node_id or f"{self.fault.name}-{self.recovery.name}")[-150:]
        record = RevertRecord(self.run_dir / "revert" / f"{slug}.json", self.fault.name, cluster_locator(self.cluster))
        prefix = self.fault.name[:24].rstrip("-")
        ctx = FaultContext.new(
            self.cluster, record, prefix, self.recovery.decorate, mode=self.recovery.name, recovery=self.recovery
        )
        result.cluster_lock = ClusterLock.model_validate(held.to_json())
        if held.note:
            result.notes.append(held.note)
        started, cpu = time.monotonic(), CpuTimes.now()
        began, logs = time.time(), ControllerLogs.mark(self.cluster.logs, tuned.CONTROLLER_PROCESSES)
        measured = 0.0
        try:
            measured = self._run(ctx, result, slug)
        except Exception as e:  # whatever broke, the run proves nothing: invalid, never a pass
            result.harness_errors.append(f"{type(e).__name__}: {e}")
            log.exception("scenario %s failed", self.fault.name)
        finally:
            with self.step("revert"):
                problems = Reverter(record, kube=self.cluster.kube, git=self.cluster.git).run()
                if problems:
                    result.revert_problems = problems
                    result.harness_errors.append(f"revert left {len(problems)} step(s) undone: {problems[0]}")
            if self.cluster.monitoring is not None and not self.prove_only:
                with self.step("alerts: what paged for the run, and what was due"):
                    try:
                        self._alerts(ctx, result, measured)
                    except Exception as e:
                        result.harness_errors.append(f"alerts not collected: {type(e).__name__}: {e}")
                        log.exception("collecting the alerts of %s failed", self.fault.name)
            result.reconcilers = self._reconcilers(ctx, result, logs, began)
            # The harness's own share of the run: everything but injection to recovered (or to giving up).
            result.harness_seconds = round(time.monotonic() - started - measured, 3)
            result.run_seconds = round(time.monotonic() - started, 3)
            result.host = host_record(cpu, CpuTimes.now())
            with self.step("judge"):  # once, with every note in: plugins annotate first (neighbours, ...)
                if self.hook is not None:
                    self.hook.pytest_resilience_annotate(result=result)
                result.judge()
            self._save(result, slug)
        return result

    def _reconcilers(
        self, ctx: FaultContext, result: RunResult, logs: ControllerLogs, began: float
    ) -> Reconcilers | None:
        """Which Flux controller processes reconciled the run's objects, and which of those it depends on stopped
        during it (a restart other than the fault's own kill, or one not running at the end): the isolation proof
        the judge reads. None when the provider keeps no controller logs and the mode needs no proof."""
        shard = self.recovery.shard
        if not logs.paths and shard is None:
            return None
        stops, control = [], self.cluster.control
        status = control.status() if control is not None else {}
        if control is not None:
            lines = {name: control.command_line(name) for name in tuned.reconciling(shard)}
            result.diagnostics.controllers = {name: line for name, line in lines.items() if line}
        for name in tuned.reconciling(shard):
            starts = logs.starts(name) if name in logs.paths else []
            if name == ctx.state.get("killed"):
                starts = starts[1:]  # the restart after the fault's own kill
            stops += [f"{name} stopped mid-run (started again {at - began:.1f}s into the run)" for at in starts]
            state = status.get(name) or {}
            if state and (state.get("held") or not state.get("running")):
                stops.append(f"{name} stopped mid-run (not running at the end of the run)")
        return Reconcilers(shard=shard, controllers=logs.reconciles(owned_by_run(ctx.app, ctx.namespace)), stops=stops)

    def _alerts(self, ctx: FaultContext, result: RunResult, watch_end: float) -> None:
        """The run's pages and the alerts its faults made due (monitoring.facts.phases), once every alert Prometheus has
        firing for the run has paged, every page has been resolved and every due page has had time to arrive
        (bounded: an alert that never resolves is kept as firing)."""
        monitoring, timeline = self.cluster.monitoring, result.timeline
        if monitoring is None or timeline.wall_start is None:
            return
        injected_at = timeline.wall_start
        names = self._names(ctx)
        delivery = monitoring.timings.delivery_seconds
        due = alert_phases.due(timeline, watch_end, delivery) if result.proven else {}
        page_by = max((d.at + delivery for d in due.values() if d.must_have_fired), default=0.0)
        firing = alert_phases.in_flight(monitoring.firing_since(injected_at), names)

        def pages() -> tuple[dict[str, dict[str, Any]], bool]:
            fired = alert_phases.fired(monitoring.notifications(injected_at), injected_at, names)
            settled = firing <= set(fired) and all(p["resolved_after"] is not None for p in fired.values())
            return fired, settled and time.time() - injected_at >= page_by

        fired, _ = poll(pages, max(0.0, page_by - (time.time() - injected_at)) + ALERT_SETTLE, 1.0, done=lambda v: v[1])
        items = alert_phases.measurement(fired, due)
        result.measurements["alerts"] = items
        alert_phases.mark(timeline, items)
        if not monitoring.rules_shipped:
            result.notes.append(f"alerts from the rules of {monitoring.rules_source}, not the operator's shipped rules")

    def _names(self, ctx: FaultContext) -> alert_phases.Names:
        """Whether an alert names the run (its objects, or its recovery's exporter)."""
        return alert_phases.names_run(owned_by_run(ctx.app, ctx.namespace), self.recovery.label)

    def _pages(self, ctx: FaultContext, result: RunResult) -> Callable[[], decided.Pages] | None:
        """With monitoring: the pages the whole recovery wait would owe the run so far, and those that came."""
        monitoring, timeline = self.cluster.monitoring, result.timeline
        if monitoring is None:
            return None
        names, delivery, horizon = self._names(ctx), monitoring.timings.delivery_seconds, self.budget.give_up_after
        last: list[tuple[float, decided.Pages]] = []  # read again at most every PAGES_EVERY seconds

        def read() -> decided.Pages:
            if last and time.monotonic() - last[0][0] < PAGES_EVERY:
                return last[0][1]
            injected_at = timeline.wall_start or 0.0
            due = alert_phases.due(timeline, horizon, delivery)
            fired = alert_phases.fired(monitoring.notifications(injected_at), injected_at, names)
            owed = {name: d.at + delivery for name, d in due.items() if d.must_have_fired}
            last[:] = [(time.monotonic(), decided.Pages(owed, {n: p["fired_after"] for n, p in fired.items()}))]
            return last[0][1]

        return read

    def _await_recovery(
        self, ctx: FaultContext, result: RunResult, recorder: PhaseRecorder, injected: float, reached: Any | None
    ) -> WaitEnded:
        """Wait for recovery, counted from the injection as the TTR is, until the run recovered, its verdict can no
        longer change (assertions.decided, unless `wait_full`) or the give-up time; returns why it ended."""
        pages = self._pages(ctx, result)

        def end() -> WaitEnded | None:
            figure = reached.figure() if reached is not None else None
            elapsed, ttr = time.monotonic() - injected, result.timeline.ttr
            return decided.ended(elapsed, self.budget, ttr, whole=self.wait_full, pages=pages, reached=figure)

        remaining = self.budget.give_up_after - (time.monotonic() - injected)
        ended = poll(end, remaining, 0.25, done=lambda e: e is not None, before_sleep=recorder.evaluate)
        return ended or decided.gave_up(self.budget)

    def _save(self, result: RunResult, slug: str) -> None:
        """The run's summary entry (the one summary.json gets) and its timeline beside its revert record, for
        post-mortems without Allure."""
        path = self.run_dir / "results" / f"{slug}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        body = {**result.summary_entry(), "timeline": result.timeline.to_json()}
        path.write_text(json.dumps(body, indent=2, default=str) + "\n")

    def _run(self, ctx: FaultContext, result: RunResult, slug: str) -> float:
        """Gather the run's evidence into `result`; returns the seconds measured (injection to recovered or to
        giving up, the next commit after it, and the load's windows before and after), which are not the harness's
        overhead."""
        fault, kube = self.fault, self.cluster.kube
        with self.step(f"set up {ctx.app}: steady state before injection"):
            fault.setup(ctx)
            steady = fault.steady(ctx, ctx.setup_revision)
            ok, detail = poll(lambda: steady(kube), STEADY_TIMEOUT, done=lambda outcome: outcome[0])
            if not ok:
                result.invalid.append(f"not in steady state before injection: {detail}")
                return 0.0
            before = invariants.snapshot(kube, [ctx.namespace])
            result.diagnostics.flux_before = self._flux_objects(ctx)
        if self.load is None:
            return self._inject_and_recover(ctx, result, before, None)
        load = LoadRun(self.load, ctx, fault, self.run_dir / "load" / slug)
        try:
            profile = self.load.profile
            with self.step(
                f"load {self.load.label}: {profile.team_count} teams every {profile.every:g}s, "
                f"baseline {profile.baseline:g}s before the injection"
            ):
                load.start()
            return self._inject_and_recover(ctx, result, before, load) + load.window_seconds
        finally:
            with self.step("load: stop the teams, cut their deliveries into windows"):
                load.finish(result)

    def _inject_and_recover(
        self, ctx: FaultContext, result: RunResult, before: dict[str, invariants.DataRecord], load: LoadRun | None
    ) -> float:
        fault, kube, timeline = self.fault, self.cluster.kube, result.timeline
        owns = owned_by_run(ctx.app, ctx.namespace)
        foreign = ForeignActivity(self.recovery.name, owns)
        recorder = PhaseRecorder(
            timeline,
            fault.visible(ctx),
            None,
            fault.watched_refs(ctx),
            requires_visible=not fault.desired_state_valid,
            owns=owns,
        )

        reached = fault.reached(ctx)

        def on_change(event_type: str, obj: dict[str, Any], received: float) -> None:
            foreign.observe(obj)
            recorder.on_change(event_type, obj, received)
            if reached is not None:
                reached.observe(obj)

        with WatchCache(kube, fault.targets(ctx), on_change) as cache:
            recorder.attach(cache)
            with self.step(f"inject {fault.name}"):
                injected = timeline.mark("injected")
                fault.inject(ctx)
                recorder.expect(fault.serving(ctx), fault.reporting(ctx))
            with self.step(f"prove the fault: {fault.signature.name if fault.signature else 'its effect'}"):
                _await(recorder, ("visible", "recovered"), fault.prove_within)
                evidence = ctx.state.get("proof")
                if evidence:
                    result.diagnostics.proof = evidence
                # Without the signature, only independent evidence (taken before the fault landed) proves it:
                # the recovery under test may keep Flux from ever showing it.
                if not timeline.has("visible") and evidence is None:
                    result.invalid.append(
                        f"fault not proven: no {result.signature or 'effect'} within {fault.prove_within:.0f}s "
                        f"({recorder.last_visible})"
                    )
                    return 0.0
                result.proven = True
                if self.prove_only:
                    result.notes.append("next commit not pushed: the run only proved the fault")
                    return 0.0
                fault.after_proof(ctx)
            # The wait counts from the injection, as the TTR does (the judge compares the two).
            with self.step(f"recover under {self.recovery.name} (budget {self.budget.ttr.max}s)"):
                result.wait_ended = self._await_recovery(ctx, result, recorder, injected, reached)
                measured = timeline.ttr if timeline.ttr is not None else time.monotonic() - injected
                if load is not None:
                    load.fault_over()
                self.recovery.check_alive()
            measured += self._next_commit(ctx, result, recorder)
            _gather(result, recorder, foreign, reached)
        if load is not None and timeline.has("recovered"):
            with self.step(f"load: {load.plan.profile.after:g}s after recovery"):
                load.after()
        with self.step("check user data"):
            result.data_violations += invariants.violations(before, invariants.snapshot(kube, [ctx.namespace]))
        result.diagnostics.flux_after = self._flux_objects(ctx)
        result.diagnostics.logs = self._log_excerpts(ctx)
        result.diagnostics.events = timeline.events
        return measured

    def _next_commit(self, ctx: FaultContext, result: RunResult, recorder: PhaseRecorder) -> float:
        """Once recovered, one more good commit (Fault.next_commit): the phase `next-commit` when Flux applied it
        and reports Ready, and the `next_commit` measurement (pushed_at from the injection, taken_after from the
        push); returns the seconds it took. Git is put back by the run's revert record like every commit."""
        timeline = result.timeline
        if not timeline.has("recovered"):
            result.notes.append("next commit not pushed: the run did not recover")
            return 0.0
        limit = self.budget.phases.get(NEXT_COMMIT_KEY)
        wait = 2 * limit if limit is not None else NEXT_COMMIT_WAIT
        commit = self.fault.next_commit(ctx)
        with self.step(f"next commit: Flux takes a good commit after recovery (wait {wait:.0f}s)"):
            ctx.commit(commit.message, write=commit.write)
            pushed = time.monotonic()
            recorder.follow(NEXT_COMMIT, commit.taken)
            self.fault.announce(ctx)
            _await(recorder, (NEXT_COMMIT,), wait)
            taken = timeline.marks.get(NEXT_COMMIT)
            result.measurements[NEXT_COMMIT_KEY] = {
                "pushed_at": round(pushed - timeline.marks["injected"], 3),
                "taken_after": None if taken is None else round(taken - pushed, 3),
            }
            if taken is None:
                result.notes.append(f"next commit not taken within {wait:.0f}s ({recorder.last[NEXT_COMMIT]})")
        return time.monotonic() - pushed

    def _flux_objects(self, ctx: FaultContext) -> list[dict[str, Any]]:
        """The run's Flux objects with their status, for the report."""
        out = []
        for kind in (KUSTOMIZATION, HELM_RELEASE, STAGED_KUSTOMIZATION):
            try:
                objects = self.cluster.kube.list(kind.api_version, kind.kind)
            except UnknownKind:  # a cluster without the StagedKustomization CRD
                continue
            for obj in objects:
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


def _gather(result: RunResult, recorder: PhaseRecorder, foreign: ForeignActivity, reached: Any | None) -> None:
    """What the watch saw while the recovery ran, into the run's evidence."""
    if not result.timeline.has("recovered"):
        result.not_recovered_detail = recorder.last_recovered
    result.foreign_activity += foreign.findings
    result.notes += recorder.notes
    if reached is not None:  # how far the bad revision got, judged by the `reached` criterion
        result.measurements["reached"] = reached.figure()
        result.diagnostics.reached = reached.where()


def _await(recorder: PhaseRecorder, phases: tuple[str, ...], timeout: float) -> bool:
    """Wait for any of `phases`, re-evaluating the checks between polls (a safety net under the watch events)."""
    return poll(lambda: recorder.reached(*phases), timeout, 0.25, before_sleep=recorder.evaluate)


def _slim_meta(meta: dict[str, Any]) -> dict[str, Any]:
    return {k: meta.get(k) for k in ("name", "namespace", "generation", "annotations") if meta.get(k) is not None}
