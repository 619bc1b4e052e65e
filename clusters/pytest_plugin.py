"""pytest integration: `--provider` and a session-scoped `cluster` fixture.

One cluster per test session (per xdist worker) is started lazily by the first test that asks for it and
stopped at the end; the cluster is owned by the pytest process, so if pytest dies the supervisor removes the
cluster by itself. `--reuse-cluster NAME` reuses a running local cluster instead (not stopped afterwards).
Options resolve CLI > environment (RESILIENCE_PROVIDER, RESILIENCE_CLUSTER) > default, and a bad value names
where it came from.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from clusters.model import Cluster
from clusters.providers import PROVIDERS, get_provider
from foundation.errors import UserError


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("resilience", "GitOps resilience clusters")
    group.addoption("--provider", default=None, help=f"cluster provider: {', '.join(PROVIDERS)} (default local)")
    group.addoption("--reuse-cluster", default=None, help="reuse this running local cluster instead of starting one")
    # --kubeconfig (the existing provider's kubeconfig file) is pytest-kind's option, shared.
    group.addoption("--context", default=None, help="existing provider: context")
    group.addoption("--allow-context", action="append", default=[], help="existing provider: allowed context")


def pytest_configure(config: pytest.Config) -> None:
    """A bad --provider is a usage error before any test runs, not a failure in every test's fixture."""
    provider_name(config)


def provider_name(config: pytest.Config) -> str:
    value = config.getoption("--provider")
    source = "--provider"
    if value is None:
        value, source = os.environ.get("RESILIENCE_PROVIDER"), "RESILIENCE_PROVIDER"
    if value is None:
        return "local"
    if value not in PROVIDERS:
        raise pytest.UsageError(f"Invalid provider {value!r} from {source}: choose one of {', '.join(PROVIDERS)}")
    return str(value)


def session_cluster_name(config: pytest.Config) -> str:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    return f"pytest-{os.getpid()}-{worker}"


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """A Ready cluster with Flux, shared by the whole session."""
    config = request.config
    name = config.getoption("--reuse-cluster") or os.environ.get("RESILIENCE_CLUSTER")
    provider = get_provider(provider_name(config))
    try:
        if name:
            if provider.name != "local":
                raise UserError("--reuse-cluster works with local clusters only")
            from clusters.local.provider import LocalProvider

            assert isinstance(provider, LocalProvider)
            yield provider.attach(name)
            return
        options: dict[str, object] = {}
        if provider.name == "local":
            options["owner_pid"] = os.getpid()
        elif provider.name == "existing":
            options = {
                "kubeconfig": config.getoption("kubeconfig"),
                "context": config.getoption("--context"),
                "allow_context": config.getoption("--allow-context"),
            }
        handle = provider.up(session_cluster_name(config), **options)
    except UserError as e:
        pytest.fail(f"cannot get a cluster: {e}", pytrace=False)
    try:
        yield handle
    finally:
        provider.down(handle.name)
