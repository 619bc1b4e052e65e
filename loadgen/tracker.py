"""When is a delivery done: at the watch event that completed it, not at the next poll.

One watch of the Flux namespace's Kustomizations and of the teams' ConfigMaps serves every user of the load
process; each event re-checks the pending delivery of the team it concerns, and a delivery's done time is the
event's receipt (monotonic), so latency is resolved to the API server's event latency at no polling cost.
In the load process, threading is gevent's (locust monkey-patches it): the same code waits cooperatively.
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
    token: str
    revision: str
    done: threading.Event = field(default_factory=threading.Event)
    done_at: float | None = None


class DeliveryTracker:
    def __init__(self, kube: Kube, git: Repository, teams: list[Team], flux_namespace: str):
        self.git, self.flux_namespace = git, flux_namespace
        self._by_kustomization = {t.kustomization: t for t in teams}
        self._by_configmap = {(t.namespace, t.configmap): t for t in teams}
        self._pending: dict[str, Pending] = {}
        self._lock = threading.Lock()
        targets = [Target(KUSTOMIZATION.api_version, KUSTOMIZATION.kind, flux_namespace)]
        targets += [Target("v1", "ConfigMap", ns) for ns in sorted({t.namespace for t in teams})]
        self.cache = WatchCache(kube, targets, self._on_change)

    def start(self) -> DeliveryTracker:
        self.cache.start()
        return self

    def stop(self) -> None:
        self.cache.stop()

    def expect(self, team: Team, token: str, revision: str) -> Pending:
        """Track the delivery of `token` (committed as `revision`); checked at once and at every event."""
        pending = Pending(team, token, revision)
        with self._lock:
            self._pending[team.name] = pending
        self._evaluate(team, time.monotonic())
        return pending

    def wait(self, pending: Pending, timeout: float) -> float | None:
        """The monotonic time the delivery was done, or None when it was not within `timeout` seconds."""
        pending.done.wait(timeout)
        with self._lock:
            if self._pending.get(pending.team.name) is pending:
                del self._pending[pending.team.name]
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
            pending = self._pending.get(team.name)
        if pending is None or pending.done.is_set():
            return
        ks = self.cache.get(KUSTOMIZATION.api_version, KUSTOMIZATION.kind, team.kustomization, self.flux_namespace)
        configmap = self.cache.get("v1", "ConfigMap", team.configmap, team.namespace)
        if delivered(ks, configmap, pending.token, pending.revision, self.git):
            with self._lock:  # the first event that completed it wins
                if not pending.done.is_set():
                    pending.done_at = at
                    pending.done.set()
