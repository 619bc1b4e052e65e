"""Scale-out figures: the chaos suite on 1, 2, 3 xdist workers side by side, and a sharded run against the same
profile unsharded.

    .venv/bin/python benchmarks/parallel.py workers [--profile quick] [--workers 1,2,3] [--out DIR] [-- PYTEST ARGS]
    .venv/bin/python benchmarks/parallel.py shards [--profile nightly] [--shards 3] [--workers 1] [-- PYTEST ARGS]

`workers` runs the profile once per worker count, one after another in this process (so the ratios are fair),
each session with one local cluster per worker, and prints wall time, CPU time of the suite's whole process tree
(pytest, workers, their clusters and operators; sampled from /proc), and the TTR medians per fault x recovery
with the verdicts side by side; a cell whose median TTR moved from the one-worker run by more than the SLO file's
noise margin is marked. `shards` runs the profile unsharded, then as N shards one after another (planned with
the unsharded run's durations, as CI plans with the previous night's), merges them with `resilience gate`, and
prints each shard's wall, the balance (largest shard against total/N), the merge time, and whether the merged
shards hold the same cells with the same verdicts as the unsharded run. Figures only: nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from cluster_up import descendants

ROOT = Path(__file__).resolve().parent.parent
TICKS = os.sysconf("SC_CLK_TCK")
sys.path.insert(0, str(ROOT))

from assertions import slo as slo_model  # noqa: E402 - after the path is set
from injectors.registry import FAULTS  # noqa: E402
from reports import summary  # noqa: E402


class CpuSampler(threading.Thread):
    """CPU seconds of a process tree: the last utime+stime seen of every process under `root`."""

    def __init__(self, root: int):
        super().__init__(daemon=True)
        self.root = root
        self.ticks: dict[tuple[int, str], int] = {}
        self.stop = threading.Event()

    def sample(self) -> None:
        for pid in descendants(self.root):
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            self.ticks[(pid, fields[19])] = int(fields[11]) + int(fields[12])  # keyed by pid and start time

    def run(self) -> None:
        while not self.stop.wait(0.5):
            self.sample()

    @property
    def seconds(self) -> float:
        return sum(self.ticks.values()) / TICKS


def load() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def chaos(out: Path, args: list[str]) -> dict[str, Any]:
    """One session of the chaos suite; wall, CPU of its process tree, exit code and summary entries."""
    out.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "pytest", "scenarios", "-p", "no:cacheprovider", "-q", *args]
    argv += ["--resilience-summary", str(out / "summary.json"), "--run-dir", str(out / "runs")]
    argv += ["--alluredir", str(out / "allure-results")]
    started, before = time.monotonic(), load()
    with (out / "pytest.log").open("w") as log:
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        sampler = CpuSampler(proc.pid)
        sampler.start()
        code = proc.wait()
        sampler.stop.set()
        sampler.join()
    wall = time.monotonic() - started
    entries = summary.read(out / "summary.json") if (out / "summary.json").exists() else []
    return {"wall": wall, "cpu": sampler.seconds, "code": code, "entries": entries, "load": f"{before} -> {load()}"}


def cells(entries: list[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for entry in entries:
        out.setdefault((entry["fault"], entry["recovery"]), []).append(entry)
    return out


def median_ttr(runs: list[dict[str, Any]]) -> float | None:
    ttrs = [r["ttr_seconds"] for r in runs if r.get("ttr_seconds") is not None]
    return statistics.median(ttrs) if ttrs else None


def verdicts(runs: list[dict[str, Any]]) -> str:
    return ",".join(sorted({r["verdict"] for r in runs}))


def text(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def run_workers(args: argparse.Namespace, slo: slo_model.SloFile, out: Path) -> None:
    counts = [int(n) for n in args.workers.split(",")]
    results = {}
    for n in counts:
        print(f"== {args.profile} profile on {n} worker(s) (load {load()}) ...", flush=True)
        # The first session's TTRs are the solo reference: the suite notes runs its neighbours moved beyond noise.
        solo = [f"--earlier-runs={out / f'workers-{counts[0]}' / 'summary.json'}"] if n != counts[0] else []
        results[n] = chaos(out / f"workers-{n}", ["--profile", args.profile, "-n", str(n), *solo, *args.pytest])
        r = results[n]
        print(f"   wall {r['wall']:.0f}s, CPU {r['cpu']:.0f}s, {len(r['entries'])} runs, exit {r['code']}", flush=True)
    base = results[counts[0]]
    print(f"\n{args.profile} profile, workers side by side (one local cluster per worker; load avg 1/5/15 min)")
    print(f"{'workers':>7} {'wall s':>7} {'speed-up':>8} {'CPU s':>7} {'runs':>5} {'pass':>5} {'noted':>6}  load")
    for n, r in results.items():
        passed = sum(e["verdict"] == "pass" for e in r["entries"])
        noted = sum(any("neighbours may have slowed" in note for note in e.get("notes", [])) for e in r["entries"])
        speed = base["wall"] / r["wall"] if r["wall"] else 0.0
        row = f"{n:>7} {r['wall']:>7.0f} {speed:>7.2f}x {r['cpu']:>7.0f} {len(r['entries']):>5} {passed:>5} {noted:>6}"
        print(f"{row}  {r['load']}")
    print(f"\nmedian TTR (s) and verdicts per fault x recovery; '*' moved beyond the noise margin from {counts[0]}")
    print(f"worker(s) ({slo.noise.seconds:.0f}s or {slo.noise.fraction:.0%})")
    keys = sorted({k for r in results.values() for k in cells(r["entries"])})
    print(f"{'fault':30} {'recovery':12} " + " ".join(f"{f'n={n}':>18}" for n in counts))
    moved = 0
    for key in keys:
        reference = median_ttr(cells(base["entries"]).get(key, []))
        shown = []
        for n in counts:
            runs = cells(results[n]["entries"]).get(key, [])
            ttr = median_ttr(runs)
            star = ""
            if n != counts[0] and ttr is not None and reference is not None:
                moves = abs(ttr - reference) > slo.noise.margin(reference)
                star, moved = ("*", moved + 1) if moves else ("", moved)
            shown.append(f"{text(ttr) + star:>7} {verdicts(runs) or '-':>10}")
        print(f"{key[0]:30} {key[1]:12} " + " ".join(shown))
    changed = [k for k in keys if len({verdicts(cells(r["entries"]).get(k, [])) for r in results.values()}) > 1]
    print(f"\ncells whose median TTR moved beyond noise: {moved}; cells whose verdicts differ: {len(changed)}")
    for key in changed:
        print(
            f"  {key[0]} x {key[1]}: "
            + "; ".join(f"n={n} {verdicts(cells(results[n]['entries']).get(key, []))}" for n in counts)
        )


def gate(summaries: list[Path], extra: list[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.monotonic()
    argv = [sys.executable, "-m", "resilience.cli", "gate", "--summary", *map(str, summaries), *extra]
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    return time.monotonic() - started, proc


def run_shards(args: argparse.Namespace, out: Path) -> None:
    common = ["--profile", args.profile, "-n", str(args.workers), "--run-id", f"bench-{os.getpid()}", *args.pytest]
    print(f"== {args.profile} profile unsharded (load {load()}) ...", flush=True)
    whole = chaos(out / "unsharded", common)
    print(f"   wall {whole['wall']:.0f}s, {len(whole['entries'])} runs, exit {whole['code']}", flush=True)
    earlier = f"--earlier-runs={out / 'unsharded' / 'summary.json'}"
    shards = []
    for i in range(1, args.shards + 1):
        print(f"== shard {i}/{args.shards} (load {load()}) ...", flush=True)
        shards.append(chaos(out / f"shard-{i}", [*common, "--shard", f"{i}/{args.shards}", earlier]))
        print(f"   wall {shards[-1]['wall']:.0f}s, {len(shards[-1]['entries'])} runs", flush=True)
    merge_s, merged = gate([out / f"shard-{i}" / "summary.json" for i in range(1, args.shards + 1)], [])
    walls = [s["wall"] for s in shards]
    total = sum(walls)
    print(f"\n{args.profile}: {args.shards} shards one after another here vs unsharded ({args.workers} worker(s) each)")
    for i, s in enumerate(shards, 1):
        print(f"  shard {i}/{args.shards}: wall {s['wall']:.0f}s, CPU {s['cpu']:.0f}s, {len(s['entries'])} runs")
    print(f"  shards in total {total:.0f}s; unsharded {whole['wall']:.0f}s")
    on_runners = max(walls) + merge_s
    print(f"  on {args.shards} runners: largest shard {max(walls):.0f}s + merge {merge_s:.1f}s = {on_runners:.0f}s")
    print(f"  balance: largest shard / (total/N) = {max(walls) / (total / args.shards):.2f} (target <= 1.2)")
    last = merged.stdout.strip().splitlines()[-1] if merged.stdout.strip() else merged.stderr.strip()
    print(f"  merged gate: exit {merged.returncode}: {last}")
    sharded = [e for s in shards for e in s["entries"]]

    def keyed(entries: list[dict[str, Any]]) -> dict[tuple[str, str, int], str]:
        return {(e["fault"], e["recovery"], int(e.get("repeat") or 1)): e["verdict"] for e in entries}

    a, b = keyed(whole["entries"]), keyed(sharded)
    same_cells = sorted(a) == sorted(b) and len(sharded) == len(b)
    differ = sorted(k for k in a.keys() & b.keys() if a[k] != b[k])
    print(
        f"  same cells: {same_cells} ({len(a)} unsharded, {len(sharded)} sharded); verdicts that differ: {len(differ)}"
    )
    for key in differ:
        print(f"    {key[0]} x {key[1]} r{key[2]}: unsharded {a[key]}, sharded {b[key]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("workers", "shards"))
    parser.add_argument("--profile", default=None, help="profile of the SLO file (workers: quick; shards: nightly)")
    parser.add_argument("--workers", default=None, help="workers: counts to compare (1,2,3); shards: per shard (1)")
    parser.add_argument("--shards", type=int, default=3)
    parser.add_argument("--out", default=None, help="where sessions write (default: a temporary directory)")
    # Everything after `--` goes to pytest (-m FAMILY, --repeat N).
    cut = sys.argv.index("--") if "--" in sys.argv else len(sys.argv)
    args = parser.parse_args(sys.argv[1:cut])
    args.pytest = sys.argv[cut + 1 :]
    args.profile = args.profile or ("quick" if args.what == "workers" else "nightly")
    args.workers = args.workers or ("1,2,3" if args.what == "workers" else "1")
    slo = slo_model.load(ROOT / "scenarios" / "slo.yaml", FAULTS)
    slo.profile(args.profile)  # an unknown profile fails here, not in every session
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench-parallel-"))
    print(f"host: {os.cpu_count()} CPUs, load {load()}; sessions write to {out}", flush=True)
    if args.what == "workers":
        run_workers(args, slo, out)
    else:
        run_shards(args, out)


if __name__ == "__main__":
    main()
