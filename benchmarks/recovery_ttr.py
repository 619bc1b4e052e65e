"""Time to recover per fault under each recovery mode (operator, flux-native, none) side by side in one run, and
the harness's own overhead.

Every run is the chaos suite's own: a ScenarioRun of a catalog fault (set-up, steady state, injection, proof,
recovery wait, user-data check, revert), judged by the one judge (assertions.verdict) against the shipped SLO
file's budget, so these figures and the suite's verdicts cannot disagree. Modes run one at a time, started and
stopped as the suite starts them, so each run is measured under its own mode alone.

TTR is seconds from injection to recovered. Faults whose cause a person later fixes (the dependency faults,
helm-retries-exhausted) are fixed by the catalog once the fault is proven, so their TTR includes the wait for
the proof and the fix. The harness overhead of a run is its wall time minus injection-to-recovered (or to giving
up): set-up, steady-state checks, watches, revert. `--chaos` also times `pytest scenarios --profile quick` on a
fresh local cluster (what `make chaos` runs after its set-up). Figures only: nothing here is asserted.

Usage: .venv/bin/python benchmarks/recovery_ttr.py [--reuse-cluster NAME] [--modes operator,flux-native,none]
       [--faults selector-change,dependency-cycle] [--wait SECONDS] [--chaos]
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from recovery_common import local_cluster, summary

from assertions import slo as slo_model
from assertions.slo import Budget
from assertions.verdict import RunResult, Verdict, percentile
from clusters.model import Cluster
from foundation.errors import ResilienceError, UserError
from injectors.base import Fault
from injectors.registry import FAULTS, fault
from reports.matrix import seconds
from scenarios.plugin import DEFAULT_SLO
from scenarios.recoveries import RecoveryMode, parse
from scenarios.runner import ScenarioRun

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODES = "operator,flux-native,none"
# Shown for the operator's runs: when Flux showed the fault, and when the operator reported and acted on it.
OPERATOR_PHASES = ("visible", "detected", "acted")

Results = dict[tuple[str, str], RunResult]


@dataclass(frozen=True)
class Plan:
    """What to run: every fault under every mode, against the SLO file's budgets (give-up time overridable)."""

    faults: list[Fault]
    modes: list[RecoveryMode]
    slo: slo_model.SloFile
    wait: float | None
    run_dir: Path

    def budget(self, fault: Fault, mode: RecoveryMode) -> Budget:
        budget = self.slo.budget(fault.name, mode.name)
        return budget if self.wait is None else replace(budget, wait=self.wait)

    @property
    def mode_names(self) -> list[str]:
        return [m.name for m in self.modes]


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}")
    return value


def names(value: str, what: str) -> list[str]:
    """Comma-separated names, each once; naming nothing is an error (it would measure nothing)."""
    out = list(dict.fromkeys(n.strip() for n in value.split(",") if n.strip()))
    if not out:
        raise UserError(f"--{what} {value!r}: name at least one")
    return out


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reuse-cluster", metavar="NAME", help="a running local cluster (default: a fresh one)")
    parser.add_argument(
        "--modes",
        default=DEFAULT_MODES,
        help=f"recovery modes, the first is the ratios' base (default {DEFAULT_MODES})",
    )
    parser.add_argument("--faults", default=",".join(FAULTS), help="catalog faults (default: all)")
    parser.add_argument(
        "--wait",
        type=positive_seconds,
        metavar="SECONDS",
        help="give up on a recovery after SECONDS (default: the SLO file's wait)",
    )
    parser.add_argument("--chaos", action="store_true", help="also time the quick profile of the chaos suite")
    return parser.parse_args()


def make_plan(args: argparse.Namespace) -> Plan:
    """Everything validated before a cluster starts: faults, modes, SLO file."""
    faults = [fault(name) for name in names(args.faults, "faults")]
    modes = [parse(spec, "--modes") for spec in names(args.modes, "modes")]
    run_dir = ROOT / "runs" / f"bench-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    return Plan(faults, modes, slo_model.load(DEFAULT_SLO, FAULTS), args.wait, run_dir)


def measure(cluster: Cluster, plan: Plan) -> Results:
    """Each mode alone, started and stopped around its runs as the chaos suite does."""
    results: Results = {}
    for mode in plan.modes:
        mode.start(cluster, plan.run_dir)
        try:
            for chosen in plan.faults:
                budget = plan.budget(chosen, mode)  # the whole wait: a TTR beyond its budget is measured
                result = ScenarioRun(cluster, chosen, mode, budget, plan.run_dir, wait_full=True).execute()
                results[chosen.name, mode.name] = result
                progress(result)
        finally:
            mode.stop()
    return results


def harness_seconds(result: RunResult) -> float:
    assert result.harness_seconds is not None, "the runner records every run's harness seconds"
    return result.harness_seconds


def valid_ttr(result: RunResult) -> float | None:
    """The TTR, unless the run proves nothing."""
    return None if result.verdict is Verdict.INVALID else result.ttr_seconds


def progress(result: RunResult) -> None:
    print(
        f"  {result.fault} under {result.recovery}: {result.verdict} TTR {seconds(result.ttr_seconds)} "
        f"phases {result.timeline.phase_seconds()} harness {harness_seconds(result):.1f}s"
        + ("" if result.verdict is Verdict.PASS else f" ({result.reason})"),
        file=sys.stderr,
        flush=True,
    )


def cell(result: RunResult) -> str:
    """TTR and verdict; "never" when it did not recover, "invalid" alone when the run proves nothing."""
    if result.verdict is Verdict.INVALID:
        return "invalid"
    ttr = "never" if result.ttr_seconds is None else seconds(result.ttr_seconds)
    return f"{ttr} {result.verdict}"


def ratio(value: RunResult, reference: RunResult) -> str:
    """TTR under one mode over TTR under the base mode: how many times longer it took."""
    a, b = valid_ttr(value), valid_ttr(reference)
    return "-" if a is None or b is None or b <= 0 else f"{a / b:.1f}x"


def operator_phases(result: RunResult | None) -> str:
    if result is None:
        return "-"
    return " / ".join(seconds(result.timeline.since_injected(p)) for p in OPERATOR_PHASES)


def row(plan: Plan, results: Results, name: str) -> list[str]:
    modes = plan.mode_names
    runs = [results[name, m] for m in modes]
    out = [name, *(cell(r) for r in runs), *(ratio(r, runs[0]) for r in runs[1:])]
    out.append(seconds(percentile([harness_seconds(r) for r in runs], 50)))
    if "operator" in modes:
        out.append(operator_phases(results.get((name, "operator"))))
    return out


def render(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in (header, *rows))


def report(plan: Plan, results: Results) -> None:
    modes = plan.mode_names
    header = ["fault", *modes, *(f"{m}/{modes[0]}" for m in modes[1:]), "harness"]
    if "operator" in modes:
        header.append("operator: " + " / ".join(OPERATOR_PHASES))
    wait = f"--wait {plan.wait:.0f}s" if plan.wait else "waits as budgeted"
    print(
        f"\nTime to recover: seconds from injection to recovered, and the verdict "
        f"(budgets {os.path.relpath(plan.slo.path, ROOT)}, {wait})\n"
    )
    print(render(header, [row(plan, results, f.name) for f in plan.faults]))
    print("(a/b: TTR under a over TTR under b, '-' when either never recovered or proves nothing;")
    print(" harness: the median of the harness's own overhead per run; operator phases: seconds after injection)")
    failed = [r for r in results.values() if r.verdict is not Verdict.PASS]
    if failed:
        print("\nwhy:")
        for result in failed:
            print(f"  {result.fault} under {result.recovery}: {result.verdict}: {result.reason}")
    overhead = [harness_seconds(r) for r in results.values()]
    print(f"\nharness overhead per scenario: {summary(overhead)} over {len(overhead)} runs")
    print(f"run records: {plan.run_dir} (undo leftovers on a reused cluster: resilience revert {plan.run_dir})")


def chaos_wall() -> float:
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "pytest", "scenarios", "--profile", "quick", "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
        check=False,
    )
    return time.monotonic() - started


def main() -> int:
    args = parse_args()
    try:
        plan = make_plan(args)
        with local_cluster(args.reuse_cluster) as cluster:
            results = measure(cluster, plan)
    except ResilienceError as e:
        print(f"recovery_ttr: {e}", file=sys.stderr)
        return e.exit_code
    report(plan, results)
    if args.chaos:
        minutes = chaos_wall() / 60
        print(f"chaos suite, quick profile (fresh local cluster included): {minutes:.1f} min (target <= 10 min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
