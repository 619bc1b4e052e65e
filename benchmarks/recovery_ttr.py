"""Time to recover per fault under `operator` vs `flux-native` vs `none`, side by side, in one run.

For each mode, each fault runs on an app of its own (namespace, Git path, GitRepository, Flux objects):
set up and wait Ready, inject by a Git commit (and a reconcile request on its source, as a user would; the cycle
by creating the Kustomization that applies it from Git, so it deadlocks from the start), then
record, in seconds after the injection: visible (Flux shows the fault), detected and acted (the operator's
decision log), fixed (for faults whose cause a human later removes: the chain's root fixed in Git, the cycle
broken in Git, the missing namespace created) and recovered (workload and Flux objects Ready). TTR is
injection -> recovered, or fixed -> recovered where a fix exists (that is what Flux's requeue delays).
">cap" means not recovered within --cap seconds.

Usage: .venv/bin/python benchmarks/recovery_ttr.py [--reuse-cluster NAME] [--cap 150] [--modes operator,none]
       [--faults selector,chain-3]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from recovery_common import MODES, Timeline, decorate, fmt, local_cluster, operator_for, operator_marks

from clusters.model import Cluster
from fluxmodel import signatures as sig
from fluxmodel.kinds import FLUX_NAMESPACE, HELM_RELEASE, KUSTOMIZATION, ObjectRef
from foundation.waiting import poll
from injectors.apps import deployment, dump, kustomization_file
from injectors.testapp import App, chart_release, publish

Ctx = dict[str, Any]


@dataclass
class Fault:
    name: str
    setup: Callable[[App, str], Ctx]
    inject: Callable[[App, Ctx], None]
    visible: Callable[[App, Ctx], bool]
    recovered: Callable[[App, Ctx], bool]
    fix: Callable[[App, Ctx], None] | None = None
    # Git now holds a bad desired state: the old revision is Ready until Flux shows the fault, so recovery only
    # counts after that (as the harness judges it).
    bad_in_git: bool = False


def ks_ref(name: str) -> ObjectRef:
    return ObjectRef(KUSTOMIZATION.kind, FLUX_NAMESPACE, name)


def force(mode: str) -> dict[str, Any]:
    return dict(decorate(mode, {"kind": "Kustomization", "spec": {}})["spec"])


def web_setup(app: App, mode: str, extra: list[str] | None = None) -> Ctx:
    files = {f"{app.path}/deployment.yaml": dump(deployment("web", app.ns, {"app": "web"}))}
    files[f"{app.path}/kustomization.yaml"] = dump(kustomization_file(["deployment.yaml", *(extra or [])]))
    revision = app.setup(files, **force(mode))
    ref = ks_ref(app.name)
    poll(lambda: app.ready(ref, revision) and app.available("web"), 120)
    return {"ref": ref, "objects": {str(ref)}}


def commit_head(app: App, ctx: Ctx, message: str, files: dict[str, str]) -> None:
    ctx["head"] = app.commit(message, files)


def selector_inject(app: App, ctx: Ctx) -> None:
    commit_head(
        app, ctx, "selector", {f"{app.path}/deployment.yaml": dump(deployment("web", app.ns, {"app": "web", "v": "2"}))}
    )


def labels_inject(app: App, ctx: Ctx) -> None:
    labelled = kustomization_file(["deployment.yaml"], labels=[{"pairs": {"team": "t"}, "includeSelectors": True}])
    commit_head(app, ctx, "labels", {f"{app.path}/kustomization.yaml": dump(labelled)})


def rollout_inject(app: App, ctx: Ctx) -> None:
    broken = deployment("web", app.ns, {"app": "web"}, behavior="never-ready", image="registry.local/app:2")
    commit_head(app, ctx, "rollout", {f"{app.path}/deployment.yaml": dump(broken)})


def at_head(app: App, ctx: Ctx) -> bool:
    return app.ready(ctx["ref"], ctx.get("head")) and app.available("web")


def any_ready(app: App, ctx: Ctx) -> bool:
    return app.ready(ctx["ref"]) and app.available("web")


def helm_files(app: App, mode: str, version: str) -> dict[str, str]:
    release = decorate(mode, chart_release("web", app.ns, version))
    return {
        f"{app.path}/release.yaml": dump(release),
        f"{app.path}/kustomization.yaml": dump(kustomization_file(["release.yaml"])),
    }


def helm_setup(app: App, mode: str) -> Ctx:
    good = publish(app.cluster)
    app.setup(helm_files(app, mode, good), wait=False, **force(mode))
    ref = ObjectRef(HELM_RELEASE.kind, app.ns, "web")
    app.flux_objects.append(ref)
    poll(lambda: app.ready(ref), 120)
    return {"ref": ref, "mode": mode, "objects": {str(ref), str(ks_ref(app.name))}}


def helm_inject(values: dict[str, Any]) -> Callable[[App, Ctx], None]:
    def inject(app: App, ctx: Ctx) -> None:
        version = publish(app.cluster, **values)
        app.commit(f"chart {version}", helm_files(app, ctx["mode"], version))

    return inject


def helm_failed(app: App, ctx: Ctx) -> bool:
    return any(
        app.shows(ctx["ref"], s)
        for s in (sig.HELM_RETRIES_EXHAUSTED, sig.HELM_UPGRADE_FAILED, sig.HELM_UPGRADE_TIMEOUT)
    )


def install_setup(app: App, mode: str) -> Ctx:
    version = publish(app.cluster)
    app.kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": app.ns}})
    ref = ObjectRef(HELM_RELEASE.kind, app.ns, "web")
    app.flux_objects.append(ref)
    return {
        "ref": ref,
        "release": decorate(mode, chart_release("web", app.ns, version, targetNamespace=f"{app.ns}-t")),
        "objects": {str(ref)},
    }


def install_inject(app: App, ctx: Ctx) -> None:
    app.kube.apply(ctx["release"])


def install_fix(app: App, ctx: Ctx) -> None:
    app.kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"{app.ns}-t"}})


def level(app: App, name: str, files: dict[str, str] | None = None) -> dict[str, str]:
    return {
        f"{app.path}/{name}/deployment.yaml": dump(deployment(name, app.ns, {"app": name}, replicas=1)),
        f"{app.path}/{name}/kustomization.yaml": dump(kustomization_file(["deployment.yaml"])),
    }


def chain_setup(app: App, mode: str) -> Ctx:
    revision = app.setup({**level(app, "root"), **level(app, "mid"), **level(app, "leaf")}, kustomization=False)
    refs = [app.kustomization(f"{app.name}-root", f"{app.path}/root", **force(mode))]
    refs.append(
        app.kustomization(f"{app.name}-mid", f"{app.path}/mid", dependsOn=[{"name": refs[0].name}], **force(mode))
    )
    refs.append(
        app.kustomization(f"{app.name}-leaf", f"{app.path}/leaf", dependsOn=[{"name": refs[1].name}], **force(mode))
    )
    poll(lambda: all(app.ready(r, revision) for r in refs), 150)
    return {"refs": refs, "objects": {str(r) for r in refs}}


def chain_inject(app: App, ctx: Ctx) -> None:
    app.commit(
        "break root",
        {f"{app.path}/root/kustomization.yaml": dump(kustomization_file(["deployment.yaml", "missing.yaml"]))},
    )


def chain_visible(app: App, ctx: Ctx) -> bool:
    return all(app.shows(r, sig.DEPENDENCY_NOT_READY) for r in ctx["refs"][1:])


def chain_fix(app: App, ctx: Ctx) -> None:
    ctx["head"] = app.commit(
        "fix root", {f"{app.path}/root/kustomization.yaml": dump(kustomization_file(["deployment.yaml"]))}
    )


def all_at_head(app: App, ctx: Ctx) -> bool:
    return all(app.ready(r, ctx.get("head")) for r in ctx["refs"])


def cycle_files(app: App, mode: str, a_deps: str | None, b_deps: str | None) -> dict[str, str]:
    def flux(name: str, dep: str | None) -> dict[str, Any]:
        deps = (f"{app.name}-{dep}",) if dep else ()
        return app.manifest(f"{app.name}-{name}", f"{app.path}/{name}", depends_on=deps, wait=False, **force(mode))

    return {
        f"{app.path}/flux/a.yaml": dump(flux("a", a_deps)),
        f"{app.path}/flux/b.yaml": dump(flux("b", b_deps)),
        f"{app.path}/flux/kustomization.yaml": dump(kustomization_file(["a.yaml", "b.yaml"])),
    }


def cycle_setup(app: App, mode: str) -> Ctx:
    """Git holds A and B depending on each other; nothing in the cluster yet."""
    app.setup({**level(app, "a"), **level(app, "b"), **cycle_files(app, mode, "b", "a")}, kustomization=False)
    refs = [ks_ref(app.name), ks_ref(f"{app.name}-a"), ks_ref(f"{app.name}-b")]
    app.flux_objects.extend(refs[1:])
    return {"refs": refs, "mode": mode, "objects": {str(r) for r in refs}}


def cycle_inject(app: App, ctx: Ctx) -> None:
    """The parent Kustomization applies A and B: they wait for each other from the start (a real deadlock)."""
    app.kustomization(app.name, f"{app.path}/flux", wait=False, **force(ctx["mode"]))


def cycle_visible(app: App, ctx: Ctx) -> bool:
    """Both members wait for each other now (the parent has applied the cycle)."""
    a, b = (app.get(r) for r in ctx["refs"][1:])
    if a is None or b is None or not (sig.DEPENDENCY_NOT_READY.matches(a) and sig.DEPENDENCY_NOT_READY.matches(b)):
        return False
    return bool(a["spec"].get("dependsOn")) and bool(b["spec"].get("dependsOn"))


def cycle_fix(app: App, ctx: Ctx) -> None:
    ctx["head"] = app.commit("break the cycle", cycle_files(app, ctx["mode"], None, "a"))


FAULTS = [
    Fault("selector", web_setup, selector_inject, lambda a, c: a.shows(c["ref"], sig.SELECTOR_IMMUTABLE), at_head),
    Fault("common-labels", web_setup, labels_inject, lambda a, c: a.shows(c["ref"], sig.SELECTOR_IMMUTABLE), at_head),
    Fault(
        "unhealthy-rollout",
        web_setup,
        rollout_inject,
        lambda a, c: a.shows(c["ref"], sig.HEALTH_CHECK_FAILED),
        any_ready,
        bad_in_git=True,
    ),
    Fault(
        "helm-rejected-chart",
        helm_setup,
        helm_inject({"replicaCount": -1}),
        helm_failed,
        lambda a, c: a.ready(c["ref"]) and a.available("web"),
        bad_in_git=True,
    ),
    Fault(
        "helm-never-ready",
        helm_setup,
        helm_inject({"podBehavior": "never-ready"}),
        helm_failed,
        lambda a, c: a.ready(c["ref"]) and a.available("web"),
        bad_in_git=True,
    ),
    Fault(
        "helm-retries-exhausted",
        install_setup,
        install_inject,
        lambda a, c: a.shows(c["ref"], sig.HELM_RETRIES_EXHAUSTED) or a.shows(c["ref"], sig.HELM_INSTALL_FAILED),
        lambda a, c: a.ready(c["ref"]),
        install_fix,
    ),
    Fault("chain-3-deep", chain_setup, chain_inject, chain_visible, all_at_head, chain_fix),
    Fault("cycle-fixed-in-git", cycle_setup, cycle_inject, cycle_visible, all_at_head, cycle_fix),
]


def run_one(cluster: Cluster, fault: Fault, mode: str, cap: float, log: Callable[[], str] | None) -> Timeline:
    import secrets

    app = App(cluster, f"bt-{fault.name[:20]}-{secrets.token_hex(3)}")
    try:
        ctx = fault.setup(app, mode)
        started_epoch = time.time()
        timeline = Timeline(fault.name, mode)
        fault.inject(app, ctx)
        # With a bad state in Git, or a fix to make, the fault must show first; otherwise Flux's own knobs may
        # recover it before it ever shows (force re-creates within the failing reconcile).
        strict = fault.bad_in_git or fault.fix is not None
        shown = poll(lambda: fault.visible(app, ctx) or (not strict and fault.recovered(app, ctx)), cap)
        if shown and fault.visible(app, ctx):
            timeline.mark("visible")
        if fault.fix is not None:
            fault.fix(app, ctx)
            timeline.mark("fixed")
        if (shown or not strict) and poll(lambda: fault.recovered(app, ctx), cap):
            timeline.mark("recovered")
        if log is not None:
            for name, epoch in operator_marks(log(), ctx["objects"], started_epoch).items():
                timeline.marks[name] = epoch - started_epoch
        return timeline
    finally:
        app.cleanup()
        if fault.name == "helm-retries-exhausted":
            app.kube.delete("v1", "Namespace", f"{app.ns}-t")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reuse-cluster", default=None)
    parser.add_argument("--cap", type=float, default=150.0)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--faults", default=",".join(f.name for f in FAULTS))
    args = parser.parse_args()
    modes = args.modes.split(",")
    faults = [f for f in FAULTS if f.name in args.faults.split(",")]
    results: dict[tuple[str, str], Timeline] = {}
    with local_cluster(args.reuse_cluster) as cluster:
        for mode in modes:
            with operator_for(mode, cluster) as operator:
                for fault in faults:
                    timeline = run_one(cluster, fault, mode, args.cap, operator.log if operator else None)
                    results[(fault.name, mode)] = timeline
                    print(f"  {fault.name:24} {mode:12} {timeline.marks}", file=sys.stderr, flush=True)
    cap = args.cap
    print(f"\nTime to recover (seconds after the Git commit that injects the fault; cap {cap:.0f}s)\n")
    print(f"{'fault':24} " + " ".join(f"{m:>12}" for m in modes) + "   operator: visible / detected / acted")
    for fault in faults:
        cells = []
        for mode in modes:
            t = results[(fault.name, mode)]
            recovered, fixed = t.get("recovered"), t.get("fixed")
            if recovered is not None and fixed is not None:
                recovered -= fixed
            cells.append(f"{fmt(recovered, cap):>12}")
        op = results.get((fault.name, "operator"))
        detail = ""
        if op is not None:
            detail = " / ".join(fmt(op.get(k), cap) for k in ("visible", "detected", "acted"))
        suffix = " (TTR after the fix)" if any(results[(fault.name, m)].get("fixed") is not None for m in modes) else ""
        print(f"{fault.name:24} " + " ".join(cells) + f"   {detail}{suffix}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
