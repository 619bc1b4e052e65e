"""Performance under failure: other teams' deliveries and the faulted app's serving capacity during each fault,
under each recovery mode, side by side in one run.

Every run is the chaos suite's own ScenarioRun with a load (loadgen): simulated teams commit through Flux from
before the injection until after recovery, on the faulted app's GitRepository (same-source) and on sources of
their own (other-source); the faulted app's Service is watched for Ready endpoints. Each run is judged by the one
judge against the shipped SLO file, load budgets included. Modes run one at a time, started and stopped as the
suite starts them.

Per fault and mode: the verdict and TTR; each group's delivery p95 during the fault over its p95 before it (the
same run's baseline); failed deliveries (all windows); the faulted app's downtime (seconds without a Ready
endpoint, "-" when it serves nothing); the blast radius (teams whose deliveries failed, or whose own p95 during
the fault exceeded their own baseline by the SLO's factor).

Simulated pods are Ready the moment they start, so Flux's delete-then-create leaves no gap on this cluster;
`--startup SECONDS` also runs the three selector faults with pods Ready only SECONDS after they start (kwok's
ready delay), as a real app's would be, and prints the downtime under each mode: the trade-off between force and
blue-green.
`--cpu` also runs the heavy profile (20 teams committing every 10 s each) once and prints the generator's CPU
over its baseline window: the locust process, and its committer with the git commands it runs. `--pressure`
runs the faults under the operator once without load and once under the api-pressure profile (users listing,
watching and patching the API server) and prints the time to detect and the TTR of both. Figures only: nothing
here is asserted; the machine is shared, so compare figures of one run with each other.

Usage: .venv/bin/python benchmarks/load_blast_radius.py [--reuse-cluster NAME] [--modes none,flux-native,operator]
       [--faults dependency-cycle,...] [--load light] [--startup SECONDS] [--cpu] [--pressure]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from recovery_common import local_cluster
from recovery_ttr import names, positive_seconds, render

from assertions import slo as slo_model
from assertions.verdict import RunResult, Verdict
from clusters.model import Cluster
from foundation.errors import ResilienceError, UserError
from injectors import apps
from injectors.base import Fault, FaultContext
from injectors.registry import FAULTS, fault
from injectors.selector import CommonLabelsPropagation, LabelsIncludeSelectors, SelectorChange
from loadgen import choice
from loadgen.run import LoadPlan
from reports.matrix import seconds
from scenarios.plugin import DEFAULT_SLO
from scenarios.recoveries import RecoveryMode, parse
from scenarios.runner import ScenarioRun

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FAULTS = "dependency-cycle,controller-crash-kustomize,helm-upgrade-broken,selector-change"
DEFAULT_MODES = "none,flux-native,operator"
GROUPS = ("same-source", "other-source")


@dataclass(frozen=True)
class Plan:
    faults: list[Fault]
    modes: list[RecoveryMode]
    slo: slo_model.SloFile
    load: LoadPlan
    run_dir: Path


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reuse-cluster", metavar="NAME", help="a running local cluster (default: a fresh one)")
    parser.add_argument("--modes", default=DEFAULT_MODES, help=f"recovery modes (default {DEFAULT_MODES})")
    parser.add_argument("--faults", default=DEFAULT_FAULTS, help=f"catalog faults (default {DEFAULT_FAULTS})")
    parser.add_argument("--load", default="light", help="the load profile of the table (default light)")
    parser.add_argument(
        "--startup", type=positive_seconds, metavar="SECONDS", help="also: the selector faults with slow-starting pods"
    )
    parser.add_argument("--cpu", action="store_true", help="also measure the generator at the heavy profile")
    parser.add_argument("--pressure", action="store_true", help="also time detection under API pressure")
    return parser.parse_args()


def make_plan(args: argparse.Namespace) -> Plan:
    """Everything validated before a cluster starts."""
    faults = [fault(name) for name in names(args.faults, "faults")]
    modes = [parse(spec, "--modes") for spec in names(args.modes, "modes")]
    slo = slo_model.load(DEFAULT_SLO, FAULTS)
    load = choice.choose(args.load, "--load", slo)
    if load is None:
        raise UserError("--load none: this benchmark measures under load; name a load profile")
    for extra in ("heavy",) * args.cpu + ("api-pressure",) * args.pressure:
        choice.choose(extra, "the benchmark", slo)
    run_dir = ROOT / "runs" / f"bench-load-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    return Plan(faults, modes, slo, load, run_dir)


def run(cluster: Cluster, plan: Plan, chosen: Fault, mode: RecoveryMode, load: LoadPlan | None) -> RunResult:
    node = f"{chosen.name}-{mode.name}-{load.label if load else 'none'}"
    budget = plan.slo.budget(chosen.name, mode.name)
    result = ScenarioRun(cluster, chosen, mode, budget, plan.run_dir, node_id=node, load=load).execute()
    print(
        f"  {chosen.name} under {mode.name} ({load.label if load else 'no load'}): {result.verdict} "
        f"TTR {seconds(result.ttr_seconds)} ({result.reason})",
        file=sys.stderr,
        flush=True,
    )
    return result


def measure(cluster: Cluster, plan: Plan, load: LoadPlan | None, modes: Sequence[RecoveryMode]) -> dict[Any, RunResult]:
    """Each mode alone, started and stopped around its runs as the chaos suite does."""
    results: dict[Any, RunResult] = {}
    for mode in modes:
        mode.start(cluster, plan.run_dir)
        try:
            for chosen in plan.faults:
                results[chosen.name, mode.name] = run(cluster, plan, chosen, mode, load)
        finally:
            mode.stop()
    return results


def p95_ratio(measured: dict[str, Any], group: str) -> str:
    """`during / baseline (ratio)` of a group's p95, `-` where nothing was delivered."""
    windows = (measured.get("groups") or {}).get(group)
    if not windows:
        return "-"
    during, baseline = windows["during"]["p95"], windows["baseline"]["p95"]
    ratio = f" ({during / baseline:.1f}x)" if during is not None and baseline else ""
    return f"{seconds(during)} / {seconds(baseline)}{ratio}"


def failed(measured: dict[str, Any]) -> str:
    groups = measured.get("groups") or {}
    total = sum(w[window]["failed"] for w in groups.values() for window in ("baseline", "during", "after"))
    done = sum(w[window]["done"] for w in groups.values() for window in ("baseline", "during", "after"))
    return f"{total}/{total + done}"


def row(result: RunResult) -> list[str]:
    measured = result.measurements.get("load") or {}
    ttr = "invalid" if result.verdict is Verdict.INVALID else seconds(result.ttr_seconds)
    radius = measured.get("blast_radius")
    downtime = measured.get("downtime_seconds")
    return [
        result.fault,
        result.recovery,
        str(result.verdict),
        "never" if result.ttr_seconds is None and result.verdict is not Verdict.INVALID else ttr,
        *(p95_ratio(measured, g) for g in GROUPS),
        failed(measured) if measured else "-",
        "-" if downtime is None else seconds(downtime),
        "-" if radius is None else (f"{len(radius)} ({', '.join(radius)})" if radius else "0"),
    ]


def report(plan: Plan, results: dict[Any, RunResult]) -> None:
    profile = plan.load.profile
    print(
        f"\nDeliveries of other teams during each fault, load {plan.load.label}: {dict(profile.teams)} teams, one "
        f"commit every {profile.every:g}s each, deadline {profile.deadline:g}s, baseline {profile.baseline:g}s "
        f"before the injection, {profile.after:g}s after recovery (budgets {os.path.relpath(plan.slo.path, ROOT)})\n"
    )
    header = ["fault", "mode", "verdict", "TTR", *(f"{g} p95 during / baseline" for g in GROUPS)]
    header += ["failed/all", "downtime", "blast radius"]
    rows = [row(results[f.name, m.name]) for f in plan.faults for m in plan.modes]
    print(render(header, rows))
    print("(p95 in seconds from commit to Ready in the cluster; failed: deliveries not done within the deadline)")
    failing = [r for r in results.values() if r.verdict is not Verdict.PASS]
    if failing:
        print("\nwhy:")
        for result in failing:
            print(f"  {result.fault} under {result.recovery}: {result.verdict}: {result.reason}")


class _SlowStart:
    """A selector fault (same name, same budgets) whose web pods become Ready `startup` seconds after they start
    (kwok's ready delay)."""

    def __init__(self, startup: float):
        self.startup = startup

    def web(self, ctx: FaultContext, labels: dict[str, str]) -> dict[str, Any]:
        dep = apps.deployment("web", ctx.namespace, labels)
        dep["spec"]["template"]["metadata"]["annotations"] = {apps.READY_DELAY: f"{self.startup:g}s"}
        return dep


class SlowStartSelectorChange(_SlowStart, SelectorChange):
    pass


class SlowStartCommonLabels(_SlowStart, CommonLabelsPropagation):
    pass


class SlowStartLabelsIncludeSelectors(_SlowStart, LabelsIncludeSelectors):
    pass


def startup(cluster: Cluster, plan: Plan, delay: float) -> None:
    faults: list[Fault] = [
        SlowStartSelectorChange(delay),
        SlowStartCommonLabels(delay),
        SlowStartLabelsIncludeSelectors(delay),
    ]
    results = measure(cluster, Plan(faults, plan.modes, plan.slo, plan.load, plan.run_dir), plan.load, plan.modes)
    print(f"\nselector faults with pods Ready {delay:g}s after they start, load {plan.load.label}\n")
    header = ["fault", "mode", "verdict", "TTR", "downtime", "same-source p95 during / baseline"]
    rows = []
    for chosen in faults:
        for mode in plan.modes:
            result = results[chosen.name, mode.name]
            measured = result.measurements.get("load") or {}
            rows.append(
                [
                    chosen.name,
                    mode.name,
                    str(result.verdict),
                    seconds_or_never(result),
                    seconds_or_dash(measured.get("downtime_seconds")),
                    p95_ratio(measured, "same-source"),
                ]
            )
    print(render(header, rows))


def seconds_or_never(result: RunResult) -> str:
    return "never" if result.ttr_seconds is None else seconds(result.ttr_seconds)


def seconds_or_dash(value: float | None) -> str:
    return "-" if value is None else seconds(value)


def cpu(cluster: Cluster, plan: Plan) -> None:
    heavy = choice.choose("heavy", "the benchmark", plan.slo)
    assert heavy is not None
    mode = next((m for m in plan.modes if m.name == "operator"), plan.modes[-1])
    results = measure(cluster, Plan([plan.faults[-1]], [mode], plan.slo, heavy, plan.run_dir), heavy, [mode])
    (result,) = results.values()
    used = result.load_diagnostics.baseline_cpu if result.load_diagnostics else {}
    wall = float(used.get("wall_seconds") or 0)
    if not wall:
        print(f"\ngenerator CPU: not measured ({result.reason})")
        return
    own, helpers = float(used["cpu_seconds"]), float(used["helpers_cpu_seconds"])
    measured = result.measurements.get("load") or {}
    done = sum((w["baseline"]["done"] + w["baseline"]["failed"]) for w in (measured.get("groups") or {}).values())
    print(
        f"\ngenerator CPU, load heavy ({used['teams']} teams, one commit every {used['every']:g}s each), over the "
        f"{wall:.0f}s baseline window ({done} deliveries, {done / wall:.2f}/s): locust process {own / wall:.1%} of "
        f"one core; committer and git {helpers / wall:.1%}; together {(own + helpers) / wall:.1%} (target < 15%)"
    )


def pressure(cluster: Cluster, plan: Plan) -> None:
    loaded = choice.choose("api-pressure", "the benchmark", plan.slo)
    assert loaded is not None
    mode = next((m for m in plan.modes if m.name == "operator"), plan.modes[-1])
    quiet = measure(cluster, plan, None, [mode])
    busy = measure(cluster, plan, loaded, [mode])
    profile = loaded.profile
    print(
        f"\nDetection on a busy control plane, under {mode.name}: no load, then api-pressure ({profile.api_users} "
        f"users listing, watching and patching, each every {profile.api_every:g}s, beside "
        f"{profile.team_count} teams)\n"
    )
    header = ["fault", "detect (no load)", "detect (api-pressure)", "TTR (no load)", "TTR (api-pressure)"]
    rows = []
    for chosen in plan.faults:
        a, b = quiet[chosen.name, mode.name], busy[chosen.name, mode.name]
        detect = (seconds(a.timeline.time_to_detect), seconds(b.timeline.time_to_detect))
        rows.append([chosen.name, *detect, seconds(a.ttr_seconds), seconds(b.ttr_seconds)])
    print(render(header, rows))


def main() -> int:
    args = parse_args()
    try:
        plan = make_plan(args)
        with local_cluster(args.reuse_cluster) as cluster:
            results = measure(cluster, plan, plan.load, plan.modes)
            report(plan, results)
            if args.startup:
                startup(cluster, plan, args.startup)
            if args.cpu:
                cpu(cluster, plan)
            if args.pressure:
                pressure(cluster, plan)
    except ResilienceError as e:
        print(f"load_blast_radius: {e}", file=sys.stderr)
        return e.exit_code
    print(f"\nrun records: {plan.run_dir} (undo leftovers on a reused cluster: resilience revert {plan.run_dir})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
