"""One active instance: a coordination.k8s.io Lease, taken over only when its holder stopped renewing.

Updates carry the Lease's resourceVersion, so two instances racing for it cannot both win (the loser gets
409 Conflict). A clean stop releases the Lease at once; a killed instance's Lease expires after its duration.
Instances with different --selector scopes hold different Leases (ctlruntime.scope names them).
"""

from __future__ import annotations

import datetime
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from ctlruntime.api import KubeApi
from ctlruntime.timeparse import parse_time
from kubeapi import ApiError, Conflict

API_VERSION = "coordination.k8s.io/v1"
log = logging.getLogger("ctlruntime.lease")


def _micro(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    """Acquire and renew a Lease; `held` says whether this instance may act."""

    def __init__(
        self,
        kube: KubeApi,
        namespace: str,
        identity: str,
        *,
        name: str,
        duration: float = 15.0,
        clock: Callable[[], float] = time.time,
        annotations: Mapping[str, str] | None = None,
    ):
        self.kube = kube
        self.namespace = namespace
        self.identity = identity
        self.name = name
        self.duration = duration
        self.clock = clock
        self.annotations = dict(annotations or {})
        self.held = False

    def try_acquire(self) -> bool:
        """One attempt to take or renew the Lease; updates and returns `held`."""
        now = self.clock()
        try:
            lease = self.kube.get(API_VERSION, "Lease", self.name, self.namespace)
            if lease is None:
                self.kube.create(self._body(now))
                self.held = True
                return True
            spec = lease.get("spec") or {}
            holder = spec.get("holderIdentity") or ""
            renewed = parse_time(spec.get("renewTime")) or 0.0
            duration = float(spec.get("leaseDurationSeconds") or self.duration)
            if holder and holder != self.identity and renewed + duration > now:
                self.held = False
                return False
            patch: dict[str, Any] = {
                "metadata": {"resourceVersion": lease["metadata"]["resourceVersion"]},
                "spec": {
                    "holderIdentity": self.identity,
                    "leaseDurationSeconds": int(self.duration),
                    "renewTime": _micro(now),
                },
            }
            if holder != self.identity:
                patch["spec"]["acquireTime"] = _micro(now)
                patch["spec"]["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
            self.kube.merge_patch(API_VERSION, "Lease", self.name, self.namespace, patch)
            self.held = True
        except Conflict:
            self.held = False
        except ApiError as e:
            log.warning("Lease %s/%s: %s", self.namespace, self.name, e)
            if self.held and now - self._last_renew > self.duration:
                self.held = False
            return self.held
        if self.held:
            self._last_renew = now
        return self.held

    _last_renew: float = 0.0

    def release(self) -> None:
        """Give the Lease up (clean stop), so a successor need not wait for it to expire."""
        if not self.held:
            return
        try:
            lease = self.kube.get(API_VERSION, "Lease", self.name, self.namespace)
            if lease and (lease.get("spec") or {}).get("holderIdentity") == self.identity:
                patch = {
                    "metadata": {"resourceVersion": lease["metadata"]["resourceVersion"]},
                    "spec": {"holderIdentity": None, "renewTime": _micro(0)},
                }
                self.kube.merge_patch(API_VERSION, "Lease", self.name, self.namespace, patch)
        except ApiError as e:
            log.warning("could not release Lease %s/%s: %s", self.namespace, self.name, e)
        self.held = False

    def run(self, stop: threading.Event, on_change: Callable[[bool], None]) -> None:
        """Keep trying (every duration/5 while held, every second otherwise) until `stop`; report changes."""
        was = False
        while not stop.is_set():
            now_held = self.try_acquire()
            if now_held != was:
                on_change(now_held)
                was = now_held
            stop.wait(self.duration / 5 if now_held else 1.0)

    def _body(self, now: float) -> dict[str, Any]:
        return {
            "apiVersion": API_VERSION,
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace, "annotations": self.annotations},
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": int(self.duration),
                "acquireTime": _micro(now),
                "renewTime": _micro(now),
                "leaseTransitions": 0,
            },
        }
