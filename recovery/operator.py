"""`resilience recover`: the monitor, the workers, the Lease, the metrics server and pattern reloads, wired.

Run as every controller here (ctlruntime.controller): metrics first, a wait for the API server, warm caches in a
standby, only the Lease holder writes anything. With a scope (--selector) the instance sees and changes only
matching objects and holds a Lease and state ConfigMaps of its own (ctlruntime.scope), so instances for different
recovery modes run side by side.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ctlruntime.controller import Controller, RuntimeConfig
from fluxmodel.kinds import ObjectRef
from foundation.errors import UserError
from kubeapi import ApiError, Forbidden, Kube
from recovery import decisions, deference, events
from recovery.config import PatternSource
from recovery.errors import PatternError
from recovery.metrics import Metrics, View
from recovery.monitor import Monitor
from recovery.patterns import PatternSet
from recovery.reconciler import Options, Reconciler
from recovery.state import StateStore

LEASE_NAME = "gitops-resilience-operator"
log = logging.getLogger("recovery.operator")


@dataclass
class Config(RuntimeConfig):
    patterns_file: Path | None = None
    dry_run: bool = False
    settle: float = 300.0
    flux_grace: float = deference.FLUX_GRACE_SECONDS
    config_poll: float = 2.0


class Operator(Controller):
    config: Config
    metrics: Metrics

    def __init__(self, kube: Kube, config: Config):
        super().__init__(kube, config, Metrics(self.view), LEASE_NAME)
        self.config_valid = True
        self.source = PatternSource(kube, config.state_namespace, config.patterns_file)
        self.patterns: PatternSet | None = None
        self.store = StateStore(kube, config.state_namespace, persist=not config.dry_run, scope=config.scope)
        self.monitor = Monitor(kube, config.namespaces or [None], last_ready=self._last_ready, scope=config.scope)
        self.reconciler = Reconciler(
            kube,
            self.monitor,
            self.store,
            events.Recorder(kube, enabled=not config.dry_run, instance=config.identity),
            self.metrics,
            self.queue.add,
            self.current_patterns,
            lambda: self.leader,
            Options(dry_run=config.dry_run, settle=config.settle, scope=config.scope, flux_grace=config.flux_grace),
        )
        self.takes_lease = not config.dry_run  # dry-run writes nothing, so it needs (and takes) no Lease

    def current_patterns(self) -> PatternSet:
        assert self.patterns is not None
        return self.patterns

    def _watch(self, loaded: Any) -> dict[str, Any]:
        self.monitor.on_change = lambda ref, old, new: self.queue.add(ref)
        self.monitor.start(self.stop)
        self._spawn("config", self._poll_config)
        patterns = self.current_patterns()
        return {
            "patterns": f"{len(patterns.patterns)} from {patterns.source}",
            "states": loaded,
            "dry_run": self.config.dry_run,
        }

    def _load(self) -> int:
        """The startup reads: the API server answers, the patterns, the states (how many)."""
        where = f"the API server {self.config.api_server}"
        try:
            try:
                self.kube.ping()
            except Forbidden as e:  # 403: it answers; the reads below show whether RBAC suffices
                if e.status == 401:
                    raise UserError(f"{where} refused the credentials ({e.message}); fix the kubeconfig's user") from e
            self.patterns = self.source.load()
            return self.store.load()
        except Forbidden as e:
            raise UserError(
                f"cannot read ConfigMaps in {self.config.state_namespace}: {e.message}; grant the operator the "
                "shipped Role (recovery/manifests/rbac.yaml) or pick --state-namespace"
            ) from e
        except ApiError as e:
            if e.retryable:
                raise
            raise UserError(f"{where} refused a startup read: {e}") from e

    def process(self, key: Hashable) -> None:
        assert isinstance(key, ObjectRef)
        self.reconciler.process(key)

    def _on_leadership(self, held: bool) -> None:
        decisions.record("lease", "-", "-", "acquired" if held else "lost", self.config.identity)
        if held:
            objects, sources = self.monitor.snapshot()
            for ref in [*objects, *sources, *self.store.known()]:
                self.queue.add(ref)

    def _poll_config(self) -> None:
        while not self.stop.wait(self.config.config_poll):
            try:
                patterns = self.source.poll()
            except PatternError as e:
                self.config_valid = False
                log.error("refused new patterns, keeping the old ones: %s", e)
                continue
            except Exception as e:  # the API may be briefly unreachable; keep the patterns we have
                log.warning("could not read the patterns from %s: %s", self.source.where, e)
                continue
            if patterns is not None:
                self.patterns = patterns
                self.config_valid = True
                log.info(
                    "reloaded patterns", extra={"fields": {"count": len(patterns.patterns), "source": patterns.source}}
                )
                objects, _ = self.monitor.snapshot()
                for ref in objects:
                    self.queue.add(ref)

    # -- views -------------------------------------------------------------------------------------------
    def _last_ready(self, ref: ObjectRef) -> float | None:
        return self.store.get(ref).last_successful_timestamp if ref in self.store.known() else None

    def view(self) -> View:
        attempts, pins = {}, {}
        for ref in self.store.known():
            state = self.store.get(ref)
            if state.recovery_attempts:
                attempts[ref] = state.recovery_attempts
            if state.pin:
                pins[ref] = str(state.pin.get("revision"))
        return View(
            now=time.time(),
            healths=self.monitor.healths(),
            attempts=attempts,
            cycles=self.monitor.cycles().members,
            blocked=self.monitor.blocked(),
            pins=pins,
            leader=self.leader,
            patterns=len(self.patterns.patterns) if self.patterns else 0,
            config_valid=self.config_valid,
            watch_events=self.monitor.events_seen,
        )
