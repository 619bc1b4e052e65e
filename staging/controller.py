"""`resilience stage`: watches StagedKustomizations and the Kustomizations and GitRepositories of their stages,
and moves revisions stage to stage (staging.pipeline decides; this gathers the world and carries the plan out).

Run as every controller here (ctlruntime.controller): metrics first, a wait for the API server, informers (warm
caches in a standby), one active instance through a Lease of its own. One reconcile of a StagedKustomization: make
sure its head GitRepository follows the branch, decide, write the status, then pin (status first, so a restart
resumes a promotion instead of repeating it), then Events, metrics and escalations. A stage in flight is looked at every
second; everything else is driven by watch events.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from ctlruntime.api import KubeApi
from ctlruntime.controller import Controller as Runtime
from ctlruntime.controller import RuntimeConfig
from ctlruntime.informer import Informer
from fluxmodel.annotations import RECOVERY_ESCALATED, STAGES_COMPONENT
from fluxmodel.conditions import artifact_revision, revision_commit
from fluxmodel.kinds import GIT_REPOSITORY, KUSTOMIZATION, STAGED_KUSTOMIZATION, ObjectRef, source_ref
from fluxmodel.staged import HEAD_FOR_LABEL, Stage, StagedSpec, head_name, parse, short
from foundation.errors import UserError
from kubeapi import ApiError, Forbidden, UnknownKind
from recovery import events
from recovery.actions.sources import clear_pin, pin_holder, set_pin
from staging import pipeline
from staging.checks import StageChecks
from staging.content import Artifacts
from staging.metrics import HOLD_REVISION, ROLLBACK_STAGE, Pipeline, StageMetrics, View
from staging.status import PipelineStatus
from validation.render import Kustomize

LEASE_NAME = "gitops-resilience-stages"
REASONS = {
    "promoting": events.STAGE_PROMOTING,
    "passed": events.STAGE_PASSED,
    "failed": events.STAGE_FAILED,
    "rolled-back": events.STAGE_ROLLED_BACK,
}
log = logging.getLogger("staging.controller")


@dataclass
class Config(RuntimeConfig):
    workers: int = 4
    kubectl: str = "kubectl"
    dry_run_kube: KubeApi | None = None  # the client compatibility-check dry-runs with (default: the controller's)


class Controller(Runtime):
    config: Config
    metrics: StageMetrics

    def __init__(self, kube: KubeApi, config: Config, clock: Callable[[], float] = time.time):
        super().__init__(kube, config, StageMetrics(self.view), LEASE_NAME)
        self.clock = clock
        self._lock = threading.RLock()
        self.staged: dict[ObjectRef, dict[str, Any]] = {}
        self.kustomizations: dict[ObjectRef, dict[str, Any]] = {}
        self.sources: dict[ObjectRef, dict[str, Any]] = {}
        self.recorder = events.Recorder(kube, instance=config.identity, component=STAGES_COMPONENT)
        self.artifacts = Artifacts()
        self.kustomize = Kustomize(config.kubectl, jobs=1)
        self.informers: list[Informer] = []

    # -- running -------------------------------------------------------------------------------------------
    def _check(self) -> None:
        self.kustomize.check()

    def _watch(self, loaded: Any) -> dict[str, Any]:
        namespaces: list[str | None] = list(self.config.namespaces) or [None]
        for kind, table, selector in (
            (STAGED_KUSTOMIZATION, self.staged, self.config.scope.label_selector),
            (KUSTOMIZATION, self.kustomizations, None),
            (GIT_REPOSITORY, self.sources, None),
        ):
            for ns in namespaces:
                informer = Informer(
                    self.kube,
                    kind.api_version,
                    kind.kind,
                    ns,
                    self._lister(kind.kind, ns, table),
                    self._updater(table),
                    self.stop,
                    selector,
                )
                self.informers.append(informer)  # daemons, not joined: a watch ends on its own timeout
                informer.start()
        return {}

    def _load(self) -> int:
        try:
            self.kube.ping()
            items = self.kube.list(STAGED_KUSTOMIZATION.api_version, STAGED_KUSTOMIZATION.kind)
        except UnknownKind as e:
            raise UserError(
                f"the API server {self.config.api_server} serves no StagedKustomization ({e.message}); install the "
                "CRD: kubectl apply -f recovery/manifests/stagedkustomization-crd.yaml"
            ) from e
        except Forbidden as e:
            raise UserError(
                f"the API server {self.config.api_server} refused to list StagedKustomizations ({e.message}); grant "
                "the shipped ClusterRole gitops-resilience-stages (recovery/manifests/rbac-stages.yaml)"
            ) from e
        return len(items)

    def shutdown(self) -> None:
        super().shutdown()
        self.artifacts.close()

    def _on_leadership(self, held: bool) -> None:
        log.info("lease", extra={"fields": {"identity": self.config.identity, "held": held}})
        if held:
            with self._lock:
                refs = list(self.staged)
            for ref in refs:
                self.queue.add(ref)

    # -- caches --------------------------------------------------------------------------------------------
    def _lister(
        self, kind: str, namespace: str | None, table: dict[ObjectRef, dict[str, Any]]
    ) -> Callable[[list[dict[str, Any]]], None]:
        def replace(items: list[dict[str, Any]]) -> None:
            fresh = {ObjectRef.of(obj): obj for obj in items}
            with self._lock:
                gone = [
                    r
                    for r in table
                    if r.kind == kind and (namespace is None or r.namespace == namespace) and r not in fresh
                ]
                for ref in gone:
                    self._changed(table, "DELETED", table[ref])
            for obj in items:
                self._changed(table, "ADDED", obj)

        return replace

    def _updater(self, table: dict[ObjectRef, dict[str, Any]]) -> Callable[[str, dict[str, Any]], None]:
        return lambda event, obj: self._changed(table, event, obj)

    def _changed(self, table: dict[ObjectRef, dict[str, Any]], event: str, obj: dict[str, Any]) -> None:
        ref = ObjectRef.of(obj)
        with self._lock:
            if event == "DELETED":
                table.pop(ref, None)
            else:
                table[ref] = obj
            affected = {ref} if ref.kind == STAGED_KUSTOMIZATION.kind else self._users(ref)
        for staged_ref in affected:
            self.queue.add(staged_ref)

    def _users(self, ref: ObjectRef) -> set[ObjectRef]:
        """The StagedKustomizations one of whose stages reads `ref` (a Kustomization or a GitRepository)."""
        out = set()
        for staged_ref, obj in self.staged.items():
            spec = parse(obj)
            if ref.kind == GIT_REPOSITORY.kind and ref == ObjectRef(
                ref.kind, staged_ref.namespace, head_name(staged_ref.name)
            ):
                out.add(staged_ref)
            for stage in spec.stages:
                ks = self.kustomizations.get(stage.kustomization)
                if ref == stage.kustomization or (ks is not None and ref == source_ref(ks)):
                    out.add(staged_ref)
        return out

    # -- one reconcile ---------------------------------------------------------------------------------------
    def process(self, ref: Hashable) -> None:
        assert isinstance(ref, ObjectRef)
        if not self.leader:
            return
        with self._lock:
            obj = copy.deepcopy(self.staged.get(ref))
        if obj is None:
            self._release(ref)
            return
        spec = parse(obj)
        self.metrics.seed(ref, ((s.name, _checks_of(s)) for s in spec.stages))
        head = self._head(spec, obj)
        with self._lock:
            stages = {
                s.name: pipeline.StageWorld(
                    copy.deepcopy(self.kustomizations.get(s.kustomization)),
                    self._source_of(s.kustomization),
                )
                for s in spec.stages
            }
        now = self.clock()
        annotations = {str(k): str(v) for k, v in ((obj.get("metadata") or {}).get("annotations") or {}).items()}
        world = pipeline.World(artifact_revision(head) if head else None, stages, annotations, now, str(ref))
        status = PipelineStatus.from_object(obj)
        plan = pipeline.reconcile(spec, status, world, self._checks(spec, head))
        self._write_status(ref, obj, spec, status, now)
        for pin in plan.pins:
            self._pin(ref, pin)
        for notice in plan.notices:
            self._tell(ref, obj, notice)
        if status.ready.status == "True" and RECOVERY_ESCALATED in annotations:
            self._annotate(obj, None)
        if plan.requeue is not None:
            self.queue.add(ref, plan.requeue)

    def _source_of(self, ks_ref: ObjectRef) -> dict[str, Any] | None:
        ks = self.kustomizations.get(ks_ref)
        return copy.deepcopy(self.sources.get(source_ref(ks))) if ks else None

    def _checks(self, spec: StagedSpec, head: dict[str, Any] | None) -> StageChecks:
        def sources() -> list[dict[str, Any]]:
            with self._lock:
                found = [self._source_of(s.kustomization) for s in spec.stages]
            return [s for s in [head, *found] if s]

        def kustomization(ks_ref: ObjectRef) -> dict[str, Any] | None:
            with self._lock:
                return copy.deepcopy(self.kustomizations.get(ks_ref))

        return StageChecks(
            spec,
            self.kube,
            self.artifacts,
            sources,
            kustomization,
            self.kustomize,
            self.config.dry_run_kube,
            self.clock,
        )

    def _head(self, spec: StagedSpec, obj: dict[str, Any]) -> dict[str, Any] | None:
        """The head GitRepository (created from the first stage's source, owned by the StagedKustomization)."""
        name = head_name(spec.ref.name)
        head_ref = ObjectRef(GIT_REPOSITORY.kind, spec.ref.namespace, name)
        roots = [s for s in spec.order() if not s.depends_on] or list(spec.stages)
        with self._lock:
            template = self._source_of(roots[0].kustomization) if roots and not spec.problems else None
            current = copy.deepcopy(self.sources.get(head_ref))
        if template is None:
            return current
        body = copy.deepcopy(template.get("spec") or {})
        body.setdefault("ref", {}).pop("commit", None)
        body.pop("suspend", None)
        meta = obj.get("metadata") or {}
        wanted = {
            "apiVersion": GIT_REPOSITORY.api_version,
            "kind": GIT_REPOSITORY.kind,
            "metadata": {
                "name": name,
                "namespace": spec.ref.namespace,
                "labels": {HEAD_FOR_LABEL: spec.ref.name, **(meta.get("labels") or {})},
                "ownerReferences": [
                    {
                        "apiVersion": STAGED_KUSTOMIZATION.api_version,
                        "kind": STAGED_KUSTOMIZATION.kind,
                        "name": spec.ref.name,
                        "uid": meta.get("uid"),
                    }
                ],
            },
            "spec": body,
        }
        if current is not None and (current.get("spec") or {}) == body:
            return current
        try:
            out = self.kube.apply(wanted, field_manager=LEASE_NAME)
        except ApiError as e:
            log.warning("could not create the head GitRepository %s: %s", head_ref, e)
            return current
        with self._lock:
            self.sources[head_ref] = out
        return out

    def _write_status(
        self, ref: ObjectRef, obj: dict[str, Any], spec: StagedSpec, status: PipelineStatus, now: float
    ) -> None:
        generation = (obj.get("metadata") or {}).get("generation")
        body = status.to_json([s.name for s in spec.order()], generation, now)
        if _clean(body) == _clean(obj.get("status") or {}):
            return
        out = self.kube.patch_status(STAGED_KUSTOMIZATION.api_version, ref.kind, ref.name, ref.namespace, body)
        with self._lock:
            if ref in self.staged:
                self.staged[ref] = out

    def _pin(self, ref: ObjectRef, pin: pipeline.Pin) -> None:
        commit = revision_commit(pin.revision)
        if commit is None:
            return
        out = set_pin(self.kube, pin.source, commit, by=str(ref), bad=pin.bad)
        with self._lock:
            self.sources[pin.source] = out
        log.info(
            "pinned",
            extra={
                "fields": {"object": str(ref), "stage": pin.stage, "source": str(pin.source), "revision": pin.revision}
            },
        )

    def _tell(self, ref: ObjectRef, obj: dict[str, Any], notice: pipeline.Notice) -> None:
        text = f"stage {notice.stage}: {notice.message}"
        self.recorder.emit(obj, REASONS[notice.kind], text, warning=notice.warning)
        labels = (ref.namespace, ref.name, notice.stage)
        if notice.kind == "passed" and notice.seconds is not None:
            self.metrics.promotion.labels(*labels).observe(notice.seconds)
        if notice.warning:
            self.metrics.failed.labels(*labels, notice.check).inc()
            if notice.kind == "rolled-back":
                self.metrics.rollbacks.labels(*labels, notice.check).inc()
            action = ROLLBACK_STAGE if notice.kind == "rolled-back" else HOLD_REVISION
            self.metrics.escalations.labels(STAGED_KUSTOMIZATION.kind, action, notice.check).inc()
            self.recorder.emit(
                obj,
                events.ESCALATED,
                f"manual intervention needed: {short(notice.revision)} failed in stage {notice.stage} "
                f"({notice.check}); no later stage gets it. Push a fix, or annotate "
                f"stages.gitops.flux.io/retry={revision_commit(notice.revision)} to try it again. {notice.message}",
                warning=True,
            )
            self._annotate(obj, f"{notice.stage}/{notice.check}: {short(notice.revision)} failed"[:250])
        log.info(
            "decision",
            extra={
                "fields": {"object": str(ref), "stage": notice.stage, "result": notice.kind, "detail": notice.message}
            },
        )

    def _annotate(self, obj: dict[str, Any], value: str | None) -> None:
        ref = ObjectRef.of(obj)
        try:
            patch = {"metadata": {"annotations": {RECOVERY_ESCALATED: value}}}
            self.kube.merge_patch(STAGED_KUSTOMIZATION.api_version, ref.kind, ref.name, ref.namespace, patch)
        except ApiError as e:
            log.warning("could not annotate %s: %s", ref, e)

    def _release(self, ref: ObjectRef) -> None:
        """A StagedKustomization is gone: its stages' sources follow their branch again."""
        with self._lock:
            held = [s for s in self.sources.values() if pin_holder(s) == str(ref)]
        for src in held:
            try:
                clear_pin(self.kube, ObjectRef.of(src))
                log.info("released", extra={"fields": {"object": str(ref), "source": str(ObjectRef.of(src))}})
            except ApiError as e:
                log.warning("could not release %s: %s", ObjectRef.of(src), e)

    # -- metrics -----------------------------------------------------------------------------------------
    def view(self) -> View:
        with self._lock:
            objects = list(self.staged.values())
        pipelines = []
        for obj in objects:
            status = PipelineStatus.from_object(obj)
            stages = [(name, st.held or "", st.phase) for name, st in sorted(status.stages.items())]
            pipelines.append(Pipeline(ObjectRef.of(obj), status.ready.status == "True", stages))
        return View(self.leader, pipelines)


def _checks_of(stage: Stage) -> tuple[str, ...]:
    """Every check a stage can fail a revision by: the implicit `applied`, its validation and health checks."""
    return (pipeline.APPLIED, *stage.validation_checks, *(h.type for h in stage.health_checks))


def _clean(value: Any) -> Any:
    """A status without empty values, as the API server stores it (to skip writes that change nothing)."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if v not in (None, "", [], {})}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value
