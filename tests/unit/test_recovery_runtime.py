"""The operator's machinery: Lease, work queue, state ConfigMaps, health records, metrics, CLI input checks."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest
from fakeclock import FakeClock as Clock

from ctlruntime.flags import parse_addr
from ctlruntime.lease import LeaderElector
from ctlruntime.workqueue import WorkQueue
from fluxmodel.kinds import ObjectRef
from foundation.errors import UserError
from recovery.cli import register, run_explain, run_recover
from recovery.health import observe
from recovery.metrics import Metrics, View, sample
from recovery.state import ObjectState, StateStore, configmap_name
from testsupport.fakekube import FakeKube


def test_only_one_instance_holds_the_lease_until_it_stops_renewing() -> None:
    kube, clock = FakeKube(), Clock()
    a = LeaderElector(kube, "flux-system", "a", name="gitops-resilience-operator", duration=15, clock=clock)
    b = LeaderElector(kube, "flux-system", "b", name="gitops-resilience-operator", duration=15, clock=clock)
    assert a.try_acquire() and not b.try_acquire()
    clock.now += 10
    assert a.try_acquire() and not b.try_acquire()  # renewed
    clock.now += 16  # a stopped renewing
    assert b.try_acquire()
    assert not a.try_acquire()
    lease = kube.get("coordination.k8s.io/v1", "Lease", "gitops-resilience-operator", "flux-system")
    assert lease is not None and lease["spec"]["holderIdentity"] == "b" and lease["spec"]["leaseTransitions"] == 1


def test_a_released_lease_is_taken_over_at_once_and_races_have_one_winner() -> None:
    kube, clock = FakeKube(), Clock()
    a = LeaderElector(kube, "ns", "a", name="gitops-resilience-operator", clock=clock)
    b = LeaderElector(kube, "ns", "b", name="gitops-resilience-operator", clock=clock)
    assert a.try_acquire()
    a.release()
    assert b.try_acquire()
    # b read the Lease, then a newer version appeared before its update: the update must lose.
    lease = kube.get("coordination.k8s.io/v1", "Lease", "gitops-resilience-operator", "ns")
    assert lease is not None
    kube.merge_patch(
        "coordination.k8s.io/v1", "Lease", lease["metadata"]["name"], "ns", {"spec": {"holderIdentity": "c"}}
    )
    from kubeapi import Conflict

    with pytest.raises(Conflict):
        kube.merge_patch(
            "coordination.k8s.io/v1",
            "Lease",
            "gitops-resilience-operator",
            "ns",
            {"metadata": {"resourceVersion": lease["metadata"]["resourceVersion"]}, "spec": {"holderIdentity": "b"}},
        )


def test_work_queue_deduplicates_delays_and_never_runs_a_key_twice_at_once() -> None:
    clock = Clock(0.0)
    q = WorkQueue(clock)
    q.add("a")
    q.add("a")
    q.add("b", after=5)
    assert q.get(timeout=0) == "a"
    assert q.get(timeout=0) is None  # b is not due, a is not queued twice
    q.add("a")  # while a is processed: marked dirty, not handed out
    assert q.get(timeout=0) is None
    q.done("a")
    assert q.get(timeout=0) == "a"
    q.done("a")
    clock.now = 5
    assert q.get(timeout=0) == "b"
    q.add("c", after=10)
    q.add("c", after=1)  # an earlier add wins
    clock.now = 6.5
    assert q.get(timeout=0) == "c"


def test_state_round_trips_through_its_configmap_and_writes_only_changes() -> None:
    kube = FakeKube()
    ref = ObjectRef("Kustomization", "flux-system", "shop")
    store = StateStore(kube, "flux-system")
    state = store.get(ref)
    state.last_successful_revision = "main@sha1:" + "a" * 40
    state.attempts = {"recreate_deployment|Deployment/shop/web": 2}
    state.in_flight = {"action": "recreate_deployment", "progress": {"step": "copy-wait"}}
    state.retried = {"main@sha1:" + "b" * 40: 2}
    assert store.save(state) and not store.save(state)
    cm = kube.get("v1", "ConfigMap", "reconciliation-state.kustomization.flux-system.shop", "flux-system")
    assert cm is not None
    for key in (
        "last-successful-revision",
        "last-attempt-timestamp",
        "failure-count",
        "recovery-attempts",
        "health-status",
    ):
        assert key in cm["data"]
    fresh = StateStore(kube, "flux-system")
    assert fresh.load() == 1
    assert fresh.get(ref) == state
    patches = [w for w in kube.writes if w[0] == "patch"]
    state.failure_count = 3
    store.save(state)
    assert [w for w in kube.writes if w[0] == "patch"][len(patches) :][0][4] == {"data": {"failure-count": "3"}}


def test_dry_run_state_stays_in_memory() -> None:
    kube = FakeKube()
    store = StateStore(kube, "flux-system", persist=False)
    state = ObjectState(ObjectRef("Kustomization", "a", "b"), failure_count=1)
    store.save(state)
    assert store.get(state.ref).failure_count == 1 and kube.writes == []


def test_state_names_are_valid_configmap_names() -> None:
    assert configmap_name(ObjectRef("HelmRelease", "shop", "web")) == "reconciliation-state.helmrelease.shop.web"
    long = configmap_name(ObjectRef("Kustomization", "n" * 63, "x" * 250))
    assert len(long) <= 253 and long.startswith("reconciliation-state.kustomization.")


def flux(ready: str, reason: str, message: str = "m", ts: str = "2026-01-01T00:00:00Z") -> dict[str, Any]:
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": "a", "namespace": "flux-system", "generation": 1, "creationTimestamp": ts},
        "spec": {"dependsOn": [{"name": "root"}]},
        "status": {
            "observedGeneration": 1,
            "conditions": [
                {"type": "Ready", "status": ready, "reason": reason, "message": message, "lastTransitionTime": ts}
            ],
        },
    }


def test_health_tracks_time_stuck_and_failures_per_episode() -> None:
    h = observe(flux("False", "ReconciliationFailed", "boom"), None, 2_000_000_000.0)
    assert h.status == "failing" and h.since == 1767225600.0 and h.failure_count == 1
    assert h.depends_on == (ObjectRef("Kustomization", "flux-system", "root"),)
    h2 = observe(flux("False", "ReconciliationFailed", "boom again"), h, 2_000_000_010.0)
    assert h2.since == h.since and h2.failure_count == 2
    ok = observe(flux("True", "ReconciliationSucceeded"), h2, 2_000_000_020.0)
    assert ok.ready and ok.failure_count == 0 and ok.last_ready_at == 2_000_000_020.0 and ok.stuck_seconds(1e10) == 0


def test_time_stuck_grows_across_flux_retries() -> None:
    """Each retry sets Ready=Unknown (progressing) then False (failing) again: the object is still stuck.

    A stuck time restarting at every retry (30 s apart) kept the deadlock alerts' `stuck_seconds > 600` from ever
    holding; the chaos suite's alert coverage showed it on a real cluster."""
    ok = observe(flux("True", "ReconciliationSucceeded"), None, 2_000_000_000.0)
    failing = observe(flux("False", "ReconciliationFailed", "boom"), ok, 2_000_000_010.0)
    retrying = observe(flux("Unknown", "Progressing", "Reconciliation in progress"), failing, 2_000_000_040.0)
    again = observe(flux("False", "ReconciliationFailed", "boom"), retrying, 2_000_000_041.0)
    assert retrying.status == "progressing" and again.status == "failing" and again.since == 2_000_000_041.0
    assert again.stuck_seconds(2_000_000_100.0) == 90.0
    assert observe(flux("True", "ReconciliationSucceeded"), again, 2_000_000_200.0).stuck_seconds(2e9 + 300) == 0


def test_metrics_use_the_names_the_design_alert_uses() -> None:
    h = observe(flux("False", "ReconciliationFailed"), None, 2_000_000_000.0)
    m = Metrics(lambda: View(now=2_000_000_100.0, healths=[h], cycles={h.ref: "a -> b -> a"}, leader=True))
    labels = {"namespace": "flux-system", "name": "a"}
    assert sample(m, "flux_kustomization_ready", labels) == 0
    assert sample(m, "flux_kustomization_last_applied_revision_timestamp", labels) == 1767225600.0
    assert sample(m, "flux_kustomization_stuck_seconds", labels) == 2_000_000_100.0 - 1767225600.0
    assert sample(m, "flux_dependency_cycle", {"kind": "Kustomization", **labels, "cycle": "a -> b -> a"}) == 1
    m.actions.labels("Kustomization", "recreate_deployment", "started").inc()
    assert (
        sample(
            m,
            "flux_recovery_actions_total",
            {"kind": "Kustomization", "action": "recreate_deployment", "result": "started"},
        )
        == 1
    )
    assert sample(m, "flux_recovery_leader") == 1


@pytest.mark.parametrize("text", ["9090", "host:", "a:b", "1.2.3.4:99999"])
def test_bad_metrics_addresses_are_user_errors(text: str) -> None:
    with pytest.raises(UserError, match="--metrics-addr"):
        parse_addr(text)


def test_metrics_addresses() -> None:
    assert parse_addr("127.0.0.1:0") == ("127.0.0.1", 0)
    assert parse_addr(":8080") == ("0.0.0.0", 8080)
    assert parse_addr("[::1]:9") == ("::1", 9)
    assert parse_addr("off") is None


def parse(*argv: str) -> argparse.Namespace:
    """Arguments as `resilience` parses them (every flag's default included)."""
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    return parser.parse_args(list(argv))


def recover_args(tmp_path: Path, **overrides: Any) -> argparse.Namespace:
    args = parse("recover", "--kubeconfig", str(tmp_path / "missing"), "--metrics-addr", "127.0.0.1:0")
    return argparse.Namespace(**{**vars(args), **overrides})


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({}, "no such file"),
        ({"workers": 0}, "--workers"),
        ({"workers": "1.5"}, "--workers '1.5': expected a whole number"),
        ({"lease_duration": 1}, "--lease-duration"),
        ({"lease_duration": "inf"}, "--lease-duration 'inf'"),
        ({"settle": "nan"}, "--settle 'nan': expected seconds, more than 0"),
        ({"settle": "0"}, "--settle '0'"),
        ({"settle": "-5"}, "--settle '-5'"),
        ({"flux_grace": "-1"}, "--flux-grace '-1'"),
        ({"flux_grace": "inf"}, "--flux-grace 'inf'"),
        ({"startup_timeout": "inf"}, "--startup-timeout 'inf'"),
        ({"startup_timeout": "-1"}, "--startup-timeout '-1'"),
        ({"namespace": ["shop", "Shop_2"]}, "--namespace 'Shop_2': not a namespace name"),
        ({"state_namespace": "x" * 64}, "--state-namespace 'xxx"),
        ({"state_namespace": "-flux"}, "--state-namespace '-flux'"),
        ({"context": ""}, "--context '': empty"),
        ({"patterns": Path("/nonexistent.yaml")}, "--patterns"),
        ({"metrics_addr": "nope"}, "--metrics-addr"),
    ],
)
def test_recover_refuses_bad_input_with_one_line(tmp_path: Path, overrides: dict[str, Any], fragment: str) -> None:
    with pytest.raises(UserError, match=fragment) as err:
        run_recover(recover_args(tmp_path, **overrides))
    assert "\n" not in str(err.value)


def test_flags_are_checked_before_the_kubeconfig(tmp_path: Path) -> None:
    """The kubeconfig is missing, yet the flag is what is reported: nothing is read or contacted first."""
    with pytest.raises(UserError, match=r"^--settle 'nan'"):
        run_recover(recover_args(tmp_path, settle="nan"))


def test_a_patterns_file_is_checked_before_connecting(tmp_path: Path) -> None:
    patterns = tmp_path / "p.yaml"
    patterns.write_text("patterns: [{error_pattern: x, recovery_action: recreate}]")
    with pytest.raises(UserError, match=rf"^--patterns {patterns}: pattern 0 .*'recreate' is not one of"):
        run_recover(recover_args(tmp_path, patterns=patterns))


def test_recover_refuses_a_file_that_is_not_a_kubeconfig(tmp_path: Path) -> None:
    bad = tmp_path / "kubeconfig"
    bad.write_text("not: [a kubeconfig")
    with pytest.raises(UserError, match="not a usable kubeconfig"):
        run_recover(recover_args(tmp_path, kubeconfig=bad))


def test_explain_exit_codes_and_bad_patterns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = parse("explain", "--kind", "Kustomization", "--message", "nothing known")
    assert run_explain(args) == 3
    patterns = tmp_path / "p.yaml"
    patterns.write_text("patterns: [{error_pattern: 'nothing', recovery_action: escalate}]")
    assert run_explain(argparse.Namespace(**{**vars(args), "patterns": patterns})) == 0
    assert '"recovery_action": "escalate"' in capsys.readouterr().out
    patterns.write_text("patterns: [{error_pattern: '(a+)+', recovery_action: escalate}]")
    with pytest.raises(UserError, match=rf"^--patterns {patterns}: pattern 0.*nested repetition"):
        run_explain(argparse.Namespace(**{**vars(args), "patterns": patterns}))


def test_events_carry_the_reason_component_and_a_microsecond_time() -> None:
    from recovery.events import ACTION, Recorder, event_body

    obj = {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": "shop", "namespace": "flux-system", "uid": "u1"},
    }
    body = event_body(obj, ACTION, "x" * 5000, False, "host-1")
    assert body["reportingComponent"] == "gitops-resilience-operator" and body["action"] == "Recover"
    assert len(body["message"]) == 1024 and body["eventTime"].count(".") == 1
    assert body["involvedObject"] == {
        "apiVersion": obj["apiVersion"],
        "kind": "Kustomization",
        "name": "shop",
        "namespace": "flux-system",
        "uid": "u1",
        "resourceVersion": None,
    }
    with pytest.raises(ValueError, match="unknown Event reason"):
        event_body(obj, "Whatever", "m", False, "h")
    kube = FakeKube()
    Recorder(kube, enabled=False).emit(obj, ACTION, "dry")
    assert kube.writes == []
    Recorder(kube, instance="i").emit(obj, ACTION, "real")
    assert [w[1] for w in kube.writes] == ["Event"]


def test_every_action_and_escalation_counter_is_exported_at_zero_from_the_start() -> None:
    """A counter series that first appears at 1 shows Prometheus no increase: FluxRecoveryEscalated
    (`increase(...[10m]) > 0`) would miss the first escalation of each kind (promtool shows it in
    tests/integration/test_recovery_manifests.py)."""
    from recovery.actions import ACTIONS
    from recovery.metrics import ESCALATION_REASONS, RESULTS

    m = Metrics(lambda: View(now=0.0))
    for kind in ("Kustomization", "HelmRelease"):
        for action in ACTIONS:
            for why in ESCALATION_REASONS:
                labels = {"kind": kind, "action": action, "why": why}
                assert sample(m, "flux_recovery_escalations_total", labels) == 0
            for result in RESULTS:
                assert sample(m, "flux_recovery_actions_total", {"kind": kind, "action": action, "result": result}) == 0
    for action in ACTIONS:
        assert sample(m, "flux_recovery_action_duration_seconds_count", {"action": action}) == 0
