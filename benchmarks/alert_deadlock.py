"""The slow alerts on real faults no catalog fault lasts long enough for: a Kustomization chain and a HelmRelease
chain whose roots never become Ready, so the stuck alerts page after ~7 minutes and the deadlock alerts
(`stuck_seconds > 600`, `for: 5m`) after ~15, with the shipped rules as shipped.

    .venv/bin/python benchmarks/alert_deadlock.py --reuse-cluster NAME   # a local cluster started with --monitoring
    .venv/bin/python benchmarks/alert_deadlock.py                        # starts (and stops) one of its own

Roots: a Kustomization whose kustomization.yaml lists a missing file, a HelmRelease of a chart version that does
not exist; each has one dependent. A read-only monitor (the operator in --dry-run) exports their state, as for the
`none` recovery mode. Prints when each page reached the receiver, in seconds from the objects' creation.
Figures only: nothing here is asserted.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from clusters.local.provider import LocalProvider  # noqa: E402
from clusters.model import Cluster  # noqa: E402
from fluxmodel.annotations import RECOVERY_MODE_LABEL  # noqa: E402
from fluxmodel.kinds import FLUX_NAMESPACE, HELM_RELEASE, KUSTOMIZATION  # noqa: E402
from foundation.waiting import poll  # noqa: E402
from injectors.apps import dump, kustomization_file  # noqa: E402
from injectors.testapp import App, chart_release  # noqa: E402
from scenarios.recoveries import RecoveryMode  # noqa: E402

ALERTS = (
    "FluxKustomizationStuck",
    "FluxHelmReleaseStuck",
    "FluxDependencyDeadlock",
    "FluxHelmReleaseDependencyDeadlock",
)


def chains(cluster: Cluster, app: App, label: str) -> None:
    files = {
        f"{app.path}/root/kustomization.yaml": dump(kustomization_file(["missing.yaml"])),
        f"{app.path}/leaf/kustomization.yaml": dump(kustomization_file([])),
    }
    app.setup(files, kustomization=False)
    labels = {"metadata": {"labels": {RECOVERY_MODE_LABEL: label}}}
    for name, depends in (("root", ()), ("leaf", (f"{app.name}-root",))):
        app.kustomization(f"{app.name}-{name}", f"{app.path}/{name}", depends_on=depends)
        cluster.kube.merge_patch(
            KUSTOMIZATION.api_version, KUSTOMIZATION.kind, f"{app.name}-{name}", FLUX_NAMESPACE, labels
        )
    for name, version, needs in (("root", "9.9.9", []), ("leaf", "1.0.0", [{"name": "root"}])):
        release = chart_release(name, app.ns, version, **({"dependsOn": needs} if needs else {}))
        release["metadata"].setdefault("labels", {})[RECOVERY_MODE_LABEL] = label
        cluster.kube.apply(release)


def watch(cluster: Cluster, app: App, since: float, timeout: float) -> dict[str, float]:
    assert cluster.monitoring is not None
    monitoring = cluster.monitoring
    seen: dict[str, float] = {}

    def paged() -> int:
        for note in monitoring.notifications(since):
            for alert in note.alerts:
                labels = alert.get("labels") or {}
                name = str(labels.get("alertname"))
                ours = labels.get("namespace") == app.ns or str(labels.get("name", "")).startswith(app.name)
                if name in ALERTS and alert.get("status") == "firing" and ours and name not in seen:
                    seen[name] = note.received - since
                    print(
                        f"{name:36} paged {seen[name]:6.0f} s after creation "
                        f"({labels.get('namespace')}/{labels.get('name')})",
                        flush=True,
                    )
        return len(seen)

    poll(paged, timeout - (time.time() - since), interval=2, done=lambda count: count >= len(ALERTS))
    return seen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reuse-cluster", default=None, help="a running local cluster started with --monitoring")
    parser.add_argument("--timeout", type=float, default=1500.0, help="seconds to wait for every page")
    args = parser.parse_args()
    provider = LocalProvider()
    name = args.reuse_cluster or f"bench-dl-{secrets.token_hex(2)}"
    cluster = provider.attach(name) if args.reuse_cluster else provider.up(name, owner_pid=os.getpid(), monitoring=True)
    mode = RecoveryMode(f"dl-{secrets.token_hex(3)}")
    app = App(cluster, mode.label)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            mode.start(cluster, Path(tmp))
            try:
                chains(cluster, app, mode.label)
                created = time.time()
                seen = watch(cluster, app, created, args.timeout)
                missing = [a for a in ALERTS if a not in seen]
                print("never paged within the timeout: " + (", ".join(missing) or "none"))
            finally:
                for kind, ns, names in (
                    (KUSTOMIZATION, FLUX_NAMESPACE, (f"{app.name}-root", f"{app.name}-leaf")),
                    (HELM_RELEASE, app.ns, ("root", "leaf")),
                ):
                    for obj in names:
                        cluster.kube.delete(kind.api_version, kind.kind, obj, ns)
                app.cleanup()
                mode.stop()
    finally:
        if not args.reuse_cluster:
            provider.down(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
