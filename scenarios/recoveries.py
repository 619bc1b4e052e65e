"""The recovery under test, one of: none | flux-native | operator | command:<cmd> | manifest:<path>.

The same scenario runs under each, so a report can put their TTRs side by side. A mode may decorate the Flux
objects a fault sets up (flux-native turns on Flux's own knobs) and may run something beside the cluster for
the whole session (the operator, a user's command) or inside it (a manifest).

Each run is measured under its own mode alone: every Flux object a run creates carries its mode in the label
resilience.gitops.io/recovery, and the operator is started scoped to `...=operator`, so in a session (or on a
shared cluster) running several modes it never acts on a `none` or `flux-native` run. On a cluster several workers
share, each worker's operator is also scoped to its own session's objects (SESSION_LABEL), so it never acts on
another worker's runs, and none waits for another's Lease when that worker's session ends.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from assertions.slo import RECOVERY_MODES_BUILTIN, RECOVERY_MODES_HELP
from clusters.local.ports import ephemeral_port
from clusters.local.procs import kill_group, tied_to_parent
from clusters.model import Cluster
from fluxmodel.annotations import RECOVERY_MODE_LABEL
from fluxmodel.kinds import HELM_RELEASE, KUSTOMIZATION
from foundation.errors import HarnessError, UserError
from foundation.waiting import wait_until

BUILTIN = RECOVERY_MODES_BUILTIN
# The session (cluster and xdist worker) whose operator may act on an object.
SESSION_LABEL = "resilience.gitops.io/session"


@dataclass
class RecoveryMode:
    """Base: no recovery (Flux alone), nothing started, objects unchanged."""

    name: str = "none"
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    log: Path | None = None
    session: str | None = None  # set by a mode that acts by label (the operator) when it starts

    @property
    def label(self) -> str:
        """The value of RECOVERY_MODE_LABEL on this mode's objects (a label value: command:/manifest: lose the spec)."""
        return self.name.split(":", 1)[0]

    def decorate(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Mark a run's Flux object with its mode, so only this mode's recovery acts on it."""
        labels = obj.setdefault("metadata", {}).setdefault("labels", {})
        labels[RECOVERY_MODE_LABEL] = self.label
        if self.session:
            labels[SESSION_LABEL] = self.session
        return obj

    def start(self, cluster: Cluster, run_dir: Path) -> None:
        """Start whatever runs beside the cluster for the session."""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            kill_group(self.process.pid, 15)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                kill_group(self.process.pid, 9)
                self.process.wait(timeout=5)
        self.process = None

    def check_alive(self) -> None:
        """HarnessError if the recovery process died (its log tail says why)."""
        if self.process is not None and self.process.poll() is not None:
            raise HarnessError(f"recovery {self.name!r} exited with {self.process.returncode}: {self.log_tail()}")

    def log_tail(self, lines: int = 5) -> str:
        if self.log is None or not self.log.exists():
            return "(no log)"
        return " | ".join(self.log.read_text(errors="replace").strip().splitlines()[-lines:])

    def _spawn(self, argv: list[str], cluster: Cluster, run_dir: Path) -> None:
        self.log = run_dir / f"recovery-{self.name.split(':')[0]}.log"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                tied_to_parent(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )


class FluxNative(RecoveryMode):
    """Flux's own knobs: Kustomization force (re-create on immutable errors), HelmRelease RetryOnFailure."""

    def decorate(self, obj: dict[str, Any]) -> dict[str, Any]:
        obj = super().decorate(obj)
        if obj.get("kind") == KUSTOMIZATION.kind:
            obj.setdefault("spec", {})["force"] = True
        elif obj.get("kind") == HELM_RELEASE.kind:
            spec = obj.setdefault("spec", {})
            retry = {"name": "RetryOnFailure", "retryInterval": "30s"}
            spec.setdefault("install", {})["strategy"] = dict(retry)
            spec.setdefault("upgrade", {})["strategy"] = dict(retry)
        return obj


class Operator(RecoveryMode):
    """This project's recovery operator (`resilience recover`) as a process beside the cluster."""

    def selector(self) -> str:
        """The objects this operator recovers: its mode's, of its own session once started."""
        session = f",{SESSION_LABEL}={self.session}" if self.session else ""
        return f"{RECOVERY_MODE_LABEL}={self.label}{session}"

    def start(self, cluster: Cluster, run_dir: Path) -> None:
        port = ephemeral_port()
        argv = [sys.executable, "-m", "resilience.cli", "recover", "--kubeconfig", str(cluster.kubeconfig)]
        if cluster.context:
            argv += ["--context", cluster.context]
        argv += ["--metrics-addr", f"127.0.0.1:{port}", "--state-namespace", cluster.bootstrap.flux_namespace]
        self.session = f"{cluster.name}.{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
        argv += ["--selector", self.selector()]
        self._spawn(argv, cluster, run_dir)

        def serving() -> bool:
            self.check_alive()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1):
                    return True
            except OSError:
                return False

        wait_until(serving, 30, "the recovery operator to serve metrics", detail=self.log_tail)


class Command(RecoveryMode):
    """A user's recovery process, started with KUBECONFIG pointing at the cluster."""

    def __init__(self, name: str, argv: list[str]):
        super().__init__(name)
        self.argv = argv

    def start(self, cluster: Cluster, run_dir: Path) -> None:
        self._spawn(self.argv, cluster, run_dir)
        time.sleep(1.0)
        self.check_alive()


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

    def stop(self) -> None:
        if self.cluster is not None:
            for obj in reversed(self.objects):
                meta = obj["metadata"]
                self.cluster.kube.delete(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))


def parse(spec: str, source: str = "--recovery") -> RecoveryMode:
    """A RecoveryMode from its spec; UserError naming where a bad value came from."""
    if spec == "none":
        return RecoveryMode("none")
    if spec == "flux-native":
        return FluxNative("flux-native")
    if spec == "operator":
        return Operator("operator")
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
