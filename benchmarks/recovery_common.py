"""Shared by the recovery benchmarks: a local cluster (new or reused), the three recovery modes, timelines.

Modes, as the harness names them:
  none         Flux alone
  flux-native  Flux's own knobs: Kustomization spec.force, HelmRelease install/upgrade strategy RetryOnFailure
  operator     `resilience recover` running as a process beside the cluster
Benchmarks print figures; they never assert.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clusters.local.provider import LocalProvider
from clusters.model import Cluster
from recovery.testing import OperatorProcess

MODES = ("operator", "flux-native", "none")


@contextlib.contextmanager
def local_cluster(reuse: str | None) -> Iterator[Cluster]:
    """The named running local cluster, or a fresh one removed at the end."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))  # run the cleanups on SIGTERM
    provider = LocalProvider()
    if reuse:
        yield provider.attach(reuse)
        return
    name = f"bench-{os.getpid()}"
    cluster = provider.up(name, owner_pid=os.getpid())
    try:
        yield cluster
    finally:
        provider.down(name)


def decorate(mode: str, obj: dict[str, Any]) -> dict[str, Any]:
    """Flux's own knobs under flux-native (as scenarios/recoveries.py sets them); unchanged otherwise."""
    if mode != "flux-native":
        return obj
    spec = obj.setdefault("spec", {})
    if obj.get("kind") == "Kustomization":
        spec["force"] = True
    elif obj.get("kind") == "HelmRelease":
        retry = {"name": "RetryOnFailure", "retryInterval": "30s"}
        spec.setdefault("install", {})["strategy"] = dict(retry)
        spec.setdefault("upgrade", {})["strategy"] = dict(retry)
    return obj


@contextlib.contextmanager
def operator_for(mode: str, cluster: Cluster, *args: str) -> Iterator[OperatorProcess | None]:
    """The operator process under `operator` mode (own state namespace), nothing otherwise."""
    if mode != "operator":
        yield None
        return
    state_ns = f"bench-state-{secrets.token_hex(3)}"
    cluster.kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": state_ns}})
    log = Path(tempfile.mkdtemp(prefix="recovery-bench-")) / "operator.log"
    process = OperatorProcess(cluster.kubeconfig, "--state-namespace", state_ns, *args, log=log).start()
    try:
        yield process
    finally:
        process.stop()
        cluster.kube.delete("v1", "Namespace", state_ns)


@dataclass
class Timeline:
    """Seconds from injection to each milestone (None: not reached within the cap)."""

    fault: str
    mode: str
    injected: float = field(default_factory=time.monotonic)
    marks: dict[str, float | None] = field(default_factory=dict)
    note: str = ""

    def mark(self, name: str) -> None:
        self.marks.setdefault(name, time.monotonic() - self.injected)

    def get(self, name: str) -> float | None:
        return self.marks.get(name)


_LINE = re.compile(
    r"^(?P<ts>\S+) info decision object=(?P<object>\S+) pattern=(?P<pattern>\S+) action=\S+ result=(?P<result>\S+)"
)


def operator_marks(log: str, objects: set[str], since_epoch: float) -> dict[str, float]:
    """Epoch times of the operator's first decision (detected) and first action (acted) on any of `objects`."""
    import datetime

    out: dict[str, float] = {}
    for line in log.splitlines():
        m = _LINE.match(line)
        if not m or m["object"] not in objects:
            continue
        ts = datetime.datetime.fromisoformat(m["ts"].replace("Z", "+00:00")).timestamp()
        if ts < since_epoch:
            continue
        if m["pattern"] != "-":
            out.setdefault("detected", ts)
        if m["result"] in ("started", "done"):
            out.setdefault("acted", ts)
    return out


def fmt(value: float | str | None, cap: float) -> str:
    """Seconds with one decimal, ">cap" when never reached, or a placeholder string as given."""
    if isinstance(value, str):
        return value
    return f">{cap:.0f}" if value is None else f"{value:.1f}"


def summary(values: list[float]) -> str:
    if not values:
        return "-"
    values = sorted(values)
    p95 = values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]
    return f"p50 {statistics.median(values):.2f}s p95 {p95:.2f}s max {values[-1]:.2f}s"
