"""The operator as a process: one active instance (Lease), restarts mid-action, pattern reloads, dry-run."""

from __future__ import annotations

import json
import secrets
import threading
from pathlib import Path

import yaml
from recovery_support import start_operator

from clusters.model import Cluster
from fluxmodel import signatures as sig
from fluxmodel.kinds import FLUX_NAMESPACE, KUSTOMIZATION, ObjectRef
from foundation.waiting import wait_until
from injectors.apps import deployment, dump, kustomization_file
from injectors.testapp import App
from recovery.lifecycle import COPY_LABEL
from recovery.state import configmap_name


def selector_app(app: App) -> tuple[ObjectRef, str]:
    files = {
        f"{app.path}/deployment.yaml": dump(deployment("web", app.ns, {"app": "web"})),
        f"{app.path}/kustomization.yaml": dump(kustomization_file(["deployment.yaml"])),
    }
    first = app.setup(files)
    ref = ObjectRef(KUSTOMIZATION.kind, FLUX_NAMESPACE, app.name)
    wait_until(lambda: app.ready(ref, first) and app.available("web"), 90, "the app to be Ready")
    return ref, first


def break_selector(app: App, value: str = "2") -> str:
    return app.commit(
        "selector change", {f"{app.path}/deployment.yaml": dump(deployment("web", app.ns, {"app": "web", "v": value}))}
    )


def test_only_the_lease_holder_acts_and_a_standby_takes_over(cluster: Cluster, tmp_path: Path) -> None:
    state_ns = f"rc-state-{secrets.token_hex(3)}"
    first = start_operator(cluster, tmp_path, "--lease-duration", "4", state_namespace=state_ns)
    second = start_operator(cluster, tmp_path, "--lease-duration", "4", state_namespace=state_ns)
    try:
        wait_until(
            lambda: {first.sample("flux_recovery_leader"), second.sample("flux_recovery_leader")} == {0.0, 1.0},
            20,
            "one leader and one standby",
        )
        leader, standby = (first, second) if first.sample("flux_recovery_leader") == 1 else (second, first)
        lease = cluster.kube.get("coordination.k8s.io/v1", "Lease", "gitops-resilience-operator", state_ns)
        assert lease is not None and str(leader.pid) in lease["spec"]["holderIdentity"]
        leader.kill()  # no clean stop: the Lease must expire before the standby may act
        wait_until(lambda: standby.sample("flux_recovery_leader") == 1, 30, "the standby to take over")
        lease = cluster.kube.get("coordination.k8s.io/v1", "Lease", "gitops-resilience-operator", state_ns)
        assert lease is not None and str(standby.pid) in lease["spec"]["holderIdentity"]
        assert lease["spec"]["leaseTransitions"] >= 1
        assert standby.stop() == 0
        lease = cluster.kube.get("coordination.k8s.io/v1", "Lease", "gitops-resilience-operator", state_ns)
        assert lease is not None and not lease["spec"].get("holderIdentity")  # released on a clean stop
    finally:
        first.stop()
        second.stop()
        cluster.kube.delete("v1", "Namespace", state_ns)


def test_a_restart_in_the_middle_of_an_action_converges_without_acting_twice(
    cluster: Cluster, app: App, tmp_path: Path
) -> None:
    state_ns = f"rc-state-{secrets.token_hex(3)}"
    operator = start_operator(cluster, tmp_path, "--lease-duration", "3", state_namespace=state_ns)
    copies: list[str] = []
    stop = threading.Event()

    def watch_copies() -> None:
        for kind, obj in app.kube.watch("apps/v1", "Deployment", app.ns, timeout=120):
            if kind == "ADDED" and COPY_LABEL in (obj["metadata"].get("labels") or {}):
                copies.append(obj["metadata"]["name"])
                operator.kill()  # right after the first step: the copy exists, the original not yet deleted
            if stop.is_set():
                return

    try:
        ref, _ = selector_app(app)
        watcher = threading.Thread(target=watch_copies, daemon=True)
        watcher.start()
        head = break_selector(app)
        wait_until(lambda: copies, 60, "the blue-green copy", detail=operator.log)
        cm = app.kube.get("v1", "ConfigMap", configmap_name(ref), state_ns)
        assert cm is not None and json.loads(cm["data"]["in-flight"])["attempt"] == 1  # it died mid-action

        restarted = start_operator(cluster, tmp_path, "--lease-duration", "3", state_namespace=state_ns)
        try:
            wait_until(
                lambda: app.ready(ref, head) and app.available("web"),
                120,
                "recovery after the restart",
                detail=restarted.log,
            )
            cm = app.kube.get("v1", "ConfigMap", configmap_name(ref), state_ns)
            assert cm is not None and not cm["data"]["in-flight"]
            assert len(copies) == 1, f"more than one copy was created: {copies}"
            assert [d["metadata"]["name"] for d in app.kube.list("apps/v1", "Deployment", app.ns)] == ["web"]
            started = [e for e in app.events(ref, "RecoveryAction") if "attempt" in e.get("message", "")]
            assert len(started) == 1, "the restarted operator started a second attempt instead of resuming"
        finally:
            assert restarted.stop() == 0
    finally:
        stop.set()
        operator.stop()
        app.kube.delete("v1", "Namespace", state_ns)


def test_patterns_reload_from_the_configmap_and_a_bad_one_is_refused(
    cluster: Cluster, app: App, tmp_path: Path
) -> None:
    state_ns = f"rc-state-{secrets.token_hex(3)}"
    operator = start_operator(cluster, tmp_path, state_namespace=state_ns)

    def configmap(text: str) -> dict[str, object]:
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "flux-recovery-config", "namespace": state_ns},
            "data": {"recovery-patterns.yaml": text},
        }

    try:
        assert operator.sample("flux_recovery_patterns") == 7
        app.kube.apply(
            configmap("patterns:\n- {name: broken-one, error_pattern: '(a+)+', recovery_action: escalate}\n")
        )
        wait_until(
            lambda: operator.sample("flux_recovery_config_valid") == 0,
            20,
            "the bad patterns refused",
            detail=operator.log,
        )
        assert "broken-one" in operator.log() and "nested repetition" in operator.log()
        assert operator.sample("flux_recovery_patterns") == 7  # the old ones stay
        custom = "patterns:\n- {name: only-escalate, error_pattern: 'field is immutable', recovery_action: escalate}\n"
        app.kube.apply(configmap(custom))
        wait_until(lambda: operator.sample("flux_recovery_patterns") == 1, 20, "the new patterns", detail=operator.log)
        assert operator.sample("flux_recovery_config_valid") == 1

        ref, _ = selector_app(app)
        break_selector(app)
        wait_until(
            lambda: app.events(ref, "RecoveryEscalated"), 60, "the custom pattern's escalation", detail=operator.log
        )
        assert "only-escalate" in app.events(ref, "RecoveryEscalated")[0]["message"]
        assert not app.events(ref, "RecoveryAction")
        obj = app.ks()
        assert (
            obj is not None and "only-escalate" in obj["metadata"]["annotations"]["gitops.flux.io/recovery-escalated"]
        )
    finally:
        assert operator.stop() == 0
        app.kube.delete("v1", "Namespace", state_ns)


def test_dry_run_decides_and_logs_but_changes_nothing(cluster: Cluster, app: App, tmp_path: Path) -> None:
    operator = start_operator(cluster, tmp_path, "--dry-run")
    try:
        ref, _ = selector_app(app)
        old_uid = app.kube.get("apps/v1", "Deployment", "web", app.ns)["metadata"]["uid"]  # type: ignore[index]
        break_selector(app)
        wait_until(lambda: app.shows(ref, sig.SELECTOR_IMMUTABLE), 90, "the selector fault")
        wait_until(lambda: "result=dry-run" in operator.log(), 30, "the dry-run decision", detail=operator.log)
        line = next(x for x in operator.log().splitlines() if "result=dry-run" in x)
        assert f"object=Kustomization/flux-system/{app.name}" in line and "action=recreate_deployment" in line
        assert "pattern=selector-immutable" in line
        assert app.kube.get("apps/v1", "Deployment", "web", app.ns)["metadata"]["uid"] == old_uid  # type: ignore[index]
        assert not [e for e in app.events(ref) if e.get("reportingComponent") == "gitops-resilience-operator"]
        assert (
            app.kube.get("coordination.k8s.io/v1", "Lease", "gitops-resilience-operator", operator.state_namespace)
            is None
        )
        assert app.shows(ref, sig.SELECTOR_IMMUTABLE) and not app.ready(ref)
    finally:
        assert operator.stop() == 0
        app.kube.delete("v1", "Namespace", operator.state_namespace)


def test_json_logs_have_one_line_per_decision(cluster: Cluster, app: App, tmp_path: Path) -> None:
    operator = start_operator(cluster, tmp_path, "--log-format", "json")
    try:
        ref, _ = selector_app(app)
        head = break_selector(app)
        wait_until(lambda: app.ready(ref, head), 120, "recovery", detail=operator.log)
        decisions = [json.loads(x) for x in operator.log().splitlines() if x.startswith("{")]
        mine = [d for d in decisions if d.get("object") == str(ref) and d.get("msg") == "decision"]
        assert {"started", "done"} <= {d["result"] for d in mine}
        assert all({"object", "pattern", "action", "result"} <= set(d) for d in mine)
        assert yaml.safe_dump(mine)
    finally:
        assert operator.stop() == 0
        app.kube.delete("v1", "Namespace", operator.state_namespace)
