"""The life of a controller process: metrics first, a wait for the API server, workers on a queue, one Lease.

Metrics are served before the API server answers (ctlruntime.startup waits, up to --startup-timeout). Watching
starts before the Lease is won, so a standby instance has warm caches and serves metrics; only the Lease holder
acts. A clean stop finishes the current steps, releases the Lease and returns 0. The recovery operator and the
stage controller are both run so; each says what it reads at startup, what it watches and how it handles a key.
"""

from __future__ import annotations

import abc
import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from ctlruntime import startup
from ctlruntime.api import KubeApi
from ctlruntime.lease import LeaderElector
from ctlruntime.probes import MetricsServer
from ctlruntime.scope import EVERYTHING, Scope
from ctlruntime.workqueue import WorkQueue
from fluxmodel.kinds import FLUX_NAMESPACE
from foundation.errors import UserError

log = logging.getLogger("ctlruntime.controller")


def _identity() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


@dataclass
class RuntimeConfig:
    """What every controller is told by its flags."""

    namespaces: list[str] = field(default_factory=list)  # empty: all namespaces
    scope: Scope = EVERYTHING  # only objects matching --selector
    state_namespace: str = FLUX_NAMESPACE  # the Lease (and the operator's state)
    metrics_host: str | None = "127.0.0.1"
    metrics_port: int = 0
    workers: int = 8
    lease_duration: float = 15.0
    startup_timeout: float = 120.0
    api_server: str = "(unnamed)"  # where the client points and from which kubeconfig, for messages
    identity: str = field(default_factory=_identity)


class Controller(abc.ABC):
    """Runs `process(key)` for each key its watches queue, on `config.workers` threads, while it holds the Lease."""

    def __init__(self, kube: KubeApi, config: RuntimeConfig, metrics: MetricsServer, lease_name: str):
        self.kube = kube
        self.config = config
        self.metrics = metrics
        self.stop = threading.Event()
        self.queue = WorkQueue()
        self.leader = False
        self.port: int | None = None
        self.elector = LeaderElector(
            kube,
            config.state_namespace,
            config.identity,
            name=config.scope.name(lease_name),
            duration=config.lease_duration,
            annotations=config.scope.annotations(),
        )
        self._threads: list[threading.Thread] = []

    # -- what a controller says -----------------------------------------------------------------------------
    @abc.abstractmethod
    def _load(self) -> Any:
        """The startup reads (retried while the API server does not answer); None is not a valid result."""

    @abc.abstractmethod
    def _watch(self, loaded: Any) -> dict[str, Any]:
        """Start watching (and any thread of its own) after the startup reads; fields for the `started` line."""

    @abc.abstractmethod
    def process(self, key: Hashable) -> None:
        """Handle one key (never concurrently with itself)."""

    @abc.abstractmethod
    def _on_leadership(self, held: bool) -> None:
        """The Lease was won or lost (`self.leader` already says which)."""

    takes_lease = True  # False: acts at once and never writes a Lease (the operator's dry-run)

    # -- running --------------------------------------------------------------------------------------------
    def run(self) -> int:
        """Start, then block until stop is set (SIGTERM/SIGINT); a clean stop returns 0, whenever it comes."""
        try:
            if self.start():
                self.stop.wait()
        finally:
            self.shutdown()
        return 0

    def start(self) -> bool:
        """Serve metrics, wait for the API server, read, watch, work; False when stopped while waiting.

        UserError when the input is unusable, ApiUnreachable (exit 3) when the API server did not answer within
        the startup timeout."""
        self._serve_metrics()
        self._check()
        loaded = startup.until_answered(
            self._load, timeout=self.config.startup_timeout, stop=self.stop, server=self.config.api_server
        )
        if loaded is None:
            return False
        extra = self._watch(loaded)
        for i in range(max(1, self.config.workers)):
            self._spawn(f"worker-{i}", self._work)
        if self.takes_lease:
            self._spawn("lease", lambda: self.elector.run(self.stop, self._leadership))
        else:
            self._leadership(True)
        fields = {
            "identity": self.config.identity,
            "namespaces": ",".join(self.config.namespaces) or "all",
            "selector": str(self.config.scope),
            "lease": f"{self.config.state_namespace}/{self.elector.name}",
            **extra,
            "metrics": f"{self.config.metrics_host}:{self.port}" if self.port else "off",
        }
        log.info("started", extra={"fields": fields})
        self.metrics.ready.set()
        return True

    def _check(self) -> None:
        """What to check before waiting for the API server (default: nothing)."""
        return None

    def shutdown(self) -> None:
        self.stop.set()
        self.queue.shutdown()
        for thread in self._threads:
            thread.join(timeout=10)
        if self.takes_lease:
            self.elector.release()
        self.metrics.stop()
        log.info("stopped", extra={"fields": {"identity": self.config.identity}})

    def _serve_metrics(self) -> None:
        host, port = self.config.metrics_host, self.config.metrics_port
        if host is None:
            return
        try:
            self.port = self.metrics.serve(host, port)
        except OSError as e:
            addr = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            raise UserError(
                f"--metrics-addr {addr}: cannot listen ({e.strerror}); give a local address and a free port"
            ) from e

    # -- threads --------------------------------------------------------------------------------------------
    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _work(self) -> None:
        while not self.stop.is_set():
            key = self.queue.get(timeout=0.5)
            if key is None:
                continue
            try:
                self.process(key)
            except Exception:
                log.exception("processing %s failed; retrying in 5s", key)
                self.queue.add(key, 5.0)
            finally:
                self.queue.done(key)

    def _leadership(self, held: bool) -> None:
        self.leader = held
        self._on_leadership(held)
