"""The faulted app's serving capacity: Ready endpoints of its Service over time, and downtime (seconds with none).

EndpointSlices are written by the real controller-manager from pod readiness (simulated pods too), so this is
what a client of the Service would see: Flux's `force` (delete, then create) and the operator's blue-green
(a serving copy first) differ exactly here. Counted from watch events, on the monotonic clock of the timeline.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from assertions.watch import Target, WatchCache
from foundation.waiting import wait_until
from kubeapi import Kube

ENDPOINT_SLICE = ("discovery.k8s.io/v1", "EndpointSlice")
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
SERVICE = "load-serving"  # the Service the harness puts in front of the faulted app's pods

Sample = tuple[float, int]  # monotonic time, Ready endpoints


def service(namespace: str, selector: Mapping[str, str]) -> dict[str, Any]:
    """A Service selecting the faulted app's pods (created outside Git, like a platform's ingress would)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": SERVICE, "namespace": namespace},
        "spec": {"selector": dict(selector), "ports": [{"port": 80, "targetPort": 8080}]},
    }


def ready_endpoints(slices: Sequence[dict[str, Any]], service_name: str) -> int:
    """Distinct Ready addresses over a Service's slices (a missing `ready` means ready, as the API says)."""
    addresses: set[str] = set()
    for piece in slices:
        if ((piece.get("metadata") or {}).get("labels") or {}).get(SERVICE_NAME_LABEL) != service_name:
            continue
        for endpoint in piece.get("endpoints") or []:
            if (endpoint.get("conditions") or {}).get("ready", True) is not False:
                addresses.update(endpoint.get("addresses") or [])
    return len(addresses)


def downtime(samples: Sequence[Sample], start: float, end: float) -> float:
    """Seconds in [start, end] with no Ready endpoint; the count before `start` holds until the next sample.
    Before the first sample nothing is known, and nothing is counted."""
    total = 0.0
    if not samples:
        return total
    for (at, count), following in zip(samples, [*samples[1:], (end, -1)], strict=True):
        lo, hi = max(at, start), min(following[0], end)
        if count == 0 and hi > lo:
            total += hi - lo
    return total


class ServingProbe:
    """Watches a namespace's EndpointSlices and keeps the Ready endpoint count of one Service as samples."""

    def __init__(self, kube: Kube, namespace: str, service_name: str = SERVICE):
        self.service_name = service_name
        self.samples: list[Sample] = []
        self._lock = threading.Lock()
        self._cache = WatchCache(kube, [Target(*ENDPOINT_SLICE, namespace)], self._on_change)

    def _on_change(self, _event_type: str, _obj: dict[str, Any], received: float) -> None:
        count = ready_endpoints(self._cache.objects(ENDPOINT_SLICE[1]), self.service_name)
        with self._lock:
            if not self.samples or self.samples[-1][1] != count:
                self.samples.append((received, count))

    def start(self, serving_within: float = 60.0) -> ServingProbe:
        """Start watching; waits until the Service has a Ready endpoint (the app serves before the fault)."""
        self._cache.start()
        wait_until(
            lambda: self.current() > 0,
            serving_within,
            f"a Ready endpoint of Service {self.service_name}",
            interval=0.2,
            detail=lambda: f"samples {self.series()}",
        )
        return self

    def stop(self) -> None:
        self._cache.stop()

    def current(self) -> int:
        with self._lock:
            return self.samples[-1][1] if self.samples else 0

    def series(self) -> list[Sample]:
        with self._lock:
            return list(self.samples)

    def downtime(self, start: float, end: float | None = None) -> float:
        return downtime(self.series(), start, time.monotonic() if end is None else end)
