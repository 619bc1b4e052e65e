"""The reconciliation health monitor: watches Kustomizations, HelmReleases and GitRepositories, keeps Health.

Informers feed a thread-safe view of every Flux object (the object, its Health, its dependsOn graph and
cycles); each change is handed to `on_change` (the operator's queue). Metrics are read from this view.
With a scope (--selector) only matching Kustomizations and HelmReleases are listed and watched, so nothing
downstream (actions, dependency chains, cycle Events, metrics) ever sees another instance's objects; a
dependency outside the scope is unknown here, so a dependent waiting for it is left to Flux.
GitRepositories are watched unfiltered: they carry no mode label, and are only read (pins check their users).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from ctlruntime.api import KubeApi
from ctlruntime.informer import Informer
from ctlruntime.scope import EVERYTHING, Scope
from fluxmodel.graph import DependencyGraph
from fluxmodel.kinds import GIT_REPOSITORY, HELM_RELEASE, KUSTOMIZATION, ObjectRef
from recovery.dependencies import CycleReport, blocked
from recovery.health import Health, observe, with_last_ready

FLUX_KINDS = (KUSTOMIZATION, HELM_RELEASE)
WATCHED = (KUSTOMIZATION, HELM_RELEASE, GIT_REPOSITORY)

Change = Callable[[ObjectRef, Health | None, Health | None], None]


class Monitor:
    """The latest object and Health per Flux object, the sources, and the dependency graph."""

    def __init__(
        self,
        kube: KubeApi,
        namespaces: Iterable[str | None] = (None,),
        clock: Callable[[], float] = time.time,
        last_ready: Callable[[ObjectRef], float | None] = lambda ref: None,
        scope: Scope = EVERYTHING,
    ):
        self.kube = kube
        self.scope = scope
        self.namespaces = list(namespaces) or [None]
        self.clock = clock
        self.last_ready = last_ready
        self.on_change: Change = lambda ref, old, new: None
        self._lock = threading.RLock()
        self.objects: dict[ObjectRef, dict[str, Any]] = {}
        self.health: dict[ObjectRef, Health] = {}
        self.sources: dict[ObjectRef, dict[str, Any]] = {}
        self._graph: DependencyGraph | None = None
        self._cycles: CycleReport | None = None
        self.informers: list[Informer] = []
        self.events_seen = 0

    # -- informers ---------------------------------------------------------------------------------------
    def start(self, stop: threading.Event) -> None:
        for kind in WATCHED:
            selector = self.scope.label_selector if kind in FLUX_KINDS else None
            for ns in self.namespaces:
                informer = Informer(
                    self.kube,
                    kind.api_version,
                    kind.kind,
                    ns,
                    self._lister(kind.kind, ns),
                    self.update,
                    stop,
                    selector,
                )
                self.informers.append(informer)
                informer.start()

    def _lister(self, kind: str, namespace: str | None) -> Callable[[list[dict[str, Any]]], None]:
        return lambda items: self.replace(kind, namespace, items)

    def wait_synced(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        return all(i.synced.wait(max(0.0, deadline - time.monotonic())) for i in self.informers)

    # -- changes -----------------------------------------------------------------------------------------
    def replace(self, kind: str, namespace: str | None, items: list[dict[str, Any]]) -> None:
        """A fresh list of `kind` in `namespace`: update all, forget the ones gone."""
        seen = set()
        for obj in items:
            seen.add(ObjectRef.of(obj))
            self.update("ADDED", obj)
        with self._lock:
            table = self.sources if kind == GIT_REPOSITORY.kind else self.objects
            gone = [r for r in table if r.kind == kind and (namespace is None or r.namespace == namespace)]
        for ref in gone:
            if ref not in seen:
                self.update("DELETED", {"kind": kind, "metadata": {"name": ref.name, "namespace": ref.namespace}})

    def update(self, event: str, obj: dict[str, Any]) -> None:
        ref = ObjectRef.of(obj)
        if ref.kind != GIT_REPOSITORY.kind and not self.scope.covers(obj):
            event = "DELETED"  # the server filters already; this keeps the rule whatever delivered the object
        now = self.clock()
        old: Health | None
        new: Health | None
        with self._lock:
            self.events_seen += 1
            if ref.kind == GIT_REPOSITORY.kind:
                if event == "DELETED":
                    self.sources.pop(ref, None)
                else:
                    self.sources[ref] = obj
                old = new = None
            elif event == "DELETED":
                self.objects.pop(ref, None)
                old, new = self.health.pop(ref, None), None
                self._graph = None
            else:
                old = self.health.get(ref)
                new = observe(obj, old, now)
                if new.last_ready_at is None:
                    restored = self.last_ready(ref)
                    if restored is not None:
                        new = with_last_ready(new, restored)
                if old is None or old.depends_on != new.depends_on:
                    self._graph = None
                self.objects[ref] = obj
                self.health[ref] = new
        self.on_change(ref, old, new)

    # -- reads -------------------------------------------------------------------------------------------
    def get(self, ref: ObjectRef) -> dict[str, Any] | None:
        with self._lock:
            return self.objects.get(ref) or self.sources.get(ref)

    def healths(self) -> list[Health]:
        with self._lock:
            return list(self.health.values())

    def snapshot(self) -> tuple[dict[ObjectRef, dict[str, Any]], dict[ObjectRef, dict[str, Any]]]:
        """Shallow copies of the objects and sources tables."""
        with self._lock:
            return dict(self.objects), dict(self.sources)

    def graph(self) -> DependencyGraph:
        with self._lock:
            if self._graph is None:
                self._graph = DependencyGraph.from_objects(self.objects.values())
                self._cycles = CycleReport.of(self._graph)
            return self._graph

    def cycles(self) -> CycleReport:
        with self._lock:
            self.graph()
            assert self._cycles is not None
            return self._cycles

    def blocked(self) -> dict[ObjectRef, int]:
        with self._lock:
            failing = {r for r, h in self.health.items() if not h.ready and not h.suspended}
            return blocked(self.graph(), failing)
