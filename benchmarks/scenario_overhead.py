"""Per fault, side by side in one run: TTR under each recovery mode, and the harness's own overhead.

    .venv/bin/python benchmarks/scenario_overhead.py [--recoveries none,flux-native,operator] [--faults a,b]
                                                     [--wait 120] [--chaos]

The harness overhead of a run is its wall time minus the time from injection to the verdict (set-up,
steady-state checks, watches, revert). `--chaos` also times `pytest scenarios --profile quick` on a fresh
local cluster (what `make chaos` runs after its set-up). Figures only: nothing here is asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from assertions import slo
from clusters.local.provider import LocalProvider
from injectors.registry import FAULTS
from scenarios.plugin import DEFAULT_SLO
from scenarios.recoveries import parse
from scenarios.runner import ScenarioRun

ROOT = Path(__file__).resolve().parent.parent


def fmt(seconds: float | None, verdict: str) -> str:
    if verdict == "invalid":
        return "invalid"
    return "never" if seconds is None else f"{seconds:.1f}s"


def chaos_wall() -> float:
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "pytest", "scenarios", "--profile", "quick", "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
        check=False,
    )
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recoveries", default="none,flux-native")
    parser.add_argument("--faults", default=",".join(FAULTS))
    parser.add_argument("--wait", type=float, default=None, help="cap the wait for recovery (seconds)")
    parser.add_argument("--chaos", action="store_true", help="also time the quick profile of the chaos suite")
    args = parser.parse_args()

    budgets = slo.load(DEFAULT_SLO, FAULTS)
    faults = [FAULTS[name] for name in args.faults.split(",")]
    modes = [parse(spec, "--recoveries") for spec in args.recoveries.split(",")]
    rows: dict[str, dict[str, str]] = {f.name: {} for f in faults}
    overhead: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-scenarios-") as tmp:
        os.environ["RESILIENCE_STATE"] = f"{tmp}/state"
        provider = LocalProvider()
        cluster = provider.up("bench-scenarios", owner_pid=os.getpid())
        try:
            for mode in modes:
                mode.start(cluster, Path(tmp) / "run")
                try:
                    for fault in faults:
                        budget = budgets.budget(fault.name, mode.name)
                        if args.wait:
                            budget = replace(budget, wait=min(args.wait, budget.give_up_after))
                        result = ScenarioRun(cluster, fault, mode, budget, Path(tmp) / "run").execute()
                        harness = float(result.attachments.get("harness_seconds") or 0.0)
                        overhead.append(harness)
                        rows[fault.name][mode.name] = fmt(result.ttr_seconds, str(result.verdict))
                        rows[fault.name]["harness"] = f"{harness:.1f}s"
                        print(
                            f"{fault.name} under {mode.name}: {result.verdict} TTR {result.ttr_seconds} "
                            f"(harness {harness:.1f}s)",
                            flush=True,
                        )
                finally:
                    mode.stop()
        finally:
            provider.down(cluster.name)

    columns = [m.name for m in modes] + ["harness"]
    width = max(len(f.name) for f in faults)
    print()
    print(f"{'fault':<{width}}  " + "  ".join(f"{c:>12}" for c in columns))
    for fault in faults:
        print(f"{fault.name:<{width}}  " + "  ".join(f"{rows[fault.name].get(c, '-'):>12}" for c in columns))
    if overhead:
        print(
            f"\nharness overhead per scenario: median {statistics.median(overhead):.1f}s, max {max(overhead):.1f}s "
            f"over {len(overhead)} runs"
        )
    if args.chaos:
        print(
            f"chaos suite, quick profile (fresh local cluster included): {chaos_wall() / 60:.1f} min (target <= 10 min)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
