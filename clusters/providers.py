"""The provider registry: `--provider NAME` resolves here, and an unknown name is a one-line UserError."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from foundation.errors import UserError

if TYPE_CHECKING:  # the model pulls in the Kubernetes client: not needed to parse a command line
    from clusters.model import Cluster


class Provider(Protocol):
    name: str

    @property
    def up(self) -> Callable[..., Cluster]:
        """Start a cluster; each provider takes its own keyword options (ports, kubeconfig, owner...)."""
        ...

    def down(self, name: str) -> None: ...

    def down_all(self) -> list[str]: ...

    def list(self) -> list[dict[str, Any]]: ...

    def status(self, name: str) -> dict[str, Any]: ...


def _local() -> Provider:
    from clusters.local.provider import LocalProvider

    return LocalProvider()


def _kind() -> Provider:
    from clusters.kind import KindProvider

    return KindProvider()


def _existing() -> Provider:
    from clusters.existing import ExistingProvider

    return ExistingProvider()


PROVIDERS: dict[str, Callable[[], Provider]] = {"local": _local, "kind": _kind, "existing": _existing}
# The recovery modes that need a Flux shard of their own (fluxmodel.tuned), and the providers that start one. A kind
# cluster gets Flux from `flux install` (one instance of each controller, no selector on them), and an existing
# cluster's Flux belongs to its owner: the harness never reconfigures it, so neither can run `flux-tuned`.
SHARDED_MODES: dict[str, tuple[str, ...]] = {"flux-tuned": ("local",)}


def shard_refusal(mode: str, provider: str) -> str | None:
    """Why `mode` cannot run on `provider` (one line), or None when it can."""
    able = SHARDED_MODES.get(mode)
    if able is None or provider in able:
        return None
    return (
        f"--recovery {mode} needs its own Flux shard (a second kustomize- and helm-controller with Flux's recovery "
        f"gates), which only the {', '.join(able)} provider starts: run it with --provider {able[0]}, or drop {mode}"
    )


def get_provider(name: str) -> Provider:
    try:
        factory = PROVIDERS[name]
    except KeyError:
        raise UserError(f"unknown provider {name!r}: choose one of {', '.join(PROVIDERS)}") from None
    return factory()
