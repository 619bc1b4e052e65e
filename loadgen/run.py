"""The load of one scenario run: teams set up beside the faulted app, its serving probe, the load process, and
what they measured cut into windows for the `load` criterion.

ScenarioRun calls `start` once the app is steady (the baseline window runs before the injection), `fault_over`
when it recovered or gave up, `after` for the after window, and `finish` always: it stops everything and, if the
fault was injected, records the `load` measurement, the chart's series, locust's reports and its CPU use.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assertions.diagnostics import LoadDiagnostics
from assertions.load_criterion import GROUPS, LoadBudget
from assertions.load_profiles import LoadProfile
from assertions.verdict import RunResult
from foundation.errors import HarnessError
from foundation.waiting import poll
from injectors.base import Fault, FaultContext
from loadgen import deliveries, serving, teams
from loadgen.process import LoadProcess
from loadgen.serving import ServingProbe
from loadgen.spec import REQUESTS, LoadSpec

log = logging.getLogger(__name__)
TEAMS_READY_TIMEOUT = 120.0


@dataclass(frozen=True)
class LoadPlan:
    """What a session runs under load: a load profile, and a user's locustfile beside its teams."""

    profile: LoadProfile
    label: str  # what the summary entry names: the profile, or the locustfile
    locustfile: str | None = None
    workers: int | None = None  # locust workers (None: the profile's)


def wall(monotonic: float) -> float:
    """A monotonic instant (the timeline's clock) on the wall clock (the load process's records)."""
    return time.time() - (time.monotonic() - monotonic)


class LoadRun:
    def __init__(self, plan: LoadPlan, ctx: FaultContext, fault: Fault, out: Path):
        self.plan, self.ctx, self.fault, self.out = plan, ctx, fault, out
        self.teams = teams.plan(ctx.app, plan.profile)
        self.process: LoadProcess | None = None
        self.probe: ServingProbe | None = None
        self.started: float | None = None
        self.fault_end: float | None = None
        self.stopped: float | None = None
        self.window_seconds = 0.0  # baseline and after: measured, not the harness's overhead
        self.baseline_cpu: dict[str, float] = {}

    def start(self) -> None:
        """Teams Ready, the app's Service serving, every user running; then the baseline window."""
        ctx, profile = self.ctx, self.plan.profile
        revision = teams.set_up(ctx, self.teams)
        check = teams.ready(ctx, self.teams, revision)
        ok, detail = poll(lambda: check(ctx.kube), TEAMS_READY_TIMEOUT, 0.5, done=lambda outcome: outcome[0])
        if not ok:
            raise HarnessError(f"the load's teams not Ready within {TEAMS_READY_TIMEOUT:.0f}s: {detail}")
        if self.fault.serves is not None:
            ctx.apply(serving.service(ctx.namespace, self.fault.serves))
            self.probe = ServingProbe(ctx.kube, ctx.namespace).start()
        workers = profile.workers if self.plan.workers is None else self.plan.workers
        self.process = LoadProcess(self.spec(), workers).start()
        self.started = time.monotonic()
        own, helpers = self.process.cpu_seconds()
        self._hold(profile.baseline)
        # The generator's cost in steady state (start-up excluded): CPU over the baseline window's wall time, of
        # the locust processes, and of the committer with its git commands.
        wall_seconds = time.monotonic() - self.started
        own_after, helpers_after = self.process.cpu_seconds()
        self.baseline_cpu = {
            "wall_seconds": round(wall_seconds, 3),
            "cpu_seconds": round(own_after - own, 3),
            "helpers_cpu_seconds": round(helpers_after - helpers, 3),
            "teams": profile.team_count,
            "every": profile.every,
        }

    def spec(self) -> LoadSpec:
        ctx, profile = self.ctx, self.plan.profile
        git = ctx.cluster.git
        return LoadSpec(
            kubeconfig=str(ctx.cluster.kubeconfig),
            context=ctx.cluster.context,
            git={"bare": str(git.bare), "work": str(git.work), "url": git.url},
            flux_namespace=ctx.flux_namespace,
            namespace=teams.load_namespace(ctx.app),
            teams=self.teams,
            every=profile.every,
            deadline=profile.deadline,
            api_users=profile.api_users,
            api_every=profile.api_every,
            locustfile=self.plan.locustfile,
            out=str(self.out.resolve()),
            env={
                "KUBECONFIG": str(ctx.cluster.kubeconfig),
                "RESILIENCE_LOAD_NAMESPACE": ctx.namespace,
                "RESILIENCE_LOAD_SERVICE": serving.SERVICE if self.probe else "",
            },
        )

    def _hold(self, seconds: float) -> None:
        """Let the load run for `seconds`, stopping early (HarnessError) if the load process dies."""
        assert self.process is not None
        process = self.process

        def died() -> bool:
            return any(p.poll() is not None for p in process.processes)

        began = time.monotonic()
        poll(died, seconds, 0.5)
        self.window_seconds += time.monotonic() - began
        process.check_alive()

    def fault_over(self) -> None:
        """The fault window ends: recovered, or the wait gave up."""
        if self.fault_end is None:
            self.fault_end = time.monotonic()

    def after(self) -> None:
        if self.process is not None and self.plan.profile.after > 0:
            self._hold(self.plan.profile.after)

    def stop(self) -> None:
        """Stop the users (no more commits; the deliveries in flight end) and the probe; never raises."""
        if self.stopped is not None:
            return
        try:
            if self.process is not None:
                self.process.stop()
        finally:
            self.stopped = time.monotonic()
            if self.probe is not None:
                self.probe.stop()

    def finish(self, result: RunResult) -> None:
        """Stop, and record what the load measured (nothing if the fault was never injected)."""
        self.stop()
        injected = result.timeline.marks.get("injected")
        if injected is None or self.process is None or self.stopped is None:
            return
        fault_end = self.fault_end or self.stopped
        windows = deliveries.Windows(wall(injected), wall(fault_end))
        requests = deliveries.read(self.out / REQUESTS)
        factors = LoadBudget.from_raw(result.budget.measures.get("load")).p95_ratio
        downtime = self.probe.downtime(injected, self.stopped) if self.probe else None
        expected = [g for g in GROUPS if self.plan.profile.teams.get(g)]
        result.measurements["load"] = deliveries.summary(
            self.plan.label, requests, windows, factors, downtime, expected
        )
        diagnostics = LoadDiagnostics(
            series=self._series(requests, windows, injected, fault_end),
            files={label: str(path) for label, path in self.process.files().items()},
            baseline_cpu=self.baseline_cpu,
            whole_life_cpu=self.process.usage(),
        )
        result.load_diagnostics = diagnostics
        record = {"load": result.measurements["load"], "cpu": diagnostics.cpu, "series": diagnostics.series}
        (self.out / "load.json").write_text(json.dumps(record, indent=2) + "\n")

    def _series(
        self, requests: list[deliveries.Request], windows: deliveries.Windows, injected: float, fault_end: float
    ) -> dict[str, Any]:
        """What the chart draws, in seconds since the injection."""
        origin = windows.injected
        assert self.started is not None and self.stopped is not None
        return {
            "deliveries": [
                {
                    "group": r.group,
                    "team": r.team,
                    "at": round(r.started - origin, 3),
                    "seconds": round(r.seconds, 3),
                    "ok": r.ok,
                }
                for r in requests
            ],
            "serving": [[round(at - injected, 3), count] for at, count in (self.probe.series() if self.probe else [])],
            "load_from": round(self.started - injected, 3),
            "fault_end": round(fault_end - injected, 3),
            "load_to": round(self.stopped - injected, 3),
            "deadline": self.plan.profile.deadline,
        }
