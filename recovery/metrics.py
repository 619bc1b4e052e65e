"""Prometheus metrics of the monitor and the recovery engine, under the names the design's alert uses.

Flux itself emits neither `flux_kustomization_ready` nor `flux_kustomization_last_applied_revision_timestamp`,
so they are computed here at scrape time from the monitor's records (one pass, no per-event gauge churn);
recovery counters are updated as actions run. The counters (and duration histograms) of every action and
escalation are exported at 0 from the start: a series that appears already at 1 has no increase for Prometheus,
so the first escalation of each kind would never raise FluxRecoveryEscalated (`increase(...[10m]) > 0`), and the
dashboard's rates would stay empty after the first action of a kind.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ctlruntime.probes import MetricsServer
from fluxmodel.kinds import ObjectRef
from recovery.actions import ACTIONS
from recovery.health import Health

PREFIX = {"Kustomization": "flux_kustomization", "HelmRelease": "flux_helmrelease"}
# The `result` of flux_recovery_actions_total and the `why` of flux_recovery_escalations_total.
RESULTS = ("started", "succeeded", "failed", "dry_run")
ESCALATION_MANUAL, ESCALATION_RETRIES, ESCALATION_REFUSED = "manual", "retries", "refused"
ESCALATION_REASONS = (ESCALATION_MANUAL, ESCALATION_RETRIES, ESCALATION_REFUSED)


@dataclass
class View:
    """What the collector reads at scrape time (built by the operator under its lock)."""

    now: float
    healths: list[Health] = field(default_factory=list)
    attempts: dict[ObjectRef, int] = field(default_factory=dict)
    cycles: dict[ObjectRef, str] = field(default_factory=dict)
    blocked: dict[ObjectRef, int] = field(default_factory=dict)
    pins: dict[ObjectRef, str] = field(default_factory=dict)
    leader: bool = False
    patterns: int = 0
    config_valid: bool = True
    watch_events: int = 0


class _Collector(Collector):
    def __init__(self, view: Callable[[], View]):
        self.view = view

    def collect(self) -> Iterator[Metric]:
        v = self.view()
        yield from _per_object(v)
        attempts = GaugeMetricFamily(
            "flux_recovery_object_attempts",
            "Recovery attempts on the object in its current failure episode",
            labels=["kind", "namespace", "name"],
        )
        for ref, n in sorted(v.attempts.items()):
            attempts.add_metric([ref.kind, ref.namespace, ref.name], n)
        yield attempts
        cycle = GaugeMetricFamily(
            "flux_dependency_cycle",
            "1 for each object on a dependsOn cycle (Flux reports none; the cycle stalls its source's reconciles)",
            labels=["kind", "namespace", "name", "cycle"],
        )
        for ref, text in sorted(v.cycles.items()):
            cycle.add_metric([ref.kind, ref.namespace, ref.name, text], 1)
        yield cycle
        blocked = GaugeMetricFamily(
            "flux_dependency_blocked_dependents",
            "Objects transitively waiting (dependsOn) for this failing object: the impact of its failure",
            labels=["kind", "namespace", "name"],
        )
        for ref, n in sorted(v.blocked.items()):
            blocked.add_metric([ref.kind, ref.namespace, ref.name], n)
        yield blocked
        pinned = GaugeMetricFamily(
            "flux_source_pinned",
            "1 while the operator pins a GitRepository to the last good revision",
            labels=["kind", "namespace", "name", "revision"],
        )
        for ref, revision in sorted(v.pins.items()):
            pinned.add_metric([ref.kind, ref.namespace, ref.name, revision], 1)
        yield pinned
        yield GaugeMetricFamily("flux_recovery_leader", "1 when this instance holds the Lease and acts", value=v.leader)
        yield CounterMetricFamily(
            "flux_recovery_watch_events", "Watch events and list items processed", value=v.watch_events
        )
        yield GaugeMetricFamily("flux_recovery_patterns", "Recovery patterns loaded", value=v.patterns)
        yield GaugeMetricFamily(
            "flux_recovery_config_valid", "0 when the last pattern reload was refused", value=v.config_valid
        )


def _per_object(v: View) -> Iterable[Metric]:
    families: dict[str, GaugeMetricFamily] = {}

    def family(kind: str, suffix: str, doc: str, extra: tuple[str, ...] = ()) -> GaugeMetricFamily:
        name = f"{PREFIX[kind]}_{suffix}"
        if name not in families:
            families[name] = GaugeMetricFamily(name, f"{kind}: {doc}", labels=["namespace", "name", *extra])
        return families[name]

    for h in v.healths:
        if h.ref.kind not in PREFIX:
            continue
        labels = [h.ref.namespace, h.ref.name]
        family(h.ref.kind, "ready", "1 when Ready=True for the current generation").add_metric(labels, float(h.ready))
        family(
            h.ref.kind,
            "last_applied_revision_timestamp",
            "Unix time the object was last seen Ready (its creation time if never)",
        ).add_metric(labels, h.last_ready_at if h.last_ready_at is not None else h.created)
        family(h.ref.kind, "stuck_seconds", "Seconds since the object stopped being Ready (0 when Ready)").add_metric(
            labels, h.stuck_seconds(v.now)
        )
        family(h.ref.kind, "failure_count", "Failed reconciliations in the current failure episode").add_metric(
            labels, h.failure_count
        )
        family(h.ref.kind, "suspended", "1 when spec.suspend is true").add_metric(labels, float(h.suspended))
        family(
            h.ref.kind,
            "revision_info",
            "Last applied and last attempted revision (always 1)",
            ("last_applied", "last_attempted", "reason"),
        ).add_metric([*labels, h.last_applied or "", h.last_attempted or "", h.reason], 1)
    return list(families.values())


class Metrics(MetricsServer):
    """The operator's counters and collector, served with the probes."""

    def __init__(self, view: Callable[[], View]):
        super().__init__()
        self.actions = Counter(
            "flux_recovery_actions",
            "Recovery actions by action and result (started, succeeded, failed, dry_run)",
            ["kind", "action", "result"],
            registry=self.registry,
        )
        self.escalations = Counter(
            "flux_recovery_escalations",
            "Escalations to a human, by action and why (retries, manual policy, unsafe)",
            ["kind", "action", "why"],
            registry=self.registry,
        )
        self.detections = Counter(
            "flux_recovery_detections",
            "Failures matched by a pattern, by pattern",
            ["kind", "pattern"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "flux_recovery_action_duration_seconds",
            "Wall time of one action step",
            ["action"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=self.registry,
        )
        self.registry.register(_Collector(view))
        for action in ACTIONS:
            self.duration.labels(action)
        for kind in PREFIX:
            for action in ACTIONS:
                for result in RESULTS:
                    self.actions.labels(kind, action, result)
                for why in ESCALATION_REASONS:
                    self.escalations.labels(kind, action, why)


def sample(metrics: Metrics, name: str, labels: dict[str, str] | None = None) -> Any:
    """One sample's value from the registry (tests and benchmarks)."""
    return metrics.registry.get_sample_value(name, labels or {})
