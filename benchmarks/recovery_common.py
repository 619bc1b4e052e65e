"""Shared by the recovery benchmarks: a local cluster (new or reused), the operator as a bare process, formatting.

Recovery modes, budgets, verdicts and percentiles are the harness's (scenarios.recoveries, assertions.slo,
assertions.verdict): a benchmark that needs them takes them from there, so its figures and the chaos suite's
verdicts cannot drift apart. Benchmarks print figures; they never assert.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # testsupport: in the checkout, not installed

from assertions.verdict import percentile
from clusters.local.provider import LocalProvider
from clusters.model import Cluster
from testsupport.operatorprocess import OperatorProcess


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


@contextlib.contextmanager
def operator_for(mode: str, cluster: Cluster, *args: str) -> Iterator[OperatorProcess | None]:
    """The operator as a bare process under `operator` mode (own state namespace, extra flags such as --workers,
    its decision log readable), nothing otherwise: for benchmarks that time the operator's own steps."""
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


def fmt(value: float | str | None, cap: float) -> str:
    """Seconds with one decimal, ">cap" when never reached, or a placeholder string as given."""
    if isinstance(value, str):
        return value
    return f">{cap:.0f}" if value is None else f"{value:.1f}"


def summary(values: list[float]) -> str:
    """p50, p95 (nearest rank, as the gate computes them) and max of some seconds."""
    if not values:
        return "-"
    return f"p50 {percentile(values, 50):.2f}s p95 {percentile(values, 95):.2f}s max {max(values):.2f}s"
