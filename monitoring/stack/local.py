"""A local cluster's monitoring: Prometheus, Alertmanager and the alert receiver as supervised processes.

`prepare` runs before anything starts: it reads the alert rules (by default the operator's shipped PrometheusRule,
the same file: its `spec.groups` become the rule file Prometheus loads, regenerated at every start, never kept),
lets promtool check them (a rule file that does not load is one UserError naming it, before any process runs),
and writes the Prometheus and Alertmanager configuration into the stack's directory. `processes` describes the
three processes; the cluster's supervisor runs and restarts them like any other component. What the stack needs
of the cluster is its `Site`, which the cluster layer gives.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from foundation.errors import UserError
from monitoring.facts.rules import rule_groups, shipped_rules
from monitoring.stack.handle import (
    MONITOR_JOB,
    OPERATOR_JOB,
    SCRAPE_JOBS,
    STAGES_JOB,
    TIMINGS,
    AlertTimings,
    Monitoring,
)

PROMETHEUS, ALERTMANAGER, RECEIVER = "prometheus", "alertmanager", "alert-receiver"
COMPONENTS: tuple[str, ...] = (RECEIVER, ALERTMANAGER, PROMETHEUS)
# Binary -> the build component it comes from (promtool only checks the rules before start-up).
BINARIES = {PROMETHEUS: "prometheus-server", ALERTMANAGER: "alertmanager", "promtool": "prometheus"}
# The operator's series a read-only monitor would only fake (it takes no Lease and acts on nothing).
MONITOR_DROPS = "flux_recovery_.*|flux_source_pinned"
# What Prometheus keeps of the API server's large exposition: request rates and latency totals, in-flight work.
APISERVER_KEEPS = (
    "apiserver_request_total|apiserver_request_duration_seconds_(sum|count)|apiserver_current_inflight_requests"
    "|apiserver_storage_objects|process_.*"
)


@dataclass(frozen=True)
class Site:
    """What the stack needs of the cluster it runs beside: its own directory, the cluster's ports by name, the
    cluster's PKI (Prometheus scrapes the API server as admin) and the Flux controllers whose metrics it scrapes."""

    directory: Path
    ports: Mapping[str, int]
    pki: Path
    controllers: tuple[str, ...]


@dataclass(frozen=True)
class Process:
    """One process of the stack: its command line and the URL that answers 200 once it serves."""

    name: str
    argv: list[str]
    ready_url: str


def check_rules(promtool: Path, rules: Path, source: Path) -> None:
    """promtool's verdict on the generated rule file; its first error becomes one line naming the source file."""
    proc = subprocess.run([str(promtool), "check", "rules", str(rules)], capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [ln.strip() for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
        errors = [ln for ln in lines if not ln.startswith(("Checking", "FAILED"))] or lines
        detail = errors[0].replace(str(rules), source.name) if errors else f"promtool exited {proc.returncode}"
        raise UserError(f"{source}: the alert rules do not load: {detail[:400]}; fix the rules (promtool check rules)")


def prometheus_config(site: Site, timings: AlertTimings) -> dict[str, Any]:
    pki, ports = site.pki, site.ports
    flux_targets = [
        {"targets": [f"127.0.0.1:{ports[name + '-metrics']}"], "labels": {"controller": name}}
        for name in site.controllers
    ]

    def file_job(job: str) -> dict[str, Any]:
        return {
            "job_name": job,
            "file_sd_configs": [{"files": [str(site.directory / "targets" / job / "*.json")]}],
        }

    monitor = file_job(MONITOR_JOB)
    monitor["metric_relabel_configs"] = [{"source_labels": ["__name__"], "regex": MONITOR_DROPS, "action": "drop"}]
    return {
        "global": {
            "scrape_interval": f"{timings.scrape_interval}s",
            "evaluation_interval": f"{timings.evaluation_interval}s",
        },
        "rule_files": [str(site.directory / "rules.yaml")],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{ports[ALERTMANAGER]}"]}]}]},
        "scrape_configs": [
            {"job_name": "flux-controllers", "static_configs": flux_targets},
            {
                "job_name": "kube-apiserver",
                "scheme": "https",
                "scrape_interval": f"{timings.apiserver_scrape_interval}s",
                "tls_config": {
                    "ca_file": str(pki / "ca.crt"),
                    "cert_file": str(pki / "admin.crt"),
                    "key_file": str(pki / "admin.key"),
                },
                "static_configs": [{"targets": [f"127.0.0.1:{ports['kube-apiserver']}"]}],
                "metric_relabel_configs": [{"source_labels": ["__name__"], "regex": APISERVER_KEEPS, "action": "keep"}],
            },
            file_job(OPERATOR_JOB),
            file_job(STAGES_JOB),
            monitor,
        ],
    }


def alertmanager_config(ports: Mapping[str, int], timings: AlertTimings) -> dict[str, Any]:
    """Everything to the harness's receiver, one group per alert and object, resolved notifications included."""
    return {
        "route": {
            "receiver": "harness",
            "group_by": ["alertname", "namespace", "name"],
            "group_wait": f"{timings.group_wait}s",
            "group_interval": f"{timings.group_interval}s",
            "repeat_interval": f"{timings.repeat_interval}s",
        },
        "receivers": [
            {
                "name": "harness",
                "webhook_configs": [
                    {"url": f"http://127.0.0.1:{ports[RECEIVER]}/alerts", "send_resolved": True, "max_alerts": 0}
                ],
            }
        ],
    }


def prepare(site: Site, rules_source: Path | None, promtool: Path) -> dict[str, Any]:
    """Write the rule file and both configurations; returns what the cluster spec records about monitoring."""
    source = (rules_source or shipped_rules()).resolve()
    groups = rule_groups(source)
    site.directory.mkdir(parents=True, exist_ok=True)
    rules = site.directory / "rules.yaml"
    rules.write_text(
        f"# Generated from {source} at start-up; edit that file, not this one.\n"
        + yaml.safe_dump({"groups": groups}, sort_keys=False)
    )
    check_rules(promtool, rules, source)
    (site.directory / "prometheus.yml").write_text(yaml.safe_dump(prometheus_config(site, TIMINGS), sort_keys=False))
    (site.directory / "alertmanager.yml").write_text(
        yaml.safe_dump(alertmanager_config(site.ports, TIMINGS), sort_keys=False)
    )
    for job in SCRAPE_JOBS:
        (site.directory / "targets" / job).mkdir(parents=True, exist_ok=True)
    return {"rules_source": str(source), "rules_shipped": source == shipped_rules().resolve()}


def processes(site: Site, binaries: Mapping[str, Path]) -> list[Process]:
    """The three processes; Prometheus last, so its first alerts find Alertmanager and the receiver up."""
    base, ports = site.directory, site.ports
    return [
        Process(
            RECEIVER,
            [
                sys.executable,
                "-m",
                "monitoring.stack.receiver",
                f"--port={ports[RECEIVER]}",
                f"--out={base / 'notifications.jsonl'}",
            ],
            f"http://127.0.0.1:{ports[RECEIVER]}/healthz",
        ),
        Process(
            ALERTMANAGER,
            [
                str(binaries[ALERTMANAGER]),
                f"--config.file={base / 'alertmanager.yml'}",
                f"--storage.path={base / 'alertmanager'}",
                f"--web.listen-address=127.0.0.1:{ports[ALERTMANAGER]}",
                "--cluster.listen-address=",  # one instance: no gossip port
                "--log.level=info",
            ],
            f"http://127.0.0.1:{ports[ALERTMANAGER]}/-/ready",
        ),
        Process(
            PROMETHEUS,
            [
                str(binaries[PROMETHEUS]),
                f"--config.file={base / 'prometheus.yml'}",
                f"--storage.tsdb.path={base / 'prometheus'}",
                "--storage.tsdb.retention.time=2d",
                f"--web.listen-address=127.0.0.1:{ports[PROMETHEUS]}",
                "--log.level=info",
            ],
            f"http://127.0.0.1:{ports[PROMETHEUS]}/-/ready",
        ),
    ]


def handle(site: Site, recorded: Mapping[str, Any] | None) -> Monitoring | None:
    """The harness's view of a cluster's monitoring from what `prepare` recorded (None: started without)."""
    if not recorded:
        return None
    ports = site.ports
    return Monitoring(
        prometheus_url=f"http://127.0.0.1:{ports[PROMETHEUS]}",
        alertmanager_url=f"http://127.0.0.1:{ports[ALERTMANAGER]}",
        receiver_url=f"http://127.0.0.1:{ports[RECEIVER]}/alerts",
        notifications_file=site.directory / "notifications.jsonl",
        targets_dir=site.directory / "targets",
        rules_source=str(recorded["rules_source"]),
        rules_shipped=bool(recorded["rules_shipped"]),
    )
