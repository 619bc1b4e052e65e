"""Dependency chains and sources: blocked dependents reconciled at once, cycles reported, sources followed.

The worker of an object asks this resolver whether someone kicked it (a dependency became Ready, its source
moved past a cycle); the resolver reports cycles on their members once, follows pinned sources (probe,
unpin) and pushes a source's new revision to its Kustomizations when a cycle keeps Flux from doing it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from ctlruntime.api import KubeApi
from fluxmodel.conditions import artifact_revision
from fluxmodel.kinds import ObjectRef
from recovery import decisions, events
from recovery.actions.base import request_reconcile
from recovery.actions.sources import PROBE_FOR, check_pin
from recovery.dependencies import dependencies_ready, kick_after_source_change
from recovery.metrics import Metrics
from recovery.monitor import Monitor
from recovery.state import ObjectState, StateStore

SOURCE_KICKS = 5  # times a source change is pushed to its Kustomizations past a cycle


class ChainResolver:
    def __init__(
        self,
        kube: KubeApi,
        monitor: Monitor,
        store: StateStore,
        recorder: events.Recorder,
        metrics: Metrics,
        requeue: Callable[[ObjectRef, float], None],
        dry_run: bool,
        clock: Callable[[], float],
    ):
        self.kube, self.monitor, self.store, self.recorder, self.metrics = kube, monitor, store, recorder, metrics
        self.requeue, self.dry_run, self.clock = requeue, dry_run, clock
        self._lock = threading.Lock()
        self._kicks: dict[ObjectRef, tuple[str, bool]] = {}
        self._cycles_reported: dict[ObjectRef, str] = {}
        self._source_revisions: dict[ObjectRef, str | None] = {}
        self._source_pending: dict[ObjectRef, tuple[str, int]] = {}

    def kick(self, ref: ObjectRef, why: str, *, even_if_ready: bool = False) -> None:
        """Ask for `ref` to be reconciled now (its worker checks its dependencies again first)."""
        with self._lock:
            self._kicks[ref] = (why, even_if_ready)
        self.requeue(ref, 0.0)

    def pop_kick(self, ref: ObjectRef) -> tuple[str, bool] | None:
        with self._lock:
            return self._kicks.pop(ref, None)

    def reconcile_now(self, ref: ObjectRef, obj: dict[str, Any], why: str, state: ObjectState) -> None:
        """The kicked object's worker: request a reconcile if Flux would let it past its dependencies now."""
        if not dependencies_ready(ref, self.monitor.graph(), *self.monitor.snapshot())[0]:
            return
        if self.dry_run:
            decisions.record(ref, "dependency-chain", "reconcile_dependents", "dry-run", why)
            return
        token = request_reconcile(self.kube, obj)
        state.awaiting = {
            "token": token,
            "since": self.clock(),
            "action": "reconcile_dependents",
            "pattern": "dependency-chain",
        }
        self.metrics.actions.labels(ref.kind, "reconcile_dependents", "started").inc()
        self.recorder.emit(
            obj,
            events.ACTION,
            f"reconcile_dependents: {why}",
        )
        decisions.record(ref, "dependency-chain", "reconcile_dependents", "done", why)

    def report_cycles(self) -> None:
        cycles = self.monitor.cycles().members
        with self._lock:
            new = {r: c for r, c in cycles.items() if self._cycles_reported.get(r) != c}
            self._cycles_reported = dict(cycles)
        for ref, text in new.items():
            obj = self.monitor.get(ref)
            decisions.record(ref, "dependency-cycle", "report", "reported", text)
            if obj is not None and not self.dry_run:
                self.recorder.emit(
                    obj,
                    events.CYCLE,
                    f"dependsOn cycle: {text}. Flux reports nothing and waits forever; kustomize-controller also stops "
                    "enqueuing this source's Kustomizations on new revisions. Break the cycle in Git.",
                    warning=True,
                )

    def source(self, ref: ObjectRef) -> None:
        """A GitRepository changed: follow its pin, push a new revision past a cycle."""
        src = self.monitor.get(ref)
        if src is None:
            return
        parent = ((src.get("metadata") or {}).get("labels") or {}).get(PROBE_FOR)
        if parent:
            self.requeue(ObjectRef(ref.kind, ref.namespace, parent), 0.0)
            return
        state = self.store.get(ref)
        if state.pin and not self.dry_run:
            probe = self.monitor.get(ObjectRef(ref.kind, ref.namespace, str(state.pin.get("probe"))))
            summary = check_pin(self.kube, state, src, probe, self.clock())
            if summary:
                self.store.save(state)
                decisions.record(ref, "pin", "rollback_to_last_good_revision", "updated", summary)
                self.recorder.emit(src, events.ACTION, summary)
            if state.pin and state.pin.get("retry_at") is not None:
                self.requeue(ref, max(0.0, float(state.pin["retry_at"]) - self.clock()))
        revision = artifact_revision(src)
        with self._lock:
            if revision and self._source_revisions.get(ref, revision) != revision:
                self._source_pending[ref] = (revision, 0)
            self._source_revisions[ref] = revision
            pending = self._source_pending.get(ref)
        if pending is not None and pending[0] == revision:
            self._follow_source(ref, revision, pending[1])

    def _follow_source(self, ref: ObjectRef, revision: str, tries: int) -> None:
        """Reconcile a source's Kustomizations past a cycle until each has attempted `revision` (a request can
        be handled from a cache that has not seen the new artifact yet, so check and ask again, a few times)."""
        objects, _ = self.monitor.snapshot()
        cycles = self.monitor.cycles()
        behind = kick_after_source_change(ref, revision, self.monitor.graph(), cycles, objects)
        movable = [k for k in behind if k not in cycles.members or tries == 0]
        if not movable or tries >= SOURCE_KICKS:
            with self._lock:
                self._source_pending.pop(ref, None)
            return
        why = (
            f"{ref} moved to {revision}, but a dependsOn cycle stops kustomize-controller from enqueuing its "
            "Kustomizations; reconciling now"
        )
        for k in movable:
            self.kick(k, why, even_if_ready=True)
        with self._lock:
            self._source_pending[ref] = (revision, tries + 1)
        self.requeue(ref, 3.0)
