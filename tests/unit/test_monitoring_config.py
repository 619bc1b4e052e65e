"""A local cluster's monitoring without a cluster: the rules it loads (the shipped file's groups), the Prometheus and
Alertmanager configuration it writes, scrape targets, the receiver and the notifications the harness reads."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import yaml

from clusters.local.components import component_specs, monitoring_site
from clusters.local.layout import ClusterLayout
from clusters.local.ports import PORT_NAMES
from clusters.local.provider import BINARIES
from fluxmodel import tuned
from foundation.errors import HarnessError, UserError
from foundation.ports import ephemeral_port
from foundation.waiting import wait_until
from monitoring.facts.rules import rule_groups, shipped_rules
from monitoring.stack import local as monitoring
from monitoring.stack.handle import MONITOR_JOB, OPERATOR_JOB, SCRAPE_JOBS, STAGES_JOB, TIMINGS, Monitoring

PORTS = {name: 20000 + i for i, name in enumerate(PORT_NAMES)}


def test_the_shipped_prometheusrule_is_what_prometheus_loads() -> None:
    shipped = yaml.safe_load(shipped_rules().read_text())
    groups = rule_groups(shipped_rules())
    assert groups == shipped["spec"]["groups"]
    alerts = [r["alert"] for g in groups for r in g["rules"]]
    assert "FluxKustomizationStuck" in alerts and len(alerts) == len(set(alerts)) == 9


def test_a_plain_rule_file_is_read_too(tmp_path: Path) -> None:
    plain = tmp_path / "rules.yaml"
    plain.write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [{"alert": "A", "expr": "up == 0"}]}]}))
    assert rule_groups(plain) == [{"name": "g", "rules": [{"alert": "A", "expr": "up == 0"}]}]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("groups: [", "not valid YAML at line 1"),
        ("kind: PrometheusRule\nspec: {}\n", "no rule groups found"),
        ("- a\n- b\n", "a document is not a mapping"),
        ("", "the file is empty"),
    ],
)
def test_a_rule_file_that_cannot_be_read_is_one_line_naming_it(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    with pytest.raises(UserError) as info:
        rule_groups(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and problem in message and "\n" not in message
    with pytest.raises(UserError, match="cannot read the alert rules"):
        rule_groups(tmp_path / "missing.yaml")


def fake_promtool(tmp_path: Path, code: int, output: str) -> Path:
    tool = tmp_path / "promtool"
    tool.write_text(f"#!/bin/sh\nprintf '%s\\n' {json.dumps(output)}\nexit {code}\n")
    tool.chmod(0o755)
    return tool


@pytest.mark.process
def test_prepare_writes_the_rules_and_both_configurations(tmp_path: Path) -> None:
    layout = ClusterLayout(tmp_path / "c")
    recorded = monitoring.prepare(monitoring_site(layout, PORTS), None, fake_promtool(tmp_path, 0, "SUCCESS"))
    assert recorded == {"rules_source": str(shipped_rules().resolve()), "rules_shipped": True}
    rules = yaml.safe_load((layout.monitoring_dir / "rules.yaml").read_text())
    assert rules["groups"] == rule_groups(shipped_rules())
    prom = yaml.safe_load((layout.monitoring_dir / "prometheus.yml").read_text())
    assert prom["rule_files"] == [str(layout.monitoring_dir / "rules.yaml")]
    assert prom["global"]["evaluation_interval"] == f"{TIMINGS.evaluation_interval}s"
    jobs = {job["job_name"]: job for job in prom["scrape_configs"]}
    assert set(jobs) == {"flux-controllers", "kube-apiserver", *SCRAPE_JOBS}
    flux = [t["targets"][0] for t in jobs["flux-controllers"]["static_configs"]]
    controllers = tuned.CONTROLLER_PROCESSES  # the default controllers and the flux-tuned shard
    assert flux == [f"127.0.0.1:{PORTS[c + '-metrics']}" for c in controllers]
    api = jobs["kube-apiserver"]
    assert api["static_configs"][0]["targets"] == [f"127.0.0.1:{PORTS['kube-apiserver']}"]
    assert api["tls_config"]["cert_file"] == str(layout.pki_dir / "admin.crt")
    # The read-only monitor's decisions never reach a rule: its recovery_* series are dropped.
    (drop,) = jobs[MONITOR_JOB]["metric_relabel_configs"]
    assert drop["action"] == "drop" and "flux_recovery_" in drop["regex"]
    # The operator's and the stage controller's series all reach the rules (FluxStageRolledBack reads the latter's).
    assert "metric_relabel_configs" not in jobs[OPERATOR_JOB] and "metric_relabel_configs" not in jobs[STAGES_JOB]
    assert all((layout.monitoring_dir / "targets" / job).is_dir() for job in SCRAPE_JOBS)
    am = yaml.safe_load((layout.monitoring_dir / "alertmanager.yml").read_text())
    (receiver,) = am["receivers"]
    (hook,) = receiver["webhook_configs"]
    assert hook == {"url": f"http://127.0.0.1:{PORTS['alert-receiver']}/alerts", "send_resolved": True, "max_alerts": 0}
    assert am["route"]["group_by"] == ["alertname", "namespace", "name"]


@pytest.mark.process
def test_rules_promtool_refuses_are_one_line_naming_the_source(tmp_path: Path) -> None:
    layout = ClusterLayout(tmp_path / "c")
    source = tmp_path / "mine.yaml"
    source.write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [{"alert": "A", "expr": "up ==="}]}]}))
    rules = layout.monitoring_dir / "rules.yaml"
    promtool = fake_promtool(tmp_path, 1, f"{rules}: 1:6: parse error: unexpected <op:==>")
    with pytest.raises(UserError) as info:
        monitoring.prepare(monitoring_site(layout, PORTS), source, promtool)
    message = str(info.value)
    assert message.startswith(f"{source.resolve()}: the alert rules do not load: mine.yaml: 1:6: parse error")
    assert "\n" not in message


def test_the_handle_points_at_the_ports_and_files_of_the_cluster(tmp_path: Path) -> None:
    layout = ClusterLayout(tmp_path / "c")
    site = monitoring_site(layout, PORTS)
    handle = monitoring.handle(site, {"rules_source": "/x/rules.yaml", "rules_shipped": False})
    assert handle is not None
    assert handle.prometheus_url == f"http://127.0.0.1:{PORTS['prometheus']}"
    assert handle.notifications_file == layout.monitoring_dir / "notifications.jsonl"
    assert not handle.rules_shipped and handle.to_json()["rules"] == "/x/rules.yaml"
    assert monitoring.handle(site, None) is None


def test_the_local_cluster_supervises_the_three_processes_only_with_monitoring(tmp_path: Path) -> None:
    layout = ClusterLayout(tmp_path / "c")
    binaries = {name: tmp_path / name for name in BINARIES}
    assert not set(monitoring.COMPONENTS) & set(component_specs(layout, PORTS, binaries))
    binaries |= {monitoring.PROMETHEUS: tmp_path / "p", monitoring.ALERTMANAGER: tmp_path / "a"}
    specs = component_specs(layout, PORTS, binaries)
    receiver = specs[monitoring.RECEIVER]
    assert receiver.argv[1:3] == ["-m", "monitoring.stack.receiver"]
    assert receiver.probe.url == f"http://127.0.0.1:{PORTS[monitoring.RECEIVER]}/healthz"
    assert specs[monitoring.PROMETHEUS].argv[0] == str(tmp_path / "p")


def handle_in(tmp_path: Path) -> Monitoring:
    return Monitoring(
        "http://127.0.0.1:1", "http://127.0.0.1:2", "http://127.0.0.1:3/alerts",
        tmp_path / "notifications.jsonl", tmp_path / "targets", "rules.yaml", True,
    )  # fmt: skip


def test_scrape_targets_are_file_sd_documents_per_job(tmp_path: Path) -> None:
    handle = handle_in(tmp_path)
    path = handle.scrape(OPERATOR_JOB, "operator 12/x", "127.0.0.1:9999", {"recovery": "operator"})
    assert path.parent == tmp_path / "targets" / OPERATOR_JOB and path.name == "operator_12_x.json"
    assert json.loads(path.read_text()) == [{"targets": ["127.0.0.1:9999"], "labels": {"recovery": "operator"}}]
    assert not list(path.parent.glob(".*"))
    with pytest.raises(HarnessError, match="unknown scrape job 'nope'"):
        handle.scrape("nope", "x", "127.0.0.1:1")


def test_notifications_are_read_from_the_receivers_file(tmp_path: Path) -> None:
    handle = handle_in(tmp_path)
    assert handle.notifications() == []
    alert = {"status": "firing", "labels": {"alertname": "A", "name": "web"}}
    lines = [
        json.dumps({"received": 10.0, "payload": {"status": "firing", "alerts": [alert]}}),
        json.dumps({"received": 20.0, "payload": {"status": "resolved", "alerts": [alert]}}),
        '{"received": 30.0, "payl',  # being written
    ]
    handle.notifications_file.write_text("\n".join(lines))
    got = handle.notifications()
    assert [(n.received, n.status) for n in got] == [(10.0, "firing"), (20.0, "resolved")]
    assert got[0].alerts == (alert,)
    assert [n.received for n in handle.notifications(since=15)] == [20.0]


@pytest.mark.process
@pytest.mark.slow
def test_the_receiver_appends_each_webhook_call_with_its_arrival_time(tmp_path: Path) -> None:
    out, port = tmp_path / "n.jsonl", ephemeral_port()
    argv = [sys.executable, "-m", "monitoring.stack.receiver", f"--port={port}", f"--out={out}"]
    proc = subprocess.Popen(argv, stderr=subprocess.DEVNULL)
    try:

        def healthy() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as resp:
                    return bool(resp.status == 200)
            except OSError:
                return False

        wait_until(healthy, 20, "the receiver")
        body = json.dumps({"status": "firing", "alerts": [{"labels": {"alertname": "A"}}]}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/alerts", body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as resp:
            assert resp.status == 200
        bad = urllib.request.Request(f"http://127.0.0.1:{port}/alerts", b"nope", {"Content-Type": "text/plain"})
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(bad, timeout=5)
        assert info.value.code == 400
        (line,) = out.read_text().splitlines()
        record = json.loads(line)
        assert record["payload"]["alerts"][0]["labels"] == {"alertname": "A"} and record["received"] > 0
    finally:
        proc.terminate()
        proc.wait(timeout=10)
