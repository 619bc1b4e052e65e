"""A readers-writer lock on a cluster, kept in the cluster itself (Leases), so that runs sharing one cluster from
several workers or machines never measure each other: faults that touch only their own app hold it shared and
run side by side; faults that touch the whole cluster (a controller crash, a source outage, API load) hold it
exclusive and run alone, with nothing else in flight.

Every shared holder (one scenario run) has a Lease of its own in `default`, labelled shared; the exclusive
holder has the one writer Lease (WRITER, labelled exclusive), which the API server lets only one create. Each is
renewed by a thread while it is held. A shared holder creates its Lease, then backs off (deletes it and waits)
while the writer Lease lives; an exclusive holder creates the writer Lease (waiting while another holds it),
then waits until no shared Lease lives. The API server orders the writes, so either the shared holder sees the
writer Lease and backs off, or the exclusive holder sees the shared one and waits: never both run, and never two
exclusive holders at once. A Lease its holder stopped renewing (a killed worker) is stale once it has not
changed for its duration on the observer's own clock (no clock is compared across machines), and is deleted by
whoever sees it.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from foundation.waiting import wait_until
from kubeapi import ApiError, Conflict, NotFound

log = logging.getLogger(__name__)

LEASE_API = "coordination.k8s.io/v1"
NAMESPACE = "default"
MODE_LABEL = "resilience.gitops.io/fault-lock"
SHARED, EXCLUSIVE = "shared", "exclusive"
WRITER = "gitops-resilience-fault-exclusive"
DURATION = 30  # seconds a Lease lives without renewal; renewed every third of it
# How long a run waits for the lock: every run in flight finishes within its own wait budget (<= 300 s in the
# shipped SLO file) plus set-up and revert.
ACQUIRE_TIMEOUT = 900.0


def holder_identity() -> str:
    """Who holds a Lease, for people reading it: host, process and xdist worker."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    return f"{socket.gethostname()}/{os.getpid()}/{worker}"


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Held:
    """How a run held the lock: what the report says about it."""

    mode: str
    waited: float
    others: int  # runs in flight it waited for (exclusive) or cluster-wide faults it waited behind (shared)
    cluster: str

    def to_json(self) -> dict[str, Any]:
        return {"mode": self.mode, "waited_seconds": round(self.waited, 1), "others": self.others}

    @property
    def note(self) -> str | None:
        """A note for the run's verdict reason: an exclusive run ran alone on the cluster."""
        if self.mode != EXCLUSIVE:
            return None
        waited = f", after waiting {self.waited:.0f}s for {self.others} run(s) in flight" if self.others else ""
        return f"ran alone on cluster {self.cluster} (exclusive fault lock{waited})"


class FaultLock:
    """The lock of one cluster, as seen by one holder."""

    def __init__(
        self,
        kube: Any,
        cluster: str,
        holder: str | None = None,
        duration: int = DURATION,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.kube = kube
        self.cluster = cluster
        self.holder = holder or holder_identity()
        self.duration = duration
        self.clock = clock
        self.name = f"gitops-resilience-fault-{secrets.token_hex(5)}"
        self.uid: str | None = None  # of the Lease this holder holds (released with it as a precondition)
        # (name, resourceVersion) -> when this observer first saw that version: a Lease unchanged for its
        # duration on our clock is stale.
        self._seen: dict[tuple[str, str], float] = {}

    # -- Leases ----------------------------------------------------------------------------------------------

    def _lease(self, mode: str) -> dict[str, Any]:
        return {
            "apiVersion": LEASE_API,
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": NAMESPACE, "labels": {MODE_LABEL: mode}},
            "spec": {
                "holderIdentity": self.holder,
                "leaseDurationSeconds": self.duration,
                "acquireTime": _now(),
                "renewTime": _now(),
            },
        }

    def _live(self, mode: str) -> list[dict[str, Any]]:
        """The other holders' live Leases of a mode; stale ones are deleted on the way."""
        live = []
        for lease in self.kube.list(LEASE_API, "Lease", NAMESPACE, label_selector=f"{MODE_LABEL}={mode}"):
            meta = lease["metadata"]
            if meta["name"] == self.name:
                continue
            first_seen = self._seen.setdefault((meta["name"], str(meta.get("resourceVersion"))), self.clock())
            duration = float((lease.get("spec") or {}).get("leaseDurationSeconds") or self.duration)
            if self.clock() - first_seen > duration:
                log.warning("deleting the stale fault lock %s of %s", meta["name"], lease["spec"].get("holderIdentity"))
                with contextlib.suppress(NotFound, Conflict):
                    self.kube.delete(LEASE_API, "Lease", meta["name"], NAMESPACE, uid=meta.get("uid"))
                continue
            live.append(lease)
        return live

    def _create(self, mode: str) -> None:
        self.uid = self.kube.create(self._lease(mode))["metadata"].get("uid")

    def _release(self) -> None:
        """Delete this holder's Lease, only the incarnation it created (the writer Lease, once declared stale and
        deleted by another, may be someone else's by now)."""
        if self.uid is None:
            return
        uid, self.uid = self.uid, None
        with contextlib.suppress(ApiError):
            self.kube.delete(LEASE_API, "Lease", self.name, NAMESPACE, uid=uid)

    # -- acquiring -------------------------------------------------------------------------------------------

    def _shared(self, deadline: float) -> tuple[float, int]:
        started, behind = self.clock(), 0
        while True:
            self._create(SHARED)
            exclusive = self._live(EXCLUSIVE)
            if not exclusive:
                return self.clock() - started, behind
            self._release()  # an exclusive holder comes first: back off until it is done
            behind += len(exclusive)
            self._wait(lambda: not self._live(EXCLUSIVE), deadline, "a cluster-wide fault to finish")

    def _exclusive(self, deadline: float) -> tuple[float, int]:
        started = self.clock()
        waited_for: set[str] = set()
        mine = self.name

        def took_writer() -> bool:
            self.name = WRITER
            try:
                self._create(EXCLUSIVE)
                return True
            except Conflict:  # another exclusive holder has it (a stale one is deleted by _live)
                self.name = mine
                waited_for.update(lease["metadata"]["name"] for lease in self._live(EXCLUSIVE))
                return False

        self._wait(took_writer, deadline, "another cluster-wide fault to finish")

        def readers() -> list[dict[str, Any]]:
            found = self._live(SHARED)
            waited_for.update(lease["metadata"]["name"] for lease in found)
            return found

        self._wait(lambda: not readers(), deadline, "the runs in flight to finish")  # hold() releases on failure
        return self.clock() - started, len(waited_for)

    def _wait(self, done: Callable[[], bool], deadline: float, what: str) -> None:
        wait_until(done, max(0.0, deadline - self.clock()), f"{what} on cluster {self.cluster}", interval=1.0)

    @contextlib.contextmanager
    def hold(self, exclusive: bool, timeout: float = ACQUIRE_TIMEOUT) -> Iterator[Held]:
        """Hold the lock (shared, or exclusive) for the body; released after. Whatever Lease this holder has is
        renewed from its creation on: an exclusive holder waiting for the runs in flight longer than the Lease's
        duration must not look stale to the runs that arrive meanwhile (they would delete it and start)."""
        deadline = self.clock() + timeout
        mode = EXCLUSIVE if exclusive else SHARED
        stop = threading.Event()
        renewer = threading.Thread(target=self._renew, args=(stop,), name=f"fault-lock-{self.name}", daemon=True)
        renewer.start()
        try:
            waited, others = self._exclusive(deadline) if exclusive else self._shared(deadline)
            yield Held(mode, waited, others, self.cluster)
        finally:
            stop.set()
            renewer.join(timeout=5)
            self._release()

    def _renew(self, stop: threading.Event) -> None:
        while not stop.wait(self.duration / 3):
            name, uid = self.name, self.uid
            if uid is None:  # none held right now (a shared holder backing off)
                continue
            try:
                self.kube.merge_patch(LEASE_API, "Lease", name, NAMESPACE, {"spec": {"renewTime": _now()}})
            except NotFound:  # released between reading it and renewing it
                continue
            except ApiError as e:  # the next renewal may get through; others see the Lease stale only after 30 s
                log.warning("could not renew the fault lock %s: %s", name, e)
