"""`resilience recover`: the monitor, the workers, the Lease, the metrics server and pattern reloads, wired.

Metrics are served first, then the instance waits for the API server (recovery.startup, --startup-timeout).
Watching starts before the Lease is won, so a standby instance has warm caches and serves metrics; only the
Lease holder writes anything. A clean stop finishes the current steps, releases the Lease and exits 0.
With a scope (--selector) the instance sees and changes only matching objects and holds a Lease and state
ConfigMaps of its own (recovery.scope), so instances for different recovery modes run side by side.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from fluxmodel.kinds import FLUX_NAMESPACE, ObjectRef
from foundation.errors import UserError
from kubeapi import ApiError, Forbidden, Kube
from recovery import events, logs, startup
from recovery.config import PatternSource
from recovery.errors import PatternError
from recovery.lease import NAME as LEASE_NAME
from recovery.lease import LeaderElector
from recovery.metrics import Metrics, View
from recovery.monitor import Monitor
from recovery.patterns import PatternSet
from recovery.reconciler import Options, Reconciler
from recovery.scope import EVERYTHING, Scope
from recovery.state import StateStore
from recovery.workqueue import WorkQueue

log = logging.getLogger("recovery.operator")


@dataclass
class Config:
    namespaces: list[str] = field(default_factory=list)  # empty: all namespaces
    scope: Scope = EVERYTHING  # only Flux objects matching --selector
    state_namespace: str = FLUX_NAMESPACE
    patterns_file: Path | None = None
    metrics_host: str | None = "127.0.0.1"
    metrics_port: int = 0
    dry_run: bool = False
    workers: int = 8
    lease_duration: float = 15.0
    settle: float = 300.0
    startup_timeout: float = 120.0
    api_server: str = "(unnamed)"  # where the client points and from which kubeconfig, for messages
    config_poll: float = 2.0
    identity: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}")


class Operator:
    def __init__(self, kube: Kube, config: Config):
        self.kube = kube
        self.config = config
        self.stop = threading.Event()
        self.queue = WorkQueue()
        self.leader = False
        self.config_valid = True
        self.source = PatternSource(kube, config.state_namespace, config.patterns_file)
        self.patterns: PatternSet | None = None
        self.store = StateStore(kube, config.state_namespace, persist=not config.dry_run, scope=config.scope)
        self.monitor = Monitor(kube, config.namespaces or [None], last_ready=self._last_ready, scope=config.scope)
        self.metrics = Metrics(self.view)
        self.port: int | None = None
        self.reconciler = Reconciler(
            kube,
            self.monitor,
            self.store,
            events.Recorder(kube, enabled=not config.dry_run, instance=config.identity),
            self.metrics,
            self.queue.add,
            self.current_patterns,
            lambda: self.leader,
            Options(dry_run=config.dry_run, settle=config.settle, scope=config.scope),
        )
        self.elector = LeaderElector(
            kube,
            config.state_namespace,
            config.identity,
            name=config.scope.name(LEASE_NAME),
            duration=config.lease_duration,
            annotations=config.scope.annotations(),
        )
        self._threads: list[threading.Thread] = []

    def current_patterns(self) -> PatternSet:
        assert self.patterns is not None
        return self.patterns

    def start(self) -> bool:
        """Serve metrics, wait for the API server, load patterns and state, start watching and working.

        False when stopped while waiting; UserError when the input is unusable, ApiUnreachable (exit 3) when the
        API server did not answer within the startup timeout."""
        host, port = self.config.metrics_host, self.config.metrics_port
        if host is not None:
            try:
                self.port = self.metrics.serve(host, port)
            except OSError as e:
                addr = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
                raise UserError(
                    f"--metrics-addr {addr}: cannot listen ({e.strerror}); give a local address and a free port"
                ) from e
        loaded = startup.until_answered(
            self._load, timeout=self.config.startup_timeout, stop=self.stop, server=self.config.api_server
        )
        if loaded is None:
            return False
        self.monitor.on_change = lambda ref, old, new: self.queue.add(ref)
        self.monitor.start(self.stop)
        log.info(
            "started",
            extra={
                "fields": {
                    "identity": self.config.identity,
                    "namespaces": ",".join(self.config.namespaces) or "all",
                    "selector": str(self.config.scope),
                    "lease": f"{self.config.state_namespace}/{self.elector.name}",
                    "patterns": f"{len(self.current_patterns().patterns)} from {self.current_patterns().source}",
                    "states": loaded,
                    "metrics": f"{self.config.metrics_host}:{self.port}" if self.port else "off",
                    "dry_run": self.config.dry_run,
                }
            },
        )
        for i in range(max(1, self.config.workers)):
            self._spawn(f"worker-{i}", self._work)
        if self.config.dry_run:
            self._leadership(True)  # dry-run writes nothing, so it needs (and takes) no Lease
        else:
            self._spawn("lease", lambda: self.elector.run(self.stop, self._leadership))
        self._spawn("config", self._poll_config)
        self.metrics.ready.set()
        return True

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

    def run(self) -> int:
        """Start, then block until stop is set (SIGTERM/SIGINT); a clean stop returns 0, whenever it comes."""
        try:
            if self.start():
                self.stop.wait()
        finally:
            self.shutdown()
        return 0

    def shutdown(self) -> None:
        self.stop.set()
        self.queue.shutdown()
        for thread in self._threads:
            thread.join(timeout=10)
        if not self.config.dry_run:
            self.elector.release()
        self.metrics.stop()
        log.info("stopped", extra={"fields": {"identity": self.config.identity}})

    # -- threads -----------------------------------------------------------------------------------------
    def _spawn(self, name: str, target: object) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)  # type: ignore[arg-type]
        self._threads.append(thread)
        thread.start()

    def _work(self) -> None:
        while not self.stop.is_set():
            ref = self.queue.get(timeout=0.5)
            if ref is None:
                continue
            try:
                assert isinstance(ref, ObjectRef)
                self.reconciler.process(ref)
            except Exception:
                log.exception("processing %s failed; retrying in 5s", ref)
                self.queue.add(ref, 5.0)
            finally:
                self.queue.done(ref)

    def _leadership(self, held: bool) -> None:
        self.leader = held
        logs.decision("lease", "-", "-", "acquired" if held else "lost", self.config.identity)
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
