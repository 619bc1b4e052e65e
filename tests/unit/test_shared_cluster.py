"""Runs that share a cluster or a host: the cluster's fault lock (Leases on a FakeKube; threads play the workers),
what a run records about its neighbours and the note when they moved its TTR beyond noise, and the sweeper that
leaves a cluster being prepared by a live worker alone."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from assertions.schema import Host
from assertions.slo import NoiseMargin
from clusters.faultlock import EXCLUSIVE, LEASE_API, MODE_LABEL, NAMESPACE, SHARED, FaultLock
from clusters.local import lifecycle
from clusters.local.layout import ClusterLayout
from foundation.errors import UserError
from foundation.waiting import WaitTimeout, wait_until
from injectors.registry import CATALOG
from scenarios.contention import CpuTimes, host_record, neighbour_note
from testsupport.fakekube import FakeKube


def leases(kube: FakeKube, mode: str | None = None) -> list[dict[str, Any]]:
    selector = f"{MODE_LABEL}={mode}" if mode else None
    return kube.list(LEASE_API, "Lease", NAMESPACE, label_selector=selector)


class Worker(threading.Thread):
    """One run on the shared cluster: holds the lock until told to finish; records what it saw."""

    def __init__(self, kube: FakeKube, exclusive: bool, name: str, timeout: float = 10.0):
        super().__init__(name=name, daemon=True)
        self.lock = FaultLock(kube, "shared", holder=name, duration=30)
        self.exclusive, self.timeout = exclusive, timeout
        self.holding, self.finish = threading.Event(), threading.Event()
        self.held: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with self.lock.hold(self.exclusive, timeout=self.timeout) as held:
                self.held = held
                self.holding.set()
                self.finish.wait(10)
        except BaseException as e:
            self.error = e


def start(*workers: Worker) -> None:
    for worker in workers:
        worker.start()


def test_app_faults_hold_the_lock_side_by_side() -> None:
    kube = FakeKube()
    a, b = Worker(kube, False, "a"), Worker(kube, False, "b")
    start(a, b)
    assert a.holding.wait(5) and b.holding.wait(5)
    assert len(leases(kube, SHARED)) == 2
    a.finish.set()
    b.finish.set()
    a.join(5)
    b.join(5)
    assert leases(kube) == [] and a.error is None and a.held.note is None


@pytest.mark.slow
def test_a_cluster_wide_fault_waits_for_the_runs_in_flight_and_then_runs_alone() -> None:
    kube = FakeKube()
    app = Worker(kube, False, "app")
    start(app)
    assert app.holding.wait(5)
    crash = Worker(kube, True, "crash")
    start(crash)
    wait_until(lambda: leases(kube, EXCLUSIVE), 5, "the exclusive Lease")
    assert not crash.holding.wait(1.5), "an exclusive holder ran beside a run in flight"
    late = Worker(kube, False, "late")
    start(late)
    assert not late.holding.wait(1.5), "a new app fault started while a cluster-wide one waited"
    app.finish.set()
    assert crash.holding.wait(5)
    assert not late.holding.is_set(), "an app fault ran beside the cluster-wide fault"
    assert crash.held.others == 1
    assert crash.held.note.startswith("ran alone on cluster shared (exclusive fault lock, after waiting ")
    assert crash.held.to_json()["mode"] == "exclusive"
    crash.finish.set()
    assert late.holding.wait(5)
    late.finish.set()
    for worker in (app, crash, late):
        worker.join(5)
        assert worker.error is None
    assert leases(kube) == []


@pytest.mark.slow
def test_cluster_wide_faults_run_one_after_another() -> None:
    kube = FakeKube()
    first = Worker(kube, True, "first")
    start(first)
    assert first.holding.wait(5)
    second = Worker(kube, True, "second")
    start(second)
    assert not second.holding.wait(1.5)
    first.finish.set()
    assert second.holding.wait(5)
    second.finish.set()
    first.join(5)
    second.join(5)


def test_a_lease_its_holder_stopped_renewing_is_stale_after_its_duration() -> None:
    """A worker killed while holding the lock: its Lease is deleted once unchanged for its duration (observer's
    clock), and the waiting run goes on."""
    kube = FakeKube()
    now = [1000.0]
    dead = FaultLock(kube, "shared", holder="dead", duration=30)
    kube.create(dead._lease(SHARED))
    waiting = FaultLock(kube, "shared", holder="waiting", duration=30, clock=lambda: now[0])
    assert len(waiting._live(SHARED)) == 1
    now[0] += 29
    assert len(waiting._live(SHARED)) == 1
    now[0] += 2
    assert waiting._live(SHARED) == [] and leases(kube) == []


def test_a_renewed_lease_is_not_stale() -> None:
    kube = FakeKube()
    now = [0.0]
    holder = FaultLock(kube, "shared", holder="alive", duration=30)
    kube.create(holder._lease(SHARED))
    observer = FaultLock(kube, "shared", holder="observer", duration=30, clock=lambda: now[0])
    for _ in range(4):
        observer._live(SHARED)
        now[0] += 20
        kube.merge_patch(LEASE_API, "Lease", holder.name, NAMESPACE, {"spec": {"renewTime": "later"}})
    assert len(observer._live(SHARED)) == 1


def test_waiting_too_long_is_a_timeout_naming_the_cluster_and_leaves_no_lease() -> None:
    kube = FakeKube()
    app = Worker(kube, False, "app")
    start(app)
    assert app.holding.wait(5)
    crash = FaultLock(kube, "shared", holder="crash")
    # A timeout of 0: the deadline has passed at the first look, the same as after a wait, without the wait.
    with pytest.raises(WaitTimeout, match="the runs in flight to finish on cluster shared"), crash.hold(True, 0.0):
        pass
    assert [lease["spec"]["holderIdentity"] for lease in leases(kube)] == ["app"]
    app.finish.set()
    app.join(5)


def test_the_control_plane_faults_are_the_cluster_wide_ones() -> None:
    wide = sorted(f.name for f in CATALOG if f.touches_cluster)
    assert wide == ["controller-crash-helm", "controller-crash-kustomize", "source-outage"]


# -- neighbours on the host ----------------------------------------------------------------------------------


def test_the_host_record_measures_how_busy_the_cpus_were(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "3")
    record = host_record(CpuTimes(busy=100, total=400), CpuTimes(busy=250, total=600))
    assert record == Host(workers=3, cpus=os.cpu_count() or 1, cpu_busy=0.75)
    monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT")
    alone = host_record(None, None)
    assert alone.workers == 1 and "cpu_busy" not in alone.to_json()
    now = CpuTimes.now()
    assert now is not None and 0 < now.busy <= now.total


NOISE = NoiseMargin(seconds=5, fraction=0.25)


@pytest.mark.parametrize(
    ("ttr", "workers", "reference", "noted"),
    [
        (30.0, 3, 20.0, True),  # +10 s > max(5, 5)
        (24.0, 3, 20.0, False),  # within 5 s
        (130.0, 2, 100.0, True),  # +30 s > 25 s
        (120.0, 2, 100.0, False),  # +20 s < 25 s
        (10.0, 2, 20.0, True),  # faster by more than noise is a move too
        (30.0, 1, 20.0, False),  # alone on the host: nothing to blame on neighbours
        (30.0, 3, None, False),  # no solo reference
        (None, 3, 20.0, False),  # not recovered: the verdict says it
    ],
)
def test_a_ttr_moved_beyond_noise_with_neighbours_is_noted(
    ttr: float | None, workers: int, reference: float | None, noted: bool
) -> None:
    note = neighbour_note(ttr, Host(workers=workers, cpus=2, cpu_busy=0.97), reference, NOISE)
    assert (note is not None) == noted
    if note:
        assert f"while {workers} workers shared 2 CPUs, CPUs 97% busy: neighbours may have slowed it" in note


# -- the sweeper and clusters being prepared --------------------------------------------------------------------


def old_cluster(name: str, preparer: dict[str, Any] | None) -> ClusterLayout:
    layout = ClusterLayout.named(name)
    layout.root.mkdir(parents=True)
    layout.write_spec({"name": name, "ports": {}, **({"preparer": preparer} if preparer else {})})
    past = time.time() - 60
    os.utime(layout.root, (past, past))
    return layout


@pytest.mark.process
def test_the_sweeper_leaves_a_cluster_whose_preparer_lives(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESILIENCE_STATE", str(tmp_path))
    finished = subprocess.Popen(["true"])
    finished.wait()
    preparing = old_cluster("preparing", lifecycle.preparer())
    abandoned = old_cluster("abandoned", {"pid": finished.pid, "start_time": None})
    unowned = old_cluster("unowned", None)
    assert sorted(lifecycle.sweep_stale([preparing, abandoned, unowned])) == ["abandoned", "unowned"]
    assert preparing.root.is_dir() and not abandoned.root.exists()


def test_the_noise_margin_comes_from_the_slo_file(tmp_path: Path) -> None:
    from assertions import slo

    shipped = slo.load(Path(__file__).parents[2] / "scenarios" / "slo.yaml", [f.name for f in CATALOG])
    assert shipped.noise == NoiseMargin(seconds=5, fraction=0.25)
    assert shipped.noise.margin(100) == 25 and shipped.noise.margin(4) == 5
    with pytest.raises(UserError, match=r"noise\.fraction: expected a finite positive number, got -1"):
        slo.parse({"defaults": {"ttr": {"max": 60}}, "noise": {"fraction": -1}}, "x.yaml", [])
    with pytest.raises(UserError, match=r"noise\.second: unknown key \(expected seconds, fraction\)"):
        slo.parse({"defaults": {"ttr": {"max": 60}}, "noise": {"second": 3}}, "x.yaml", [])


@pytest.mark.slow
def test_a_cluster_wide_fault_waiting_longer_than_its_lease_duration_is_not_taken_for_stale() -> None:
    """The writer Lease is renewed while its holder waits for the runs in flight: a run arriving after the Lease's
    duration must still wait behind it, not delete it as stale and start beside the cluster-wide fault."""
    kube = FakeKube()
    app = Worker(kube, False, "app")
    app.lock.duration = 1
    start(app)
    assert app.holding.wait(5)
    crash = Worker(kube, True, "crash")
    crash.lock.duration = 1
    start(crash)
    wait_until(lambda: leases(kube, EXCLUSIVE), 5, "the writer Lease")
    time.sleep(2.5)  # longer than the writer Lease's duration, still waiting for `app`
    late = Worker(kube, False, "late")
    late.lock.duration = 1
    start(late)
    assert not late.holding.wait(2.0), "a run started beside a waiting cluster-wide fault (its Lease taken for stale)"
    app.finish.set()
    assert crash.holding.wait(5) and not late.holding.is_set()
    crash.finish.set()
    assert late.holding.wait(5)
    late.finish.set()
    for worker in (app, crash, late):
        worker.join(5)
        assert worker.error is None
    assert leases(kube) == []
