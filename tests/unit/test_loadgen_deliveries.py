"""Deliveries cut into windows around a fault: per group and window, per team for the blast radius, and the summary
object the criterion validates; serving capacity turned into downtime."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from assertions.load_criterion import LoadCriterion
from foundation.errors import HarnessError
from foundation.waiting import wait_until
from loadgen import deliveries
from loadgen.deliveries import Request, Windows
from loadgen.serving import SERVICE, SERVICE_NAME_LABEL, ServingProbe, downtime, ready_endpoints
from testsupport.fakekube import FakeKube

WINDOWS = Windows(injected=100.0, fault_end=130.0)


def done(team: str, started: float, seconds: float, group: str = "same-source") -> Request:
    return Request(group, team, started + seconds, seconds, True)


def failed(team: str, started: float, waited: float = 60.0, group: str = "same-source") -> Request:
    return Request(group, team, started + waited, waited, False)


def test_a_delivery_counts_in_the_window_it_overlaps() -> None:
    assert WINDOWS.of(done("a", 90.0, 9.0)) == "baseline"  # over before the injection
    assert WINDOWS.of(done("a", 95.0, 6.0)) == "during"  # held up by the fault although it started before
    assert WINDOWS.of(done("a", 129.0, 1.0)) == "during"
    assert WINDOWS.of(done("a", 130.0, 1.0)) == "after"
    assert WINDOWS.of(failed("a", 50.0)) == "during"  # waited into the fault


def test_stats_per_group_and_window_with_null_percentiles_when_nothing_was_delivered() -> None:
    requests = [
        *(done(f"same-{i}", 80.0 + i, 1.0 + i / 10) for i in range(1, 6)),
        done("same-1", 105.0, 8.0),
        failed("same-2", 106.0),
        done("other-1", 140.0, 2.0, group="other-source"),
    ]
    groups = deliveries.groups(requests, WINDOWS, expected=["same-source", "other-source", "user"])
    same = groups["same-source"]
    assert same["baseline"] == {"done": 5, "failed": 0, "p50": 1.3, "p95": 1.5, "p99": 1.5, "max": 1.5}
    assert same["during"] == {"done": 1, "failed": 1, "p50": 8.0, "p95": 8.0, "p99": 8.0, "max": 8.0}
    assert same["after"] == {"done": 0, "failed": 0, "p50": None, "p95": None, "p99": None, "max": None}
    assert groups["other-source"]["after"]["done"] == 1 and groups["other-source"]["baseline"]["done"] == 0
    assert groups["user"]["during"]["done"] == 0  # an expected group that recorded nothing is still there


def test_the_blast_radius_is_teams_that_failed_or_slowed_beyond_their_own_baseline() -> None:
    requests = [
        done("same-1", 80.0, 1.0),
        done("same-1", 110.0, 2.5),  # 2.5x its own baseline
        done("same-2", 80.0, 2.0),
        done("same-2", 110.0, 3.0),  # 1.5x: slower than same-1's baseline, not than its own
        done("same-3", 80.0, 1.0),
        failed("same-3", 140.0),  # failed after the fault: still hit
        done("other-1", 80.0, 1.0, group="other-source"),
        done("other-1", 110.0, 5.0, group="other-source"),  # no factor for its group: only failures count
        failed("other-2", 10.0, group="other-source"),  # failed before the fault: not the fault's doing
        Request("/checkout", None, 110.0, 9.0, False),  # a locustfile's request: no team
    ]
    assert deliveries.blast_radius(requests, WINDOWS, {"same-source": 2.0}) == ["same-1", "same-3"]


def test_the_summary_has_the_shape_the_criterion_validates(tmp_path: Path) -> None:
    records = [
        {"type": "delivery", "name": "same-source", "ms": 1200.0, "ended": 90.0, "error": None, "team": "same-1"},
        {"type": "delivery", "name": "same-source", "ms": 60000.0, "ended": 170.0, "error": "late", "team": "same-1"},
        {"type": "LIST", "name": "configmaps", "ms": 3.0, "ended": 95.0, "error": None, "instrument": "api-pressure"},
        {"type": "GET", "name": "/checkout", "ms": 40.0, "ended": 140.0, "error": None},
    ]
    path = tmp_path / "requests.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    requests = deliveries.read(path)
    assert [(r.group, r.team, r.ok) for r in requests] == [
        ("same-source", "same-1", True),
        ("same-source", "same-1", False),
        ("/checkout", None, True),
    ]
    summary = deliveries.summary("light", requests, WINDOWS, {}, 0.0, ["same-source", "other-source"])
    assert LoadCriterion().measurement_problem(summary) is None
    assert summary["blast_radius"] == ["same-1"] and summary["downtime_seconds"] == 0.0
    assert list(summary["groups"]) == ["same-source", "other-source", "/checkout"]
    assert deliveries.read(tmp_path / "none.jsonl") == []
    path.write_text('{"name": "same-source", "ms": 1}\n')
    with pytest.raises(HarnessError, match=r"requests.jsonl:1: not a request record"):
        deliveries.read(path)


def test_downtime_is_the_time_without_a_ready_endpoint_inside_the_window() -> None:
    samples = [(0.0, 2), (10.0, 0), (12.5, 1), (20.0, 0), (21.0, 2)]
    assert downtime(samples, 5.0, 30.0) == pytest.approx(3.5)
    assert downtime(samples, 11.0, 30.0) == pytest.approx(2.5)  # already down at the start of the window
    assert downtime(samples, 20.5, 30.0) == pytest.approx(0.5)
    assert downtime(samples, 0.0, 10.0) == 0.0
    assert downtime([(0.0, 0)], 5.0, 8.0) == pytest.approx(3.0)  # down, and nothing changed since
    assert downtime([], 0.0, 8.0) == 0.0


def test_ready_endpoints_count_distinct_ready_addresses_of_the_service_only() -> None:
    def piece(service: str, *endpoints: tuple[str, bool | None]) -> dict[str, object]:
        return {
            "metadata": {"labels": {"kubernetes.io/service-name": service}},
            "endpoints": [
                {"addresses": [ip], "conditions": {} if ready is None else {"ready": ready}} for ip, ready in endpoints
            ],
        }

    slices = [
        piece("load-serving", ("10.0.0.1", True), ("10.0.0.2", False), ("10.0.0.3", None)),
        piece("load-serving", ("10.0.0.1", True)),  # the same address in a second slice counts once
        piece("other", ("10.0.0.9", True)),
    ]
    assert ready_endpoints(slices, "load-serving") == 2
    assert ready_endpoints([], "load-serving") == 0


@pytest.mark.slow
def test_the_probe_samples_ready_endpoints_from_watch_events() -> None:
    kube = FakeKube()

    def slice_with(*ready: bool) -> dict[str, object]:
        endpoints = [{"addresses": [f"10.0.0.{i}"], "conditions": {"ready": r}} for i, r in enumerate(ready)]
        return {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {"name": "load-serving-abcde", "namespace": "app", "labels": {SERVICE_NAME_LABEL: SERVICE}},
            "endpoints": endpoints,
        }

    kube.add(slice_with(True, True))
    probe = ServingProbe(kube, "app").start(serving_within=5.0)  # type: ignore[arg-type]
    try:
        down = time.monotonic()
        kube.add(slice_with(False, False))
        wait_until(lambda: probe.current() == 0, 5.0, "the probe to see no endpoint")
        time.sleep(0.3)
        kube.add(slice_with(True, False))
        wait_until(lambda: probe.current() == 1, 5.0, "the probe to see one endpoint")
        up = time.monotonic()
    finally:
        probe.stop()
    assert [count for _, count in probe.series()] == [2, 0, 1]
    assert 0.3 <= probe.downtime(down, up) <= up - down
    assert probe.downtime(up, up + 5) == 0.0
