"""Fixtures for the recovery integration tests: an app of one's own (injectors.testapp) and the operator process.

Each test gets its own namespace, Git path, GitRepository and Kustomization, removed afterwards. The operator
runs as a real process with a state namespace of its own, so its Lease and reconciliation-state never meet
another operator's.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from clusters.model import Cluster
from foundation.waiting import wait_until
from injectors.apps import deployment, dump, kustomization_file
from injectors.testapp import App, chart_release, publish
from testsupport.operatorprocess import OperatorProcess

__all__ = [
    "App",
    "Operator",
    "app_fixture",
    "chart_release",
    "deployment",
    "dump",
    "kustomization_file",
    "operator_fixture",
    "publish",
    "start_operator",
    "wait_until",
]


class Operator(OperatorProcess):
    """An operator process and the state namespace `start_operator` made for it."""

    state_namespace: str


@pytest.fixture(name="app")
def app_fixture(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[App]:
    prefix = request.node.name.removeprefix("test_")[:28].replace("_", "-").rstrip("-")
    instance = App(cluster, f"rc-{prefix}-{secrets.token_hex(3)}")
    yield instance
    instance.cleanup()


def start_operator(
    cluster: Cluster, tmp: Path, *args: str, state_namespace: str | None = None, kubeconfig: Path | None = None
) -> Operator:
    """`resilience recover` against the cluster, with a state namespace of its own (created here)."""
    ns = state_namespace or f"rc-state-{secrets.token_hex(3)}"
    cluster.kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    process = Operator(
        kubeconfig or cluster.kubeconfig,
        "--state-namespace",
        ns,
        "--log-format",
        "text",
        *args,
        log=tmp / f"operator-{ns}.log",
    )
    process.state_namespace = ns
    process.start()
    return process


@pytest.fixture(name="operator", scope="module")
def operator_fixture(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    """One operator for a test module (its objects are in per-test namespaces, so tests do not interfere)."""
    process = start_operator(cluster, tmp_path_factory.mktemp("operator"))
    yield process
    code = process.stop()
    cluster.kube.delete("v1", "Namespace", process.state_namespace)
    assert code == 0, f"the operator did not stop cleanly ({code}): {process.log()[-2000:]}"
