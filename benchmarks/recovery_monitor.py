"""The monitor's footprint with 200 Flux objects: start-up, memory, CPU, scrape cost, under status churn.

150 Kustomizations (one ConfigMap each) and 50 HelmReleases (demo-app, one replica) are created and Ready;
then the operator starts and is measured: seconds until /metrics shows all 200 objects; then over --window
seconds, while --churn Kustomizations per 10 s are asked to reconcile (status changes the monitor must
process), its resident memory (peak and mean), CPU (share of one core), watch events processed, and the time
and size of one /metrics scrape. Nothing fails in this run, so it measures watching, not acting.

Usage: .venv/bin/python benchmarks/recovery_monitor.py [--reuse-cluster NAME] [--kustomizations 150]
       [--helmreleases 50] [--window 120] [--churn 20]
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from recovery_common import local_cluster, operator_for

from fluxmodel.annotations import reconcile_request
from fluxmodel.conditions import is_ready
from fluxmodel.kinds import FLUX_NAMESPACE, HELM_RELEASE, KUSTOMIZATION
from foundation.waiting import poll
from injectors.apps import dump, kustomization_file
from injectors.testapp import App, chart_release, publish

TICK = os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reuse-cluster", default=None)
    parser.add_argument("--kustomizations", type=int, default=150)
    parser.add_argument("--helmreleases", type=int, default=50)
    parser.add_argument("--window", type=float, default=120.0)
    parser.add_argument("--churn", type=int, default=20)
    args = parser.parse_args()
    with local_cluster(args.reuse_cluster) as cluster:
        app = App(cluster, f"bm-{secrets.token_hex(3)}")
        try:
            files: dict[str, str] = {}
            for i in range(args.kustomizations):
                cm = {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": f"c{i}", "namespace": app.ns},
                    "data": {"i": str(i)},
                }
                files[f"{app.path}/k{i}/cm.yaml"] = dump(cm)
                files[f"{app.path}/k{i}/kustomization.yaml"] = dump(kustomization_file(["cm.yaml"]))
            version = publish(cluster, replicaCount=1)
            app.setup(files, kustomization=False)
            names = [
                app.kustomization(f"{app.name}-k{i}", f"{app.path}/k{i}", wait=False).name
                for i in range(args.kustomizations)
            ]
            for i in range(args.helmreleases):
                release = chart_release(f"r{i}", app.ns, version)
                app.kube.apply(release)
            total = args.kustomizations + args.helmreleases

            def ready_count() -> int:
                ks = [
                    k
                    for k in app.kube.list(KUSTOMIZATION.api_version, KUSTOMIZATION.kind, FLUX_NAMESPACE)
                    if k["metadata"]["name"].startswith(app.name) and is_ready(k)
                ]
                hr = [h for h in app.kube.list(HELM_RELEASE.api_version, HELM_RELEASE.kind, app.ns) if is_ready(h)]
                return len(ks) + len(hr)

            poll(lambda: ready_count() >= total, 900, interval=2)
            print(f"  {ready_count()}/{total} Flux objects Ready", file=sys.stderr, flush=True)

            spawned = time.monotonic()
            with operator_for("operator", cluster) as operator:
                assert operator is not None
                metrics_at = time.monotonic() - spawned

                def objects_in_metrics() -> int:
                    text = operator.metrics()
                    lines = text.splitlines()
                    ks = [x for x in lines if x.startswith("flux_kustomization_ready{") and f'name="{app.name}-k' in x]
                    hr = [x for x in lines if x.startswith("flux_helmrelease_ready{") and f'namespace="{app.ns}"' in x]
                    return len(ks) + len(hr)

                poll(lambda: objects_in_metrics() >= total, 60, interval=0.1)
                synced_at = time.monotonic() - spawned
                pid = operator.pid
                cpu0, wall0 = cpu_seconds(pid), time.monotonic()
                events0 = operator.sample("flux_recovery_watch_events_total") or 0
                rss: list[float] = []
                scrapes: list[float] = []
                size = 0
                next_churn = time.monotonic()

                def sample() -> None:
                    nonlocal next_churn, size
                    if time.monotonic() >= next_churn:
                        for name in random.sample(names, min(args.churn, len(names))):
                            app.kube.merge_patch(
                                KUSTOMIZATION.api_version, KUSTOMIZATION.kind, name, FLUX_NAMESPACE, reconcile_request()
                            )
                        next_churn += 10
                    rss.append(rss_mib(pid))
                    started = time.perf_counter()
                    size = len(operator.metrics())
                    scrapes.append(time.perf_counter() - started)

                poll(sample, args.window, interval=2, done=lambda _: False)  # every 2 s for the whole window
                cpu = (cpu_seconds(pid) - cpu0) / (time.monotonic() - wall0)
                events = (operator.sample("flux_recovery_watch_events_total") or 0) - events0
        finally:
            app.cleanup()
    print(
        f"\nMonitor footprint with {args.kustomizations} Kustomizations + {args.helmreleases} HelmReleases "
        f"({args.window:.0f}s window, {args.churn} reconcile requests / 10s)\n"
    )
    print(f"  metrics served after start       {metrics_at:6.2f} s")
    print(f"  all {total} objects in /metrics     {synced_at:6.2f} s after start")
    print(f"  resident memory                  peak {max(rss):.1f} MiB, mean {statistics.mean(rss):.1f} MiB")
    print(f"  CPU                              {100 * cpu:.1f} % of one core")
    print(f"  watch events processed           {events:.0f} ({events / args.window:.1f}/s)")
    print(
        f"  /metrics scrape                  median {1000 * statistics.median(scrapes):.1f} ms, {size / 1024:.0f} KiB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
