"""flux-tuned: Flux's knobs in one place, the shard's processes and selectors, the isolation proof the judge reads
(which controller reconciled a run, which stopped), and the refusal on providers that cannot shard."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from assertions.isolation import ForeignActivity, owned_by_run, shard_findings
from assertions.schema import Reconcilers, entry_problem
from assertions.slo import Budget, Limit
from assertions.verdict import Evidence, Verdict, judge
from clusters.local.components import FLUX_CONTROLLERS, component_specs
from clusters.local.layout import ClusterLayout
from clusters.local.ports import PORT_NAMES
from clusters.local.supervisor import start_mark, started_at
from clusters.providers import shard_refusal
from clusters.reconcilers import ControllerLogs
from fluxmodel import tuned
from fluxmodel.annotations import RECOVERY_MODE_LABEL, REQUESTED_AT
from scenarios.recoveries import FluxTuned, parse
from testsupport.fakekube import FakeKube

PORTS = {name: 20000 + i for i, name in enumerate(PORT_NAMES)}
BUDGET = Budget(ttr=Limit(max=60))


# -- the knobs and the shard's processes -----------------------------------------------------------------


def test_the_shard_gets_each_controller_its_own_gates_and_the_selector_pair() -> None:
    kc = tuned.controller_flags("kustomize-controller")
    assert "--feature-gates=CancelHealthCheckOnNewRevision=true,DirectSourceFetch=true" in kc
    hc = tuned.controller_flags("helm-controller")
    assert (
        "--feature-gates=CancelHealthCheckOnNewRevision=true,DefaultToRetryOnFailure=true,DirectSourceFetch=true" in hc
    )
    for flags in (kc, hc):
        assert "--requeue-dependency=5s" in flags
        assert f"--watch-label-selector={RECOVERY_MODE_LABEL}=flux-tuned" in flags
    # The default controllers' half of the pair: the set form (the controllers refuse `!=`).
    assert tuned.default_selector() == f"{RECOVERY_MODE_LABEL} notin (flux-tuned)"
    with pytest.raises(KeyError):
        tuned.controller_flags("source-controller")  # no gate of its own: shared, never sharded


def test_a_local_cluster_runs_the_default_controllers_and_the_shard(tmp_path: Path) -> None:
    binaries = {name: Path(f"/bin/{name}") for name in ("etcd", "kube-apiserver", "kube-controller-manager")}
    binaries |= {name: Path(f"/bin/{name}") for name in ("kube-scheduler", "kwok", "helm", *tuned.DEFAULT_CONTROLLERS)}
    specs = component_specs(ClusterLayout(tmp_path / "c"), PORTS, binaries)
    assert set(FLUX_CONTROLLERS) <= set(specs)
    for component in tuned.SHARDED:
        default, shard = specs[component].argv, specs[tuned.shard(component)].argv
        assert default[0] == shard[0] == f"/bin/{component}"  # one binary, two processes
        assert f"--watch-label-selector={tuned.default_selector()}" in default
        assert not any(arg.startswith("--feature-gates") for arg in default)
        assert tuned.controller_flags(component) == shard[-3:]
        assert f"--metrics-addr=127.0.0.1:{PORTS[tuned.shard(component) + '-metrics']}" in shard
    assert "--watch-label-selector" not in " ".join(specs["source-controller"].argv)
    # A cluster started before the shard existed allocated no port for it: no shard, and no KeyError.
    old = {k: v for k, v in PORTS.items() if "tuned" not in k}
    assert not any(tuned.is_shard(name) for name in component_specs(ClusterLayout(tmp_path / "o"), old, binaries))


def test_decorate_puts_flux_recovery_knobs_on_the_runs_objects() -> None:
    mode = parse("flux-tuned")
    assert isinstance(mode, FluxTuned) and mode.shard == "flux-tuned"
    ks = mode.decorate({"kind": "Kustomization", "metadata": {"name": "a"}, "spec": {"timeout": "20s"}})
    assert ks["metadata"]["labels"][RECOVERY_MODE_LABEL] == "flux-tuned"
    assert ks["spec"] == {"timeout": "20s", "force": True, "retryInterval": "5s"}  # the fault's own timeout kept
    hr = mode.decorate({"kind": "HelmRelease", "metadata": {"name": "w"}, "spec": {"upgrade": {"timeout": "15s"}}})
    assert hr["spec"]["upgrade"]["timeout"] == "15s"
    assert hr["spec"]["upgrade"]["strategy"] == {"name": "RemediateOnFailure"}  # explicit: the gate would retry
    assert hr["spec"]["upgrade"]["remediation"] == {"retries": 1, "remediateLastFailure": True, "strategy": "rollback"}
    assert hr["spec"]["install"]["remediation"]["retries"] == 1 and hr["spec"]["waitStrategy"] == {"name": "poller"}
    repo = mode.decorate({"kind": "GitRepository", "metadata": {"name": "a"}, "spec": {"interval": "1m"}})
    assert repo["spec"]["interval"] == "10s"
    assert mode.controller("kustomize-controller") == "kustomize-controller-tuned"
    assert mode.controller("source-controller") == "source-controller"
    assert parse("none").controller("helm-controller") == "helm-controller"


def test_a_push_is_announced_to_the_runs_own_sources_only() -> None:
    kube = FakeKube()
    for name, mode in (("app-1", "flux-tuned"), ("app-1-b", "flux-tuned"), ("other", "flux-tuned"), ("app-1x", "none")):
        labels = {RECOVERY_MODE_LABEL: mode}
        kube.add(
            {
                "apiVersion": "source.toolkit.fluxcd.io/v1",
                "kind": "GitRepository",
                "metadata": {"name": name, "namespace": "flux-system", "labels": labels},
            }
        )

    class Ctx:
        app, flux_namespace = "app-1", "flux-system"

    Ctx.kube = kube  # type: ignore[attr-defined]
    FluxTuned("flux-tuned").after_push(Ctx())  # type: ignore[arg-type]
    annotated = {
        obj["metadata"]["name"]
        for obj in kube.list("source.toolkit.fluxcd.io/v1", "GitRepository", "flux-system")
        if REQUESTED_AT in (obj["metadata"].get("annotations") or {})
    }
    assert annotated == {"app-1", "app-1-b"}


# -- the refusal on providers without a shard --------------------------------------------------------------


def test_only_the_local_provider_can_run_flux_tuned() -> None:
    assert shard_refusal("flux-tuned", "local") is None
    assert shard_refusal("operator", "kind") is None
    for provider in ("kind", "existing"):
        refusal = shard_refusal("flux-tuned", provider)
        assert refusal is not None and "\n" not in refusal
        assert refusal.startswith("--recovery flux-tuned needs its own Flux shard") and "--provider local" in refusal


# -- the isolation proof -----------------------------------------------------------------------------------


def kc_line(name: str, rid: str, namespace: str = "flux-system", first: bool = False) -> str:
    entry: dict[str, Any] = {"level": "info", "msg": "Reconciliation finished", "controller": "kustomization"}
    if first:
        entry["controllerKind"] = "Kustomization"
    return json.dumps({**entry, "namespace": namespace, "name": name, "reconcileID": rid}) + "\n"


def test_controller_logs_count_a_runs_reconciles_and_restarts_since_the_mark(tmp_path: Path) -> None:
    logs = {name: tmp_path / f"{name}.log" for name in tuned.CONTROLLER_PROCESSES}
    before = kc_line("app-1", "old")  # before the run: not its evidence
    logs["kustomize-controller-tuned"].write_text(start_mark("kustomize-controller-tuned", 1000.0) + before)
    logs["kustomize-controller"].write_text("")
    mark = ControllerLogs.mark(logs, tuned.CONTROLLER_PROCESSES)
    with logs["kustomize-controller-tuned"].open("a") as fh:
        fh.write(kc_line("app-1", "r1", first=True) + kc_line("app-1", "r1") + kc_line("app-1", "r2"))
        fh.write(kc_line("someone-else", "r3") + "not json\n" + '{"reconcileID": [}\n')
        fh.write(start_mark("kustomize-controller-tuned", 2000.5) + kc_line("x", "r4", namespace="app-1"))
    with logs["kustomize-controller"].open("a") as fh:
        fh.write(kc_line("other-app", "d1"))
    owns = owned_by_run("app-1", "app-1")
    assert mark.reconciles(owns) == {"kustomize-controller-tuned": 3}
    assert mark.starts("kustomize-controller-tuned") == [2000.5]
    assert started_at(start_mark("x", 2000.5)) == 2000.5 and started_at("--- a note") is None


def test_a_sharded_run_needs_its_shard_seen_and_nothing_else() -> None:
    proven = Reconcilers(shard="flux-tuned", controllers={"kustomize-controller-tuned": 4})
    assert shard_findings(proven) == ([], [])
    unseen = Reconcilers(shard="flux-tuned", controllers={})
    (why,), _ = shard_findings(unseen)
    assert why.startswith("no reconcile by the flux-tuned shard's controllers")
    both = Reconcilers(shard="flux-tuned", controllers={"kustomize-controller-tuned": 4, "helm-controller": 1})
    assert shard_findings(both) == ([], ["1 reconcile(s) by helm-controller (the default controller)"])
    default = Reconcilers(shard=None, controllers={"kustomize-controller": 2, "helm-controller-tuned": 1})
    assert shard_findings(default) == ([], ["1 reconcile(s) by helm-controller-tuned (the flux-tuned shard)"])
    assert shard_findings(Reconcilers(controllers={})) == ([], [])  # a default run needs no positive proof
    assert shard_findings(None) == ([], [])


def proven_run(reconcilers: Reconcilers | None) -> Evidence:
    return Evidence(ttr=5.0, detect=1.0, proven=True, reconcilers=reconcilers)


def test_the_judge_never_passes_a_run_whose_shard_stopped_or_was_not_alone() -> None:
    assert judge(
        proven_run(Reconcilers(shard="flux-tuned", controllers={"kustomize-controller-tuned": 3})), BUDGET
    ).passed
    stopped = Reconcilers(
        shard="flux-tuned",
        controllers={"kustomize-controller-tuned": 3},
        stops=["kustomize-controller-tuned stopped mid-run (not running at the end of the run)"],
    )
    verdict = judge(proven_run(stopped), BUDGET)
    assert verdict.verdict is Verdict.INVALID and "kustomize-controller-tuned stopped mid-run" in verdict.reason
    mixed = Reconcilers(shard=None, controllers={"kustomize-controller-tuned": 1})
    verdict = judge(proven_run(mixed), BUDGET)
    assert verdict.verdict is Verdict.INVALID and verdict.reason.startswith("not measured under its own recovery")


def test_the_record_round_trips_through_a_strict_summary_entry() -> None:
    entry = {"fault": "f", "recovery": "none", "verdict": "pass", "ttr_seconds": 1.0, "phases": {}, "proven": True}
    entry["data_violations"] = []
    for record in (
        Reconcilers(controllers={"kustomize-controller": 2}),
        Reconcilers(shard="flux-tuned", controllers={}),
    ):
        assert entry_problem({**entry, "reconcilers": record.to_json()}, "t") is None
    assert "reconcilers.controllers" in str(entry_problem({**entry, "reconcilers": {"controllers": {"k": -1}}}, "t"))
    assert "reconcilers.extra" in str(entry_problem({**entry, "reconcilers": {"controllers": {}, "extra": 1}}, "t"))


def test_flux_tuned_knobs_under_another_mode_are_foreign_and_its_own_are_not() -> None:
    owns = owned_by_run("app-1", "app-1")
    ks = FluxTuned("flux-tuned").decorate({"kind": "Kustomization", "metadata": {"name": "app-1", "namespace": "f"}})
    under_none = ForeignActivity("none", owns)
    under_none.observe(ks)
    assert under_none.findings == [
        "spec.force with a 5s retryInterval on Kustomization f/app-1 (flux-tuned's knobs) while measuring 'none'"
    ]
    under_native = ForeignActivity("flux-native", owns)
    under_native.observe(ks)
    assert len(under_native.findings) == 1
    own = ForeignActivity("flux-tuned", owns)
    own.observe(ks)
    assert own.findings == []
    native = parse("flux-native").decorate({"kind": "Kustomization", "metadata": {"name": "app-1", "namespace": "f"}})
    own.observe(native)  # flux-native's force with Flux's default retry: not flux-tuned's
    assert own.findings == ["spec.force on Kustomization f/app-1 (flux-native's knob) while measuring 'flux-tuned'"]
