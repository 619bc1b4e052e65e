"""Fixtures of the integration tests: an app of one's own (injectors.testapp) and one operator process per module.

Each test gets its own namespace, Git path, GitRepository and Kustomization, removed afterwards.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from recovery_support import Operator, start_operator

from clusters.model import Cluster
from injectors.testapp import App


@pytest.fixture
def app(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[App]:
    prefix = request.node.name.removeprefix("test_")[:28].replace("_", "-").rstrip("-")
    instance = App(cluster, f"rc-{prefix}-{secrets.token_hex(3)}")
    yield instance
    instance.cleanup()


@pytest.fixture(scope="module")
def operator(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    """One operator for a test module (its objects are in per-test namespaces, so tests do not interfere)."""
    process = start_operator(cluster, tmp_path_factory.mktemp("operator"))
    yield process
    code = process.stop()
    cluster.kube.delete("v1", "Namespace", process.state_namespace)
    assert code == 0, f"the operator did not stop cleanly ({code}): {process.log()[-2000:]}"
