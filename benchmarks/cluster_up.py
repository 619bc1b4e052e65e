"""Cluster benchmarks: cold and cached build, `cluster up` to Ready (median of N), `cluster down`, peak memory.

    .venv/bin/python benchmarks/cluster_up.py [--runs 5] [--skip-cold]

The cold build uses empty Go module and build caches and an empty binary cache (all temporary), so it is what
a brand-new CI machine pays; it takes a while. Memory is the proportional set size (PSS) of every process of
the cluster (supervisor, control plane, kwok, Flux, file servers), sampled every 0.2 s from `up` until 15 s
after Ready. Each `up` also reports the seconds of its start-up phases (`phases_seconds` of `cluster up --format
json`; `command` is the rest of its wall time: interpreter, imports, checks), printed as medians beside the rest.
Figures only: nothing here is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESILIENCE = [sys.executable, "-m", "resilience.cli"]


def timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=ROOT)
    return time.monotonic() - started, proc


def pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = set(), [root]
    while todo:
        pid = todo.pop()
        out.add(pid)
        todo.extend(children.get(pid, []))
    return out


class MemorySampler(threading.Thread):
    """Peak total PSS of a cluster's supervisor and everything under it."""

    def __init__(self, state: Path, name: str):
        super().__init__(daemon=True)
        self.pid_file = state / "clusters" / name / "supervisor.pid"
        self.peak_kib = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                root = int(self.pid_file.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                root = None
            if root is not None:
                self.peak_kib = max(self.peak_kib, sum(pss_kib(p) for p in descendants(root)))
            self.stop.wait(0.2)


def cold_build() -> float:
    with tempfile.TemporaryDirectory(prefix="bench-cold-") as tmp:
        env = {
            **os.environ,
            "RESILIENCE_CACHE": f"{tmp}/cache",
            "GOCACHE": f"{tmp}/gocache",
            "GOMODCACHE": f"{tmp}/gomod",
            "GOFLAGS": "-modcacherw",
        }
        seconds, proc = timed([*RESILIENCE, "build"], env)
        if proc.returncode != 0:
            sys.exit(f"cold build failed: {proc.stderr.strip().splitlines()[-1]}")
        subprocess.run(["chmod", "-R", "u+w", tmp], check=False)
        return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--skip-cold", action="store_true", help="skip the cold build (it takes minutes)")
    args = parser.parse_args()

    figures: list[tuple[str, str]] = []
    if not args.skip_cold:
        figures.append(("cold build (empty Go and binary caches)", f"{cold_build():.0f} s"))
    cached, proc = timed([*RESILIENCE, "build"])
    if proc.returncode != 0:
        sys.exit(f"build failed: {proc.stderr.strip()}")
    figures.append(("cached build (no-op)", f"{cached:.2f} s"))

    ups, downs, peaks = [], [], []
    phases: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-state-") as state:
        env = {**os.environ, "RESILIENCE_STATE": state}
        for run in range(1, args.runs + 1):
            name = f"bench-{run}"
            sampler = MemorySampler(Path(state), name)
            sampler.start()
            up, proc = timed([*RESILIENCE, "cluster", "up", "--name", name, "--format", "json"], env)
            if proc.returncode != 0:
                sys.exit(f"cluster up failed: {proc.stderr.strip()}")
            reported = json.loads(proc.stdout).get("phases_seconds", {})
            # The command's own share: interpreter, imports and checks before `prepare`, and printing after Ready.
            reported["command"] = up - reported.get("total", up)
            for phase, seconds in reported.items():
                phases.setdefault(phase, []).append(seconds)
            time.sleep(15)
            sampler.stop.set()
            sampler.join()
            down, proc = timed([*RESILIENCE, "cluster", "down", "--name", name], env)
            if proc.returncode != 0:
                sys.exit(f"cluster down failed: {proc.stderr.strip()}")
            ups.append(up)
            downs.append(down)
            peaks.append(sampler.peak_kib / 1024)
            print(f"run {run}: up {up:.1f} s, down {down:.1f} s, peak {sampler.peak_kib / 1024:.0f} MiB", flush=True)

    figures += [
        (
            f"cluster up to Ready, median of {args.runs}",
            f"{statistics.median(ups):.1f} s (min {min(ups):.1f}, max {max(ups):.1f})",
        ),
        (f"cluster down, median of {args.runs}", f"{statistics.median(downs):.1f} s (max {max(downs):.1f})"),
        ("peak memory of the whole cluster (PSS)", f"{max(peaks):.0f} MiB (median {statistics.median(peaks):.0f})"),
        *((f"  up phase {phase}, median", f"{statistics.median(seconds):.2f} s") for phase, seconds in phases.items()),
        ("targets", "up <= 8 s, down <= 5 s, memory <= 2048 MiB"),
    ]
    width = max(len(k) for k, _ in figures)
    print()
    for key, value in figures:
        print(f"{key:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
