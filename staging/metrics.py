"""Prometheus metrics of the stage controller: promotion duration per stage, rollbacks, failed revisions, the
revision and phase each stage holds, and escalations under the operator's metric name, so the shipped
FluxRecoveryEscalated alert fires for a rolled-back stage too.

Every counter and histogram series a StagedKustomization can move is exported at 0 once it is seen (`seed`): a
series that first appears at 1 shows Prometheus no `increase()`, so FluxStageRolledBack and FluxRecoveryEscalated
would miss the first rollback of each stage and check."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ctlruntime.probes import MetricsServer
from fluxmodel.kinds import STAGED_KUSTOMIZATION, ObjectRef

# The escalations a stage's failure counts (flux_recovery_escalations_total's `action`).
ROLLBACK_STAGE = "rollback_stage"  # the stage went back to its last passed revision
HOLD_REVISION = "hold_revision"  # the revision failed before anything was applied, or nothing had passed before


@dataclass
class Pipeline:
    """What the collector reads of one StagedKustomization at scrape time."""

    ref: ObjectRef
    ready: bool
    stages: list[tuple[str, str, str]] = field(default_factory=list)  # name, held revision, phase


@dataclass
class View:
    leader: bool = False
    pipelines: list[Pipeline] = field(default_factory=list)


class _Collector(Collector):
    def __init__(self, view: Callable[[], View]):
        self.view = view

    def collect(self) -> Iterator[Metric]:
        v = self.view()
        revision = GaugeMetricFamily(
            "flux_staged_stage_revision",
            "1 for the revision each stage holds (applies or last passed), with its phase",
            labels=["namespace", "name", "stage", "revision", "phase"],
        )
        ready = GaugeMetricFamily(
            "flux_staged_ready", "1 when every stage passed the branch head", labels=["namespace", "name"]
        )
        for p in v.pipelines:
            ready.add_metric([p.ref.namespace, p.ref.name], float(p.ready))
            for stage, held, phase in p.stages:
                revision.add_metric([p.ref.namespace, p.ref.name, stage, held, phase], 1)
        yield revision
        yield ready
        yield GaugeMetricFamily("flux_staged_leader", "1 when this instance holds the Lease and acts", value=v.leader)


class StageMetrics(MetricsServer):
    """The stage controller's counters and collector, served with the probes."""

    def __init__(self, view: Callable[[], View]):
        super().__init__()
        self.promotion = Histogram(
            "flux_staged_promotion_duration_seconds",
            "From a stage starting to apply a revision to the stage passing it (health checks and soak included)",
            ["namespace", "name", "stage"],
            buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800),
            registry=self.registry,
        )
        self.rollbacks = Counter(
            "flux_staged_rollbacks",
            "Stages rolled back to their last passed revision, by the check that failed",
            ["namespace", "name", "stage", "check"],
            registry=self.registry,
        )
        self.failed = Counter(
            "flux_staged_failed_revisions",
            "Revisions marked failed (no later stage gets them), by stage and check",
            ["namespace", "name", "stage", "check"],
            registry=self.registry,
        )
        self.escalations = Counter(
            "flux_recovery_escalations",
            "Escalations to a human, by action and why (the recovery operator's metric; kind StagedKustomization)",
            ["kind", "action", "why"],
            registry=self.registry,
        )
        self.registry.register(_Collector(view))

    def seed(self, ref: ObjectRef, stages: Iterable[tuple[str, Iterable[str]]]) -> None:
        """Export at 0 every series a StagedKustomization's stages (name, the checks it can fail) can move."""
        for stage, checks in stages:
            self.promotion.labels(ref.namespace, ref.name, stage)
            for check in checks:
                self.failed.labels(ref.namespace, ref.name, stage, check)
                self.rollbacks.labels(ref.namespace, ref.name, stage, check)
                for action in (ROLLBACK_STAGE, HOLD_REVISION):
                    self.escalations.labels(STAGED_KUSTOMIZATION.kind, action, check)
