"""Monitoring benchmark: what Prometheus and Alertmanager cost during a chaos run, and how long an alert takes.

    .venv/bin/python benchmarks/monitoring_stack.py [--pages 5] [--fault selector-change]

Starts one local cluster with monitoring (its own, stopped at the end), evaluating the shipped rules plus one probe
rule `resilience_benchmark_probe == 1` (no `for`) on a gauge this script serves and registers as a scrape target.

1. Latency, side by side for each page: the probe gauge goes 0 -> 1 (time t0); the firing notification reaches
   the receiver (t1); the gauge goes back to 0; the resolved notification arrives (t2). Reported: t1 - t0 (the
   scrape interval, an evaluation, Alertmanager's group wait) and t2 - (time it went back to 0).
2. Cost: memory (RSS, PSS) and CPU of Prometheus, Alertmanager and the receiver, sampled every second while idle
   (30 s) and while a scenario of the catalog runs under the operator (the run's own alert collection included).

Figures only: nothing here is asserted.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import CollectorRegistry, Gauge, start_http_server

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assertions import slo  # noqa: E402
from clusters.local.provider import LocalProvider  # noqa: E402
from clusters.model import Cluster  # noqa: E402
from foundation.ports import ephemeral_port  # noqa: E402
from foundation.waiting import wait_until  # noqa: E402
from injectors.registry import FAULTS, fault  # noqa: E402
from monitoring.facts.rules import rule_groups, shipped_rules  # noqa: E402
from monitoring.stack.handle import OPERATOR_JOB, Monitoring  # noqa: E402
from scenarios.plugin import DEFAULT_SLO  # noqa: E402
from scenarios.recoveries import parse  # noqa: E402
from scenarios.runner import ScenarioRun  # noqa: E402

PROBE = "ResilienceBenchmarkProbe"
COMPONENTS = ("prometheus", "alertmanager", "alert-receiver")
TICK = os.sysconf("SC_CLK_TCK")


def rules_with_probe(directory: Path) -> Path:
    probe = {"name": "benchmark", "rules": [{"alert": PROBE, "expr": "resilience_benchmark_probe == 1"}]}
    path = directory / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [*rule_groups(shipped_rules()), probe]}, sort_keys=False))
    return path


def probe_state(monitoring: Monitoring, since: float, status: str) -> float | None:
    """When the receiver got the probe alert with `status` (the first time after `since`)."""
    for note in monitoring.notifications(since):
        if any(a["labels"].get("alertname") == PROBE and a["status"] == status for a in note.alerts):
            return note.received
    return None


def latency(monitoring: Monitoring, pages: int) -> tuple[list[float], list[float]]:
    registry = CollectorRegistry()
    gauge = Gauge("resilience_benchmark_probe", "1 while the benchmark wants a page", registry=registry)
    port = ephemeral_port()
    start_http_server(port, addr="127.0.0.1", registry=registry)
    monitoring.scrape(OPERATOR_JOB, "benchmark-probe", f"127.0.0.1:{port}")
    wait_until(lambda: monitoring.query("resilience_benchmark_probe"), 60, "Prometheus to scrape the probe")
    fire, resolve = [], []
    for _ in range(pages):
        t0 = time.time()
        gauge.set(1)
        t1 = wait_until(partial(probe_state, monitoring, t0, "firing"), 120, "the probe page", interval=0.05)
        gauge.set(0)
        back = time.time()
        t2 = wait_until(partial(probe_state, monitoring, back, "resolved"), 120, "the probe resolved", interval=0.05)
        assert t1 is not None and t2 is not None  # wait_until returns only once both were seen
        fire.append(t1 - t0)
        resolve.append(t2 - back)
        time.sleep(monitoring.timings.group_interval + 1)  # the next firing is a new group, not a repeat
    return fire, resolve


def _stat(pid: int) -> tuple[float, int, int]:
    """CPU seconds (user + system), RSS KiB and PSS KiB of one process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICK
    rss = pss = 0
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Rss:"):
            rss = int(line.split()[1])
        elif line.startswith("Pss:"):
            pss = int(line.split()[1])
    return cpu, rss, pss


class Sampler(threading.Thread):
    """Every second: RSS/PSS of each monitoring process; CPU from the first to the last sample."""

    def __init__(self, pids: dict[str, int]):
        super().__init__(daemon=True)
        self.pids = pids
        self.stop = threading.Event()
        self.rss: dict[str, list[int]] = {n: [] for n in pids}
        self.pss: dict[str, list[int]] = {n: [] for n in pids}
        self.cpu0 = {n: _stat(p)[0] for n, p in pids.items()}
        self.cpu1 = dict(self.cpu0)
        self.started = time.monotonic()
        self.ended = self.started

    def run(self) -> None:
        while not self.stop.wait(1.0):
            for name, pid in self.pids.items():
                cpu, rss, pss = _stat(pid)
                self.cpu1[name] = cpu
                self.rss[name].append(rss)
                self.pss[name].append(pss)
            self.ended = time.monotonic()

    def report(self, label: str) -> list[str]:
        wall = max(self.ended - self.started, 1e-9)
        lines = [f"{label} ({wall:.0f} s):"]
        for name in self.pids:
            rss, pss = self.rss[name] or [0], self.pss[name] or [0]
            cpu = self.cpu1[name] - self.cpu0[name]
            lines.append(
                f"  {name:15} RSS max {max(rss) / 1024:6.1f} MiB (mean {statistics.mean(rss) / 1024:6.1f})  "
                f"PSS max {max(pss) / 1024:6.1f} MiB  CPU {cpu:6.2f} s = {100 * cpu / wall:5.1f} % of one core"
            )
        return lines


def measure(label: str, pids: dict[str, int], work: Any) -> list[str]:
    sampler = Sampler(pids)
    sampler.start()
    try:
        work()
    finally:
        sampler.stop.set()
        sampler.join()
    return sampler.report(label)


def run_scenario(cluster: Cluster, name: str, run_dir: Path) -> str:
    mode = parse("operator")
    mode.start(cluster, run_dir)
    try:
        budget = slo.load(DEFAULT_SLO, FAULTS).budget(name, "operator")
        result = ScenarioRun(cluster, fault(name), mode, budget, run_dir, node_id=f"bench-{name}").execute()
        return f"{name} under operator: {result.verdict} ({result.reason}); alerts {result.measurements.get('alerts')}"
    finally:
        mode.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=5, help="probe pages to time")
    parser.add_argument("--fault", default="selector-change", help="the scenario run while sampling")
    parser.add_argument("--idle", type=float, default=30.0, help="seconds sampled before the scenario")
    args = parser.parse_args()
    name = f"bench-mon-{secrets.token_hex(2)}"
    provider = LocalProvider()
    with tempfile.TemporaryDirectory() as tmp:
        cluster = provider.up(name, owner_pid=os.getpid(), monitoring=True, alert_rules=rules_with_probe(Path(tmp)))
        try:
            monitoring, control = cluster.monitoring, cluster.control
            assert monitoring is not None and control is not None
            status = control.status()
            pids = {n: int(status[n]["pid"]) for n in COMPONENTS}
            timings = monitoring.timings
            print(
                f"cluster {name}: scrape {timings.scrape_interval}s, evaluation {timings.evaluation_interval}s, "
                f"group_wait {timings.group_wait}s, group_interval {timings.group_interval}s; {os.cpu_count()} cores"
            )
            lines = measure("idle", pids, lambda: time.sleep(args.idle))
            outcome: list[str] = []
            lines += measure(
                f"during {args.fault} under the operator",
                pids,
                lambda: outcome.append(run_scenario(cluster, args.fault, Path(tmp) / "runs")),
            )
            print("\n".join(lines))
            print(outcome[0] if outcome else "(scenario did not finish)")
            fire, resolve = latency(monitoring, args.pages)
            print(
                f"metric change -> firing page at the receiver, {len(fire)} pages: "
                + ", ".join(f"{s:.2f}" for s in fire)
            )
            print(
                f"  min {min(fire):.2f} s, median {statistics.median(fire):.2f} s, max {max(fire):.2f} s "
                f"(bound: scrape + 2 evaluations + group wait = {timings.delivery_seconds} s)"
            )
            print("metric back -> resolved page: " + ", ".join(f"{s:.2f}" for s in resolve))
            print(
                f"  min {min(resolve):.2f} s, median {statistics.median(resolve):.2f} s, max {max(resolve):.2f} s "
                f"(bound: scrape + evaluation + group interval = {timings.resolve_seconds} s)"
            )
        finally:
            provider.down(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
