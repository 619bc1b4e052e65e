"""pytest integration: `--provider` and a session-scoped `cluster` fixture.

One cluster per test session (per xdist worker) is started lazily by the first test that asks for it and
stopped at the end; the cluster is owned by the pytest process, so if pytest dies the supervisor removes the
cluster by itself. `--reuse-cluster NAME` reuses a running local cluster instead (not stopped afterwards).
`--monitoring` runs Prometheus, Alertmanager and the alert receiver beside a local cluster.
Options resolve CLI > environment (RESILIENCE_PROVIDER, RESILIENCE_CLUSTER, RESILIENCE_MONITORING) > default (the
chaos suite puts its profile's `monitoring` before the default, through MONITORING_DEFAULT), and a bad value names
where it came from.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator

import pytest

from clusters.model import Cluster
from clusters.providers import PROVIDERS, get_provider
from foundation.errors import UserError

# Whether to monitor when neither --monitoring nor RESILIENCE_MONITORING says (a plugin's profile sets it).
MONITORING_DEFAULT = pytest.StashKey[bool]()
_ON, _OFF = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("resilience", "GitOps resilience clusters")
    group.addoption("--provider", default=None, help=f"cluster provider: {', '.join(PROVIDERS)} (default local)")
    group.addoption("--reuse-cluster", default=None, help="reuse this running local cluster instead of starting one")
    # --kubeconfig (the existing provider's kubeconfig file) is pytest-kind's option, shared.
    group.addoption("--context", default=None, help="existing provider: context")
    group.addoption("--allow-context", action="append", default=[], help="existing provider: allowed context")
    group.addoption(
        "--monitoring",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="local provider: run Prometheus, Alertmanager and an alert receiver beside the cluster "
        "[env RESILIENCE_MONITORING=1|0]",
    )


def pytest_configure(config: pytest.Config) -> None:
    """A bad --provider or monitoring value is a usage error before any test runs, not a failure in every fixture."""
    provider = provider_name(config)
    wanted, source = monitoring_option(config)
    if wanted and provider != "local":
        raise pytest.UsageError(f"Invalid monitoring from {source}: it runs beside local clusters, not {provider!r}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `monitoring` need it on the session's cluster: collecting one turns it on by default."""
    if any(item.get_closest_marker("monitoring") for item in items):
        config.stash[MONITORING_DEFAULT] = True


def monitoring_option(config: pytest.Config) -> tuple[bool | None, str]:
    """Monitoring as asked on the command line or in the environment (None: not asked), and where from."""
    value = config.getoption("--monitoring")
    if value is not None:
        return bool(value), "--monitoring"
    raw = os.environ.get("RESILIENCE_MONITORING", "").strip().lower()
    if not raw:
        return None, ""
    if raw not in (*_ON, *_OFF):
        raise pytest.UsageError(
            f"Invalid monitoring {raw!r} from RESILIENCE_MONITORING: use one of {', '.join(_ON + _OFF)}"
        )
    return raw in _ON, "RESILIENCE_MONITORING"


def monitoring_wanted(config: pytest.Config) -> bool:
    value, _ = monitoring_option(config)
    return value if value is not None else config.stash.get(MONITORING_DEFAULT, False)


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
            attached = provider.attach(name)
            if monitoring_wanted(config) and attached.monitoring is None:
                raise UserError(
                    f"cluster {name!r} runs without monitoring: start it with "
                    f"`resilience cluster up --name {name} --monitoring`, or run without --monitoring"
                )
            yield attached
            return
        options: dict[str, object] = {}
        if provider.name == "local":
            options["owner_pid"] = os.getpid()
            options["monitoring"] = monitoring_wanted(config)
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
