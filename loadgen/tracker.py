"""When is a delivery done: at the watch event that completed it, not at the next poll.

One watch of the Flux namespace's Kustomizations and of the teams' ConfigMaps serves every user of the load
process; each event re-checks the deliveries in flight of the team it concerns (several, when Flux is slower
than the team commits), and a delivery's done time is the event's receipt (monotonic), so latency is resolved
to the API server's event latency at no polling cost. In the load process, threading is gevent's (locust
monkey-patches it): the same code waits cooperatively.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from assertions.watch import Target, WatchCache
from fluxmodel.kinds import KUSTOMIZATION
from kubeapi import Kube
from loadgen.teams import Repository, Team, delivered


@dataclass
class Pending:
    team: Team
    sequence: int
    revision: str
    committed: float = field(default_factory=time.monotonic)
    done: threading.Event = field(default_factory=threading.Event)
    done_at: float | None = None


class DeliveryTracker:
    def __init__(self, kube: Kube, git: Repository, teams: list[Team], flux_namespace: str):
        self.git, self.flux_namespace = git, flux_namespace
        self._by_kustomization = {t.kustomization: t for t in teams}
        self._by_configmap = {(t.namespace, t.configmap): t for t in teams}
        self._pending: dict[str, list[Pending]] = {t.name: [] for t in teams}
        self._lock = threading.Lock()
        targets = [Target(KUSTOMIZATION.api_version, KUSTOMIZATION.kind, flux_namespace)]
        targets += [Target("v1", "ConfigMap", ns) for ns in sorted({t.namespace for t in teams})]
        self.cache = WatchCache(kube, targets, self._on_change)

    def start(self) -> DeliveryTracker:
        self.cache.start()
        return self

    def stop(self) -> None:
        self.cache.stop()

    def expect(self, team: Team, sequence: int, revision: str) -> Pending:
        """Track delivery number `sequence` of `team` (committed as `revision`, just now); checked at once and
        at every event about the team."""
        pending = Pending(team, sequence, revision)
        with self._lock:
            self._pending[team.name].append(pending)
        self._evaluate(team, time.monotonic())
        return pending

    def wait(self, pending: Pending, timeout: float) -> float | None:
        """The monotonic time the delivery was done, or None when it was not within `timeout` seconds of its
        commit (it is no longer tracked then)."""
        pending.done.wait(max(0.0, pending.committed + timeout - time.monotonic()))
        with self._lock:
            waiting = self._pending[pending.team.name]
            if pending in waiting:
                waiting.remove(pending)
        return pending.done_at

    def _on_change(self, _event_type: str, obj: dict[str, Any], received: float) -> None:
        meta = obj.get("metadata") or {}
        if obj.get("kind") == KUSTOMIZATION.kind:
            team = self._by_kustomization.get(str(meta.get("name")))
        else:
            team = self._by_configmap.get((str(meta.get("namespace")), str(meta.get("name"))))
        if team is not None:
            self._evaluate(team, received)

    def _evaluate(self, team: Team, at: float) -> None:
        with self._lock:
            waiting = [p for p in self._pending[team.name] if not p.done.is_set()]
        if not waiting:
            return
        ks = self.cache.get(KUSTOMIZATION.api_version, KUSTOMIZATION.kind, team.kustomization, self.flux_namespace)
        configmap = self.cache.get("v1", "ConfigMap", team.configmap, team.namespace)
        for pending in waiting:
            if delivered(ks, configmap, pending.sequence, pending.revision, self.git):
                with self._lock:  # the first event that completed it wins
                    if not pending.done.is_set():
                        pending.done_at = at
                        pending.done.set()
