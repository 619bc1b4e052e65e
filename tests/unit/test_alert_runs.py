"""A run with monitoring, runner to gate, on a FakeKube cluster: a scripted "Alertmanager" writes the pages the
receiver would get, and the alert rules' thresholds are scaled down to fractions of a second.

The run's `alerts` list, its alert phases and its verdict come from the same runner and judge as a real run.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from scripted_runs import (
    BUDGET,
    FakeFault,
    Script,
    agrees_with_the_gate,
    fake_cluster,
    fake_kube,
    never,
    recover_after,
    show,
)

from assertions import decided
from assertions.slo import Budget, Limit
from assertions.verdict import RunResult, Verdict
from clusters.model import Cluster
from injectors.base import FaultContext
from monitoring.facts import phases as alerts
from monitoring.facts import rules as alert_rules
from monitoring.facts.rules import Promise, Rule
from monitoring.stack.handle import AlertTimings, Monitoring
from reports.matrix import build_cells
from scenarios import runner
from scenarios.recoveries import parse

STUCK = "FluxKustomizationStuck"


@pytest.fixture(autouse=True)
def quick_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    """FluxKustomizationStuck after 0.3 s not Ready plus a `for` of 0.2 s; pages settle within 2 s."""
    monkeypatch.setattr(alert_rules, "rules", lambda: {STUCK: Rule(STUCK, "g", 0.2, "docs/runbooks/x.md")})
    monkeypatch.setattr(alerts, "PROMISES", (Promise(STUCK, alert_rules.NOT_READY, ("Kustomization",), 0.3),))
    monkeypatch.setattr(runner, "ALERT_SETTLE", 2.0)


@pytest.fixture
def cluster(tmp_path: Path) -> Cluster:
    return fake_cluster(tmp_path)


FIRING: list[dict[str, str]] = []  # what the fake Prometheus has firing (its ALERTS series' labels)


@pytest.fixture
def monitored(cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cluster:
    FIRING.clear()
    monkeypatch.setattr(Monitoring, "firing_since", lambda self, since: list(FIRING))
    timings = AlertTimings(scrape_interval=0, evaluation_interval=0, group_wait=0, group_interval=0)
    cluster.monitoring = Monitoring(
        "http://prometheus.invalid", "http://alertmanager.invalid", "http://receiver.invalid/alerts",
        tmp_path / "notifications.jsonl", tmp_path / "targets", "recovery/manifests/prometheusrule.yaml", True,
        timings,
    )  # fmt: skip
    return cluster


def page(cluster: Cluster, ctx: FaultContext, status: str, name: str | None = None) -> None:
    assert cluster.monitoring is not None
    labels = {"alertname": STUCK, "namespace": ctx.flux_namespace, "name": name or ctx.app, "severity": "warning"}
    alert = {"status": status, "labels": labels, "fingerprint": f"fp-{labels['name']}", "annotations": {}}
    record = {"received": time.time(), "payload": {"status": status, "alerts": [alert]}}
    with cluster.monitoring.notifications_file.open("a") as fh:
        fh.write(json.dumps(record) + "\n")


def paging(cluster: Cluster, after: float, resolve_after: float | None, then: Script = never) -> Script:
    """The fault's script, and Alertmanager paging for the run's Kustomization `after` s in (resolving later)."""

    def script(fault: FakeFault, ctx: FaultContext) -> None:
        FIRING.append({"alertname": STUCK, "alertstate": "firing", "namespace": ctx.flux_namespace, "name": ctx.app})
        then(fault, ctx)
        time.sleep(after)
        page(cluster, ctx, "firing")
        if resolve_after is not None:
            time.sleep(resolve_after - after)
            page(cluster, ctx, "resolved")

    return script


def execute(cluster: Cluster, tmp_path: Path, script: Script, mode: str = "none") -> RunResult:
    fault = FakeFault(fake_kube(cluster), script)
    run = runner.ScenarioRun(cluster, fault, parse(mode), BUDGET, tmp_path / "run", node_id=f"t-{mode}")
    result = run.execute()
    if fault.thread is not None:
        fault.thread.join(10)
        assert not fault.thread.is_alive()
    return result


@pytest.mark.process
@pytest.mark.slow
def test_a_fault_that_outlasts_the_rule_pages_and_the_page_resolves_after_the_revert(
    monitored: Cluster, tmp_path: Path
) -> None:
    result = execute(monitored, tmp_path, paging(monitored, 0.7, 2.5))
    (item,) = result.measurements["alerts"]
    assert item["name"] == STUCK and 0.6 < item["fired_after"] < 1.0 and 2.4 < item["resolved_after"] < 3.0
    assert 0.45 < item["due_after"] < 0.7  # not Ready from ~0.01 s, + 0.3 s threshold + 0.2 s `for`
    assert result.verdict is Verdict.NOT_RECOVERED and "blind spot" not in result.reason
    assert result.timeline.since_injected("alerted") == pytest.approx(item["fired_after"], abs=0.01)
    phases = result.summary_entry()["phases"]
    assert phases["alert-resolved"] == pytest.approx(item["resolved_after"] - item["fired_after"], abs=0.01)
    agrees_with_the_gate(result)


@pytest.mark.process
@pytest.mark.slow
def test_a_fault_no_alert_caught_is_a_blind_spot_that_fails_even_a_baseline(monitored: Cluster, tmp_path: Path) -> None:
    result = execute(monitored, tmp_path, never)
    (item,) = result.measurements["alerts"]
    assert item["fired_after"] is None and item["due_after"] > 0
    assert result.verdict is Verdict.NOT_RECOVERED and result.judgement is not None
    assert "monitoring blind spot: FluxKustomizationStuck never paged" in result.reason
    assert not result.judgement.excusable
    (cell,) = build_cells([result.summary_entry()], baselines={"none"})
    assert cell.fails_gate
    agrees_with_the_gate(result)


@pytest.mark.process
@pytest.mark.slow
def test_a_page_for_a_fault_repaired_in_budget_is_noise_and_fails_nothing(monitored: Cluster, tmp_path: Path) -> None:
    """The page was still in Alertmanager's group wait when the operator had repaired the fault: it is waited for."""
    result = execute(monitored, tmp_path, paging(monitored, 0.35, 0.9, then=recover_after(0.1)), mode="operator")
    (item,) = result.measurements["alerts"]
    assert "due_after" not in item
    assert result.verdict is Verdict.PASS and "alert noise: 1 page(s)" in result.reason
    agrees_with_the_gate(result)


@pytest.mark.process
@pytest.mark.slow
def test_pages_for_other_objects_are_not_the_runs_and_no_page_means_an_empty_list(
    monitored: Cluster, tmp_path: Path
) -> None:
    def elsewhere(fault: FakeFault, ctx: FaultContext) -> None:
        recover_after(0.1)(fault, ctx)
        page(monitored, ctx, "firing", name="someone-else")

    result = execute(monitored, tmp_path, elsewhere)
    assert result.measurements["alerts"] == [] and result.verdict is Verdict.PASS
    assert "alerted" not in result.timeline.marks
    assert result.summary_entry()["alerts"] == []


@pytest.mark.process
@pytest.mark.slow
def test_without_monitoring_a_run_has_no_alerts_key(cluster: Cluster, tmp_path: Path) -> None:
    result = execute(cluster, tmp_path, recover_after(0.1))
    assert "alerts" not in result.summary_entry()


@pytest.mark.process
@pytest.mark.slow
def test_rules_other_than_the_shipped_ones_are_said_on_the_result(monitored: Cluster, tmp_path: Path) -> None:
    assert monitored.monitoring is not None
    monitored.monitoring = Monitoring(
        **{**monitored.monitoring.__dict__, "rules_source": "/tmp/scaled.yaml", "rules_shipped": False}
    )
    result = execute(monitored, tmp_path, paging(monitored, 0.7, 1.0, then=show))
    assert "alerts from the rules of /tmp/scaled.yaml, not the operator's shipped rules" in result.notes


def slow_delivery(cluster: Cluster, seconds: int) -> Cluster:
    """Alertmanager's group wait of `seconds`: a page is owed that long after its alert became due."""
    assert cluster.monitoring is not None
    timings = AlertTimings(scrape_interval=0, evaluation_interval=0, group_wait=seconds, group_interval=0)
    cluster.monitoring = Monitoring(**{**cluster.monitoring.__dict__, "timings": timings})
    return cluster


def execute_past_ttr_max(cluster: Cluster, tmp_path: Path, script: Script) -> RunResult:
    """A run under a budget whose ttr.max (0.2 s) is long past when its alert is due, with a give-up time far away."""
    budget = Budget(ttr=Limit(max=0.2), wait=30.0)
    fault = FakeFault(fake_kube(cluster), script)
    return runner.ScenarioRun(cluster, fault, parse("none"), budget, tmp_path / "run", node_id="t").execute()


@pytest.mark.process
@pytest.mark.slow
def test_a_run_past_its_ttr_max_waits_for_the_page_it_owes_then_stops(
    monitored: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not recovered past ttr.max: the wait goes on until the alert its fault made due has paged, then ends."""
    monkeypatch.setattr(decided, "margin", lambda budget: 0.1)
    result = execute_past_ttr_max(slow_delivery(monitored, 3), tmp_path, paging(monitored, 1.5, 2.5))
    ended = result.wait_ended
    assert ended is not None and ended.by == "decided" and 1.4 < ended.after < 3.5, ended
    assert ended.detail.startswith("ttr.max 0.2s passed, alert FluxKustomizationStuck paged at ")
    (item,) = result.measurements["alerts"]
    assert item["fired_after"] == pytest.approx(1.5, abs=0.3) and item["resolved_after"] is not None
    assert result.verdict is Verdict.NOT_RECOVERED and "blind spot" not in result.reason


@pytest.mark.process
@pytest.mark.slow
def test_a_page_owed_and_never_sent_ends_the_wait_as_the_blind_spot_it_is(
    monitored: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(decided, "margin", lambda budget: 0.1)
    result = execute_past_ttr_max(slow_delivery(monitored, 1), tmp_path, never)
    ended = result.wait_ended
    assert ended is not None and ended.by == "decided" and 2.4 < ended.after < 5.0, ended
    assert "alert FluxKustomizationStuck not paged by 2s" in ended.detail
    assert "monitoring blind spot: FluxKustomizationStuck never paged" in result.reason
    assert result.judgement is not None and not result.judgement.excusable
