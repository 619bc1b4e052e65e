"""The recovery under test: none | flux-native | flux-tuned | operator | staged | command:<cmd> | manifest:<path>.

The same scenario runs under each, so a report can put their TTRs side by side. A mode may decorate the Flux
objects a fault sets up (flux-native turns on Flux's own knobs) and may run something beside the cluster for
the whole session (the operator, a user's command) or inside it (a manifest).

`flux-tuned` is Flux at its best (fluxmodel.tuned): every recovery knob on the run's objects, and its runs reconciled
by the cluster's tuned shard of kustomize- and helm-controller (Flux's recovery gates, a 5 s dependency requeue),
which the default controllers leave alone; the judge checks from the controllers' logs that they did.

Each run is measured under its own mode alone: every Flux object a run creates carries its mode in the label
resilience.gitops.io/recovery, and the operator is started scoped to `...=operator`, so in a session (or on a
shared cluster) running several modes it never acts on a `none` or `flux-native` run. `staged` runs the stage
controller (`resilience stage`), scoped the same way, for the faults written for stages (injectors.staged). On a
cluster several workers share, each worker's operator and stage controller are also scoped to their own
session's objects (SESSION_LABEL), so they never act on another worker's runs, and none waits for another's Lease
when that worker's session ends.

With monitoring, the alert rules need the operator's per-object metrics in every mode, as a deployed operator
would export them: the operator mode's operator is scraped as it runs (the stage controller too, under `staged`,
for its own rollback and stage metrics); every other mode gets a read-only monitor
(the operator in --dry-run, scoped to that mode's label: no Lease, no Events, no writes), whose decisions
Prometheus drops (monitoring.stack.local), so only the objects' state reaches the rules.
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import yaml

from assertions.modes import RECOVERY_MODES_BUILTIN, RECOVERY_MODES_HELP
from clusters.model import Cluster
from fluxmodel import native, tuned
from fluxmodel.annotations import RECOVERY_MODE_LABEL, reconcile_request
from fluxmodel.kinds import GIT_REPOSITORY, STAGED_KUSTOMIZATION
from foundation.errors import HarnessError, UserError
from foundation.ports import ephemeral_port
from foundation.processes import Child, http_ready, log_tail, spawn, stop_all
from monitoring.stack.handle import MONITOR_JOB, OPERATOR_JOB, STAGES_JOB

if TYPE_CHECKING:
    from injectors.base import FaultContext

BUILTIN = RECOVERY_MODES_BUILTIN
READY_TIMEOUT = 30.0
# The session (cluster and xdist worker) whose operator or stage controller may act on an object.
SESSION_LABEL = "resilience.gitops.io/session"


@dataclass
class RecoveryMode:
    """Base: no recovery (Flux alone), nothing started, objects unchanged."""

    name: str = "none"
    process: Child | None = field(default=None, repr=False)
    log: Path | None = None
    # The read-only monitor exporting the mode's objects' metrics (monitoring only; the operator exports its own).
    monitor: Child | None = field(default=None, repr=False)
    monitor_log: Path | None = None
    scraped: list[Path] = field(default_factory=list, repr=False)  # scrape target files, removed on stop
    session: str | None = None  # set by a mode that acts by label (operator, stage controller) when it starts
    # The Flux shard that reconciles this mode's runs (fluxmodel.tuned), None: the cluster's default controllers.
    shard: ClassVar[str | None] = None

    @property
    def label(self) -> str:
        """The value of RECOVERY_MODE_LABEL on this mode's objects (a label value: command:/manifest: lose the spec)."""
        return self.name.split(":", 1)[0]

    def selector(self) -> str:
        """The objects this mode's processes act on: its mode's, of its own session once started."""
        session = f",{SESSION_LABEL}={self.session}" if self.session else ""
        return f"{RECOVERY_MODE_LABEL}={self.label}{session}"

    def decorate(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Mark a run's Flux object with its mode, so only this mode's recovery acts on it."""
        labels = obj.setdefault("metadata", {}).setdefault("labels", {})
        labels[RECOVERY_MODE_LABEL] = self.label
        if self.session:
            labels[SESSION_LABEL] = self.session
        return obj

    def start(self, cluster: Cluster, run_dir: Path) -> None:
        """Start whatever runs beside the cluster for the session (and, with monitoring, the mode's monitor)."""
        self.start_monitor(cluster, run_dir)

    def controller(self, component: str) -> str:
        """The process of Flux controller `component` that reconciles this mode's runs (what a crash must kill)."""
        return component

    def after_push(self, ctx: FaultContext) -> None:
        """Called after each commit a run pushes (nothing, unless the mode has a push webhook)."""

    def start_monitor(self, cluster: Cluster, run_dir: Path) -> None:
        """With monitoring: the operator in --dry-run over this mode's objects, scraped as the mode's exporter."""
        if cluster.monitoring is None:
            return
        port = ephemeral_port()
        argv = [*_resilience_argv(cluster, ("recover",), port, self.selector()), "--dry-run", "--log-format", "json"]
        self.monitor_log = run_dir / f"monitor-{self.label}.log"
        self.monitor = _spawn(argv, cluster, self.monitor_log, "the metrics monitor")
        _await_ready(port, self.monitor)
        target = f"127.0.0.1:{port}"
        name = f"{self.label}-{self.monitor.pid}"
        self.scraped.append(cluster.monitoring.scrape(MONITOR_JOB, name, target, self._labels()))

    def _labels(self) -> dict[str, str]:
        return {"recovery": self.label}

    def stop(self) -> None:
        stop_all([p for p in (self.process, self.monitor) if p is not None], grace=10.0)
        self.process = self.monitor = None
        for path in self.scraped:
            path.unlink(missing_ok=True)
        self.scraped.clear()

    def crash(self) -> int:
        """kill -9 the recovery's process and start it again (only modes that run one can)."""
        raise HarnessError(f"recovery {self.name!r} runs no process of its own to crash")

    def check_alive(self) -> None:
        """HarnessError if the recovery process (or the monitor the alerts depend on) died; its log tail says why."""
        if self.process is not None and self.process.poll() is not None:
            raise HarnessError(f"recovery {self.name!r} exited with {self.process.returncode}: {self.log_tail()}")
        if self.monitor is not None and self.monitor.poll() is not None:
            tail = log_tail(self.monitor_log)
            raise HarnessError(f"the metrics monitor of {self.name!r} exited with {self.monitor.returncode}: {tail}")

    def log_tail(self, lines: int = 5) -> str:
        return log_tail(self.log, lines)

    def _spawn(self, argv: list[str], cluster: Cluster, run_dir: Path, what: str = "") -> Child:
        self.log = run_dir / f"recovery-{self.name.split(':')[0]}.log"
        self.process = _spawn(argv, cluster, self.log, what or f"recovery {self.name!r}")
        return self.process


def _spawn(argv: list[str], cluster: Cluster, log: Path, what: str) -> Child:
    """A process beside the cluster (KUBECONFIG set), killed with this one, its output in `log`."""
    return spawn(argv, log=log, env={"KUBECONFIG": str(cluster.kubeconfig)}, what=what)


def _resilience_argv(cluster: Cluster, command: tuple[str, ...], port: int, selector: str) -> list[str]:
    """`resilience <command>` against the cluster, scoped to `selector`, serving its probes on `port`."""
    argv = [sys.executable, "-m", "resilience.cli", *command, "--kubeconfig", str(cluster.kubeconfig)]
    if cluster.context:
        argv += ["--context", cluster.context]
    argv += ["--metrics-addr", f"127.0.0.1:{port}", "--state-namespace", cluster.bootstrap.flux_namespace]
    return [*argv, "--selector", selector]


def _await_ready(port: int, process: Child) -> None:
    """Wait until `port` answers /readyz (connected, patterns and states read, /metrics served: runs may start);
    HarnessError with the log tail if the process exits first, WaitTimeout with it if time runs out."""
    ready = http_ready(f"http://127.0.0.1:{port}/readyz")
    process.wait_ready(ready, READY_TIMEOUT, f"{process.what} to be ready (/readyz)", interval=0.2)


class FluxNative(RecoveryMode):
    """Flux's own knobs: Kustomization force (re-create on immutable errors), HelmRelease RetryOnFailure."""

    def decorate(self, obj: dict[str, Any]) -> dict[str, Any]:
        return native.decorate(super().decorate(obj))


class FluxTuned(RecoveryMode):
    """Flux at its best (fluxmodel.tuned): Flux's recovery knobs on the run's objects, its runs reconciled by the
    cluster's tuned shard, and each push announced to the run's sources as notification-controller's Receiver would
    (it does nothing but set requestedAt on them)."""

    shard: ClassVar[str | None] = tuned.MODE

    def decorate(self, obj: dict[str, Any]) -> dict[str, Any]:
        return tuned.decorate(super().decorate(obj))

    def controller(self, component: str) -> str:
        return tuned.shard(component)

    def start(self, cluster: Cluster, run_dir: Path) -> None:
        if tuned.MODE not in cluster.flux_shards:
            raise UserError(
                f"cluster {cluster.name!r} runs no {tuned.MODE} shard (started before it existed, or by a provider "
                f"that starts none): start a new local cluster for --recovery {tuned.MODE}"
            )
        super().start(cluster, run_dir)

    def after_push(self, ctx: FaultContext) -> None:
        selector = f"{RECOVERY_MODE_LABEL}={self.label}"
        for repo in ctx.kube.list(GIT_REPOSITORY.api_version, GIT_REPOSITORY.kind, ctx.flux_namespace, selector):
            name = str(repo["metadata"]["name"])
            if name.startswith(ctx.app):
                patch = reconcile_request()
                ctx.kube.merge_patch(GIT_REPOSITORY.api_version, GIT_REPOSITORY.kind, name, ctx.flux_namespace, patch)


class _Process(RecoveryMode):
    """A `resilience` command of the system under test beside the cluster, serving metrics on a port of its own.
    With monitoring, Prometheus scrapes it under `job`; after a crash, its successor on a new port instead (the
    killed one's target would only be down for the rest of the session)."""

    command: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()
    what: str = ""
    job: str = ""
    target: Path | None = None  # the running process's scrape target file

    def start(self, cluster: Cluster, run_dir: Path) -> None:
        self._cluster, self._run_dir = cluster, run_dir
        self.session = f"{cluster.name}.{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
        self._launch(cluster, run_dir)

    def _launch(self, cluster: Cluster, run_dir: Path) -> int:
        """Spawn the process and wait until it is ready; the port it serves its probes and metrics on."""
        port = ephemeral_port()
        argv = [*_resilience_argv(cluster, self.command, port, self.selector()), *self.extra]
        process = self._spawn(argv, cluster, run_dir, f"the {self.what}")
        _await_ready(port, process)
        if cluster.monitoring is not None:
            if self.target is not None:
                self.target.unlink(missing_ok=True)
                self.scraped[:] = [p for p in self.scraped if p != self.target]
            name = f"{self.label}-{process.pid}"
            self.target = cluster.monitoring.scrape(self.job, name, f"127.0.0.1:{port}", self._labels())
            self.scraped.append(self.target)
        return port

    def crash(self) -> int:
        """kill -9, then start again at once (what a Deployment's restart does); the killed pid."""
        if self.process is None:
            raise HarnessError(f"recovery {self.name!r} runs no process to crash")
        pid = self.process.pid
        self.process.signal(signal.SIGKILL)
        self.process.wait(10)
        self._launch(self._cluster, self._run_dir)
        return pid


class Operator(_Process):
    """This project's recovery operator (`resilience recover`) as a process beside the cluster. It exports its own
    metrics: with monitoring, Prometheus scrapes it (and its successor after a crash), and no monitor runs."""

    command = ("recover",)
    what = "recovery operator"
    job = OPERATOR_JOB


class Staged(_Process):
    """This project's stage controller (`resilience stage`) beside the cluster; its CRD comes with the local
    cluster, and is installed here on clusters that lack it. A short Lease, so a crashed one is replaced fast.
    With monitoring, Prometheus scrapes its own metrics (rollbacks, stages); it exports no per-object Flux
    metrics, so a monitor runs beside it."""

    command = ("stage",)
    extra = ("--lease-duration", "3")
    what = "stage controller"
    job = STAGES_JOB

    def start(self, cluster: Cluster, run_dir: Path) -> None:
        crd = f"{STAGED_KUSTOMIZATION.plural}.{STAGED_KUSTOMIZATION.group}"
        if cluster.kube.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", crd) is None:
            text = (resources.files("recovery") / "manifests" / "stagedkustomization-crd.yaml").read_text()
            cluster.kube.apply(yaml.safe_load(text))
        super().start(cluster, run_dir)
        self.start_monitor(cluster, run_dir)


class Command(RecoveryMode):
    """A user's recovery process, started with KUBECONFIG pointing at the cluster."""

    def __init__(self, name: str, argv: list[str]):
        super().__init__(name)
        self.argv = argv

    def start(self, cluster: Cluster, run_dir: Path) -> None:
        self._spawn(self.argv, cluster, run_dir)
        time.sleep(1.0)
        self.check_alive()
        self.start_monitor(cluster, run_dir)


class Manifest(RecoveryMode):
    """Recovery deployed in the cluster from a manifest file (kind/existing providers); removed at the end."""

    def __init__(self, name: str, path: Path):
        super().__init__(name)
        self.path = path
        self.objects: list[dict[str, Any]] = []
        self.cluster: Cluster | None = None

    def start(self, cluster: Cluster, run_dir: Path) -> None:
        self.cluster = cluster
        for obj in self.objects:
            cluster.kube.apply(obj)
        self.start_monitor(cluster, run_dir)

    def stop(self) -> None:
        super().stop()
        if self.cluster is not None:
            for obj in reversed(self.objects):
                meta = obj["metadata"]
                self.cluster.kube.delete(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))


def parse(spec: str, source: str = "--recovery") -> RecoveryMode:
    """A RecoveryMode from its spec; UserError naming where a bad value came from."""
    if spec == "none":
        return RecoveryMode("none")
    if spec == native.MODE:
        return FluxNative(native.MODE)
    if spec == tuned.MODE:
        return FluxTuned(tuned.MODE)
    if spec == "operator":
        return Operator("operator")
    if spec == "staged":
        return Staged("staged")
    if spec.startswith("command:"):
        try:
            argv = shlex.split(spec.removeprefix("command:"))
        except ValueError as e:
            raise UserError(f"Invalid recovery {spec!r} from {source}: {e}") from None
        if not argv:
            raise UserError(f"Invalid recovery {spec!r} from {source}: command: needs a command line")
        return Command(spec, argv)
    if spec.startswith("manifest:"):
        path = Path(spec.removeprefix("manifest:")).expanduser()
        try:
            docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
        except (OSError, yaml.YAMLError) as e:
            raise UserError(f"Invalid recovery {spec!r} from {source}: {path}: {e}") from e
        if not all(isinstance(d, dict) and d.get("apiVersion") and d.get("kind") for d in docs):
            raise UserError(f"Invalid recovery {spec!r} from {source}: {path} holds a document without apiVersion/kind")
        mode = Manifest(spec, path)
        mode.objects = docs
        return mode
    raise UserError(f"Invalid recovery {spec!r} from {source}: use one of {RECOVERY_MODES_HELP}")
