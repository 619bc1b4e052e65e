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


def ratio(ttr: dict[tuple[str, str], float], fault: str, mode: str, base: str) -> str:
    """TTR under `mode` over TTR under `base`: how many times faster `base` recovers."""
    value, reference = ttr.get((fault, mode)), ttr.get((fault, base))
    if value is None or reference is None or reference <= 0:
        return "-"
    return f"{value / reference:.1f}x"


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
    ttr: dict[tuple[str, str], float] = {}
    harness_of: dict[str, list[float]] = {f.name: [] for f in faults}
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
                        harness_of[fault.name].append(harness)
                        rows[fault.name][mode.name] = fmt(result.ttr_seconds, str(result.verdict))
                        if result.ttr_seconds is not None and str(result.verdict) != "invalid":
                            ttr[fault.name, mode.name] = result.ttr_seconds
                        print(
                            f"{fault.name} under {mode.name}: {result.verdict} TTR {result.ttr_seconds} "
                            f"(harness {harness:.1f}s)",
                            flush=True,
                        )
                finally:
                    mode.stop()
        finally:
            provider.down(cluster.name)

    names = [m.name for m in modes]
    ratios = [f"{m}/{names[0]}" for m in names[1:]]
    for fault in faults:
        own = harness_of[fault.name]
        rows[fault.name]["harness"] = f"{statistics.median(own):.1f}s" if own else "-"
        for m, column in zip(names[1:], ratios, strict=True):
            rows[fault.name][column] = ratio(ttr, fault.name, m, names[0])
    columns = [*names, "harness", *ratios]
    width = max(len(f.name) for f in faults)
    cells = [max(12, len(c)) for c in columns]
    print()
    print(f"{'fault':<{width}}  " + "  ".join(f"{c:>{n}}" for c, n in zip(columns, cells, strict=True)))
    for fault in faults:
        values = [rows[fault.name].get(c, "-") for c in columns]
        print(f"{fault.name:<{width}}  " + "  ".join(f"{v:>{n}}" for v, n in zip(values, cells, strict=True)))
    print(
        "(harness: the median of its own overhead per run; a/b: TTR under a over TTR under b, '-' when either "
        "never recovered)"
    )
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
