"""Time to handle N Kustomizations stuck at once (target: all handled within 60 s), operator vs flux-native.

N Kustomizations (each its own path with one Deployment, all from one GitRepository) are Ready; one commit then
changes every Deployment's selector, so kustomize-controller's dry-run refuses all N. Printed per mode, in
seconds after the commit: all N visible (Flux shows the refusal), all N handled (the operator's action on each
is done: copy serving, old Deployment gone, reconcile requested), all N recovered (Ready at the new revision,
Deployment Available), and per object the latency from Flux writing the refusal (the Ready condition's
lastTransitionTime, 1 s resolution) to the operator's first step.
Flux-native (spec.force) has no "handled" step: kustomize-controller deletes and re-creates in its reconcile.

Usage: .venv/bin/python benchmarks/recovery_scale.py [--reuse-cluster NAME] [--count 100] [--modes operator,flux-native]
       [--cap 300] [--workers 8] [--no-wait]
"""

from __future__ import annotations

import argparse
import re
import secrets
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from recovery_common import fmt, local_cluster, operator_for, summary

from clusters.model import Cluster
from ctlruntime.timeparse import parse_time
from fluxmodel import signatures as sig
from fluxmodel.conditions import condition, is_ready
from fluxmodel.kinds import FLUX_NAMESPACE, KUSTOMIZATION
from foundation.waiting import poll, wait_until
from injectors.apps import deployment, dump, kustomization_file
from injectors.testapp import App
from scenarios.recoveries import parse

_DECISION = re.compile(
    r"^(?P<ts>\S+) info decision object=Kustomization/flux-system/(?P<name>\S+) pattern=(?P<pattern>\S+) .* "
    r"result=(?P<result>\S+)"
)


def wall_seconds(stamp: str) -> float:
    """An RFC 3339 time (Kubernetes' or the operator log's) as seconds since the epoch."""
    seconds = parse_time(stamp)
    if seconds is None:
        raise ValueError(f"not an RFC 3339 time: {stamp!r}")
    return seconds


def files(app: App, count: int, selector_extra: dict[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for i in range(count):
        labels = {"app": f"d{i}", **selector_extra}
        out[f"{app.path}/k{i}/deployment.yaml"] = dump(deployment(f"d{i}", app.ns, labels, replicas=1))
        out[f"{app.path}/k{i}/kustomization.yaml"] = dump(kustomization_file(["deployment.yaml"]))
    return out


def knobs(mode: str) -> dict[str, Any]:
    """The Kustomization spec fields the mode's own decoration sets (spec.force under flux-native)."""
    return dict(parse(mode, "--modes").decorate({"kind": KUSTOMIZATION.kind, "spec": {}})["spec"])


def statuses(app: App, names: set[str]) -> dict[str, dict[str, Any]]:
    return {
        k["metadata"]["name"]: k
        for k in app.kube.list(KUSTOMIZATION.api_version, KUSTOMIZATION.kind, FLUX_NAMESPACE)
        if k["metadata"]["name"] in names
    }


def run(
    cluster: Cluster, mode: str, spec: dict[str, Any], count: int, cap: float, workers: int, wait: bool
) -> dict[str, Any]:
    app = App(cluster, f"bs-{mode[:8]}-{secrets.token_hex(3)}")
    try:
        first = app.setup(files(app, count, {}), kustomization=False)
        names = {f"{app.name}-k{i}" for i in range(count)}
        for i in range(count):
            app.kustomization(f"{app.name}-k{i}", f"{app.path}/k{i}", wait=wait, timeout="60s", **spec)

        def all_ready() -> bool:
            kustomizations = statuses(app, names).values()
            return sum(is_ready(k) and k["status"].get("lastAppliedRevision") == first for k in kustomizations) == count

        wait_until(all_ready, 600, f"{count} Kustomizations Ready", interval=1)
        print(f"  [{mode}] {count} Kustomizations Ready", file=sys.stderr, flush=True)
        with operator_for(mode, cluster, "--workers", str(workers)) as operator:
            time.sleep(2)  # the operator has listed everything
            started = time.time()
            t0 = time.monotonic()
            head = app.commit("selector change everywhere", files(app, count, {"rev": "2"}))
            visible: dict[str, float] = {}
            failed_at: dict[str, float] = {}
            recovered: dict[str, float] = {}

            def observe() -> int:
                now = time.monotonic() - t0
                for name, k in statuses(app, names).items():
                    if name not in visible and sig.SELECTOR_IMMUTABLE.matches(k):
                        visible[name] = now
                        refusal = condition(k)
                        if refusal is not None and refusal.last_transition_time:
                            failed_at[name] = wall_seconds(refusal.last_transition_time) - started
                    if name not in recovered and is_ready(k) and k["status"].get("lastAppliedRevision") == head:
                        recovered[name] = now
                return len(recovered)

            poll(observe, cap - (time.monotonic() - t0), interval=0.5, done=lambda n: n >= count)
            acted: dict[str, float] = {}
            handled: dict[str, float] = {}
            if operator is not None:
                for line in operator.log().splitlines():
                    m = _DECISION.match(line)
                    if not m or m["name"] not in names:
                        continue
                    at = wall_seconds(m["ts"]) - started
                    if m["result"] == "started":
                        acted.setdefault(m["name"], at)
                    elif m["result"] == "done" or (m["result"] == "waiting" and "Flux's new" in line):
                        handled.setdefault(m["name"], at)  # all the operator can do is done: Flux sets the pace
        latency = [acted[n] - failed_at[n] for n in acted if n in failed_at]
        return {
            "visible": max(visible.values()) if len(visible) == count else None,
            "seen": len(visible),
            "acted": max(acted.values()) if len(acted) == count else None,
            "handled": max(handled.values()) if len(handled) == count else None,
            "recovered": max(recovered.values()) if len(recovered) == count else None,
            "recovered_count": len(recovered),
            "latency": summary(latency),
        }
    finally:
        app.cleanup()


def row(mode: str, r: dict[str, Any], cap: float, count: int) -> str:
    visible, acted, handled = r["visible"], r["acted"], r["handled"]
    if mode != "operator":  # Flux's own knobs show no failure and have no separate action step
        visible, acted, handled = (visible if r["seen"] else "-"), "-", "-"
    return (
        f"{mode:12} {fmt(visible, cap):>12} {fmt(acted, cap):>10} {fmt(handled, cap):>12} "
        f"{fmt(r['recovered'], cap):>14}   {r['latency']}  (recovered {r['recovered_count']}/{count})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reuse-cluster", default=None)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--modes", default="operator,flux-native")
    parser.add_argument("--cap", type=float, default=300.0)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--no-wait", action="store_true", help="Kustomizations without health checks (spec.wait false)")
    args = parser.parse_args()
    modes = {mode: knobs(mode) for mode in args.modes.split(",")}  # a bad mode fails before a cluster starts
    results = {}
    with local_cluster(args.reuse_cluster) as cluster:
        for mode, spec in modes.items():
            results[mode] = run(cluster, mode, spec, args.count, args.cap, args.workers, not args.no_wait)
            print(f"  [{mode}] {results[mode]}", file=sys.stderr, flush=True)
    cap = args.cap
    print(
        f"\n{args.count} Kustomizations stuck at once (selector change in one commit; wait={not args.no_wait}; "
        f"operator --workers {args.workers}); seconds after the commit, cap {cap:.0f}s\n"
    )
    head = f"{'mode':12} {'all visible':>12} {'all acted':>10} {'all handled':>12} {'all recovered':>14}"
    print(f"{head}   refused->acted per object")
    for mode, measured in results.items():
        print(row(mode, measured, cap, args.count))
    return 0


if __name__ == "__main__":
    sys.exit(main())
