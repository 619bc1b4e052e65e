"""The locust users of the load process: a team delivering through Flux, and a user pressing on the API server.

Both fire locust request events, so locust's own statistics, CSV and HTML report cover them: a team's request
is one delivery (type `delivery`, named after its group), its response time the seconds from the pushed commit to
delivered (loadgen.tracker), a failure a delivery not done within the deadline. In the load process `threading`
is gevent's (locust monkey-patches it): a thread here is a greenlet. API-pressure requests (LIST, WATCH,
PATCH) are marked as an instrument: they load the control plane, they are not a group of the verdict.
Imported only by the load process (locust monkey-patches with gevent on import).
"""

from __future__ import annotations

import itertools
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from locust import User, constant_pacing, task

from fluxmodel.kinds import KUSTOMIZATION
from kubeapi import Kube
from loadgen import teams
from loadgen.committer import Committer
from loadgen.deliveries import DELIVERY
from loadgen.teams import Team
from loadgen.tracker import DeliveryTracker, Pending

API_PRESSURE = "api-pressure"


class DeliveryFailed(Exception):
    """A delivery not done within the deadline (or whose commit failed)."""


@dataclass
class World:
    """What every user of one load process shares: clients, the tracker, the pace."""

    kube: Kube
    git: Committer  # one request at a time: commits are serialised (GitOpsRepo's lock) anyway
    tracker: DeliveryTracker
    flux_namespace: str
    namespace: str
    deadline: float
    in_flight: set[threading.Thread] = field(default_factory=set)

    def settle(self, timeout: float) -> None:
        """Wait (up to `timeout`) for the deliveries in flight to be done or to fail: each is recorded."""
        deadline = time.monotonic() + timeout
        for waiter in list(self.in_flight):
            waiter.join(max(0.0, deadline - time.monotonic()))


class TeamUser(User):
    """One team: commits at a steady pace (open loop: the next commit does not wait for the last delivery, as
    teams do not), and times each delivery on a greenlet of its own."""

    abstract = True
    team: ClassVar[Team]
    world: ClassVar[World]
    offset: ClassVar[float] = 0.0  # seconds before the first commit, so teams do not all commit at once

    def on_start(self) -> None:
        self.deliveries = 0
        time.sleep(self.offset)

    @task
    def deliver(self) -> None:
        world, team = self.world, self.team
        self.deliveries += 1
        sequence = self.deliveries
        started = time.monotonic()
        try:
            token = teams.token(sequence, secrets.token_hex(4))
            revision = teams.commit(team, world.git, world.kube, world.flux_namespace, token)
        except Exception as e:  # a failed commit or API call is a failed delivery, recorded like one
            self._record(time.monotonic() - started, DeliveryFailed(f"{team.name}: {type(e).__name__}: {e}"))
            return
        pending = world.tracker.expect(team, sequence, revision)
        waiter = threading.Thread(target=self._await, args=(pending,), daemon=True)
        world.in_flight.add(waiter)
        waiter.start()

    def _await(self, pending: Pending) -> None:
        world = self.world
        try:
            done_at = world.tracker.wait(pending, world.deadline)
            seconds = (done_at or time.monotonic()) - pending.committed
            late = DeliveryFailed(f"{self.team.name}: not delivered within {world.deadline:g}s")
            self._record(seconds, None if done_at is not None else late)
        finally:
            world.in_flight.discard(threading.current_thread())

    def _record(self, seconds: float, error: Exception | None) -> None:
        self.environment.events.request.fire(
            request_type=DELIVERY,
            name=self.team.group,
            response_time=seconds * 1000.0,
            response_length=0,
            exception=error,
            context={"team": self.team.name, "group": self.team.group},
        )


class ApiPressureUser(User):
    """Lists, watches and patches at a steady pace: a busy control plane for detection and TTR to hold on."""

    abstract = True
    world: ClassVar[World]

    def on_start(self) -> None:
        self.configmap = f"api-pressure-{secrets.token_hex(3)}"
        self.world.kube.apply(self._configmap(0))
        self.ops: Iterator[tuple[str, str]] = itertools.cycle(
            [("LIST", "kustomizations"), ("WATCH", "configmaps"), ("LIST", "configmaps"), ("PATCH", "configmap")]
        )
        self.patches = 0

    def _configmap(self, value: int) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": self.configmap, "namespace": self.world.namespace},
            "data": {"value": str(value)},
        }

    @task
    def press(self) -> None:
        kube, ns = self.world.kube, self.world.namespace
        verb, what = next(self.ops)
        started = time.monotonic()
        error: Exception | None = None
        try:
            if verb == "LIST" and what == "kustomizations":
                kube.list(KUSTOMIZATION.api_version, KUSTOMIZATION.kind, self.world.flux_namespace)
            elif verb == "LIST":
                kube.list("v1", "ConfigMap", ns)
            elif verb == "WATCH":
                for _ in kube.watch("v1", "ConfigMap", ns, timeout=1):
                    pass
            else:
                self.patches += 1
                kube.merge_patch("v1", "ConfigMap", self.configmap, ns, {"data": {"value": str(self.patches)}})
        except Exception as e:  # recorded as a failed request, as locust does for HTTP
            error = e
        self.environment.events.request.fire(
            request_type=verb,
            name=what,
            response_time=(time.monotonic() - started) * 1000.0,
            response_length=0,
            exception=error,
            context={"instrument": API_PRESSURE},
        )


def team_classes(world: World, every: float, team_list: list[Team]) -> list[type[User]]:
    """One user class per team (exactly one user each), their first commits spread over one period."""
    classes: list[type[User]] = []
    for index, team in enumerate(team_list):
        name = "Team_" + team.name.replace("-", "_")
        attrs = {
            "team": team,
            "world": world,
            "fixed_count": 1,
            "wait_time": constant_pacing(every),
            "offset": every * index / max(1, len(team_list)),
        }
        classes.append(type(name, (TeamUser,), attrs))
    return classes


def api_class(world: World, users: int, every: float) -> type[User]:
    attrs = {"world": world, "fixed_count": users, "wait_time": constant_pacing(every)}
    return type("ApiPressure", (ApiPressureUser,), attrs)
