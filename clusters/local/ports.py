"""Loopback ports for a local cluster, chosen so that clusters started side by side never collide.

Free ports come from foundation.ports (binding port 0); a lock over the state directory and the ports recorded by every
other live cluster keep two concurrent `cluster up` runs from picking the same one before either binds it.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from clusters.paths import state_root
from foundation.errors import UserError
from foundation.ports import ephemeral_port, port_is_free

# Every listening endpoint of a local cluster, in start order.
PORT_NAMES: tuple[str, ...] = (
    "etcd-client",
    "etcd-peer",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
    "source-controller-metrics",
    "source-controller-health",
    "source-controller-storage",
    "kustomize-controller-metrics",
    "kustomize-controller-health",
    "helm-controller-metrics",
    "helm-controller-health",
    # The flux-tuned shard (fluxmodel.tuned).
    "kustomize-controller-tuned-metrics",
    "kustomize-controller-tuned-health",
    "helm-controller-tuned-metrics",
    "helm-controller-tuned-health",
    "gitserver",
    "chartserver",
    # Monitoring (cluster up --monitoring); allocated for every cluster, so a later option needs no new scheme.
    "prometheus",
    "alertmanager",
    "alert-receiver",
)


@contextmanager
def allocation_lock() -> Iterator[None]:
    path = state_root() / "ports.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def allocate(fixed: dict[str, int], reserved: Iterable[int]) -> dict[str, int]:
    """A port for every name in PORT_NAMES; `fixed` ones are the user's and must be free (else UserError)."""
    unknown = sorted(set(fixed) - set(PORT_NAMES))
    if unknown:
        raise UserError(f"unknown port name(s) {', '.join(unknown)}; known: {', '.join(PORT_NAMES)}")
    taken = set(reserved)
    ports: dict[str, int] = {}
    for name, port in fixed.items():
        if not 1 <= port <= 65535:
            raise UserError(f"port {port} for {name} is out of range: use 1-65535")
        if port in taken or not port_is_free(port):
            raise UserError(
                f"port {port} for {name} is already in use on 127.0.0.1: stop what listens there "
                "or choose another port (or omit it to pick a free one)"
            )
        taken.add(port)
        ports[name] = port
    for name in PORT_NAMES:
        if name in ports:
            continue
        for _ in range(50):
            port = ephemeral_port()
            if port not in taken:
                break
        else:  # pragma: no cover - the kernel keeps handing out reserved ports
            raise UserError("could not find a free loopback port: too many ports in use")
        taken.add(port)
        ports[name] = port
    return ports
