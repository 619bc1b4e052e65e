"""Steady-state checks over a fake Reader, user-data invariants over a fake Kube, and the phase recorder fed
hand-made watch events: what marks visible/detected/acted/recovered, and what must not."""

from __future__ import annotations

from typing import Any

import pytest

from assertions import invariants, steady
from assertions.isolation import owned_by_run
from assertions.recorder import PhaseRecorder
from assertions.steady import (
    Check,
    always,
    deployment_available,
    exists,
    helmrelease_ready,
    kustomization_ready,
    statefulset_ready,
)
from assertions.timeline import Timeline
from fluxmodel.annotations import OPERATOR_COMPONENT
from fluxmodel.kinds import STAGED_KUSTOMIZATION
from foundation.waiting import poll

REV1 = "main@sha1:" + "1" * 40
REV2 = "main@sha1:" + "2" * 40


class Reader:
    """A Reader over a dict of objects keyed by (kind, namespace, name); counts the reads."""

    def __init__(self, *objects: dict[str, Any]) -> None:
        self.objects: dict[tuple[str, str | None, str], dict[str, Any]] = {}
        self.reads: list[tuple[str, str, str | None, str]] = []
        for o in objects:
            self.put(o)

    def put(self, o: dict[str, Any]) -> None:
        meta = o["metadata"]
        self.objects[(o["kind"], meta.get("namespace"), meta["name"])] = o

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        self.reads.append((api_version, kind, namespace, name))
        return self.objects.get((kind, namespace, name))


def flux(
    kind: str, name: str, ready: str | None, reason: str = "", namespace: str = "flux-system", **status: Any
) -> dict[str, Any]:
    conditions = [] if ready is None else [{"type": "Ready", "status": ready, "reason": reason, "message": reason}]
    return {
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace, "generation": 1},
        "status": {"observedGeneration": 1, "conditions": conditions, **status},
    }


def ks(ready: str | None, reason: str = "", revision: str = REV1, **status: Any) -> dict[str, Any]:
    return flux("Kustomization", "app", ready, reason, lastAppliedRevision=revision, **status)


def deploy(ready_replicas: int = 2, namespace: str = "shop") -> dict[str, Any]:
    return {
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": namespace, "generation": 1},
        "spec": {"replicas": 2},
        "status": {
            "observedGeneration": 1,
            "replicas": 2,
            "updatedReplicas": 2,
            "readyReplicas": ready_replicas,
            "conditions": [{"type": "Available", "status": "True"}],
        },
    }


# -- steady-state checks ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("objects", "ok", "detail"),
    [
        ((), False, "Kustomization flux-system/app does not exist"),
        (
            (ks("False", "ReconciliationFailed"),),
            False,
            "Kustomization flux-system/app not Ready: ReconciliationFailed",
        ),
        ((ks(None),), False, "Kustomization flux-system/app not Ready: no status"),
        ((ks("True", revision=REV2),), False, f"Kustomization flux-system/app at {REV2}, want {REV1}"),
        ((ks("True"),), True, "Kustomization flux-system/app Ready at the expected revision"),
    ],
)
def test_kustomization_ready_at_a_revision(objects: tuple[dict[str, Any], ...], ok: bool, detail: str) -> None:
    reader = Reader(*objects)
    assert kustomization_ready("flux-system", "app", revision=REV1)(reader) == (ok, detail)
    assert reader.reads == [("kustomize.toolkit.fluxcd.io/v1", "Kustomization", "flux-system", "app")]


def test_a_stalled_or_stale_kustomization_is_not_ready() -> None:
    stalled = ks("True")
    stalled["status"]["conditions"].append({"type": "Stalled", "status": "True", "reason": "X"})
    assert kustomization_ready("flux-system", "app")(Reader(stalled))[0] is False
    stale = ks("True")
    stale["metadata"]["generation"] = 2
    assert kustomization_ready("flux-system", "app")(Reader(stale))[0] is False
    assert kustomization_ready("flux-system", "app")(Reader(ks("True", revision=REV2))) == (
        True,
        "Kustomization flux-system/app Ready",
    )


def test_a_callable_revision_is_read_at_every_check() -> None:
    head = [REV1]
    check = kustomization_ready("flux-system", "app", revision=lambda: head[0])
    reader = Reader(ks("True", revision=REV1))
    assert check(reader)[0] is True
    head[0] = REV2  # a commit landed after the check was built
    assert check(reader) == (False, f"Kustomization flux-system/app at {REV1}, want {REV2}")
    reader.put(ks("True", revision=REV2))
    assert check(reader)[0] is True


def test_helmrelease_ready_at_a_chart_version() -> None:
    history = [{"chartVersion": "1.1.0", "status": "failed"}, {"chartVersion": "1.0.0", "status": "deployed"}]
    hr = flux("HelmRelease", "web", "True", namespace="shop", history=history)
    reader = Reader(hr)
    assert helmrelease_ready("shop", "web", chart_version="1.0.0")(reader)[0] is True
    assert helmrelease_ready("shop", "web", chart_version="1.1.0")(reader) == (
        False,
        "HelmRelease shop/web at 1.0.0, want 1.1.0",
    )
    assert reader.reads[0][:2] == ("helm.toolkit.fluxcd.io/v2", "HelmRelease")


def test_and_reports_the_first_failing_check_and_stops_there() -> None:
    calls: list[str] = []

    def named(name: str, ok: bool) -> Check:
        def fn(_reader: Any) -> tuple[bool, str]:
            calls.append(name)
            return ok, f"{name} says {ok}"

        return Check(name, fn)

    combined = named("a", True) & named("b", False) & named("c", False)
    assert combined.name == "a & b & c"
    assert combined(Reader()) == (False, "b says False")
    assert calls == ["a", "b"]
    calls.clear()
    assert (named("a", True) & named("b", True))(Reader()) == (True, "a & b")
    assert calls == ["a", "b"]


def test_composed_real_checks() -> None:
    steady = kustomization_ready("flux-system", "app", revision=REV1) & deployment_available("shop", "web")
    assert steady(Reader(ks("True"), deploy())) == (True, steady.name)
    assert steady(Reader(ks("True"), deploy(ready_replicas=1))) == (False, "Deployment shop/web not Available")
    assert steady(Reader(ks("False", "HealthCheckFailed"), deploy(ready_replicas=1))) == (
        False,
        "Kustomization flux-system/app not Ready: HealthCheckFailed",
    )


def test_deployment_available() -> None:
    check = deployment_available("shop", "web")
    assert check(Reader(deploy())) == (True, "Deployment shop/web Available")
    assert check(Reader(deploy(ready_replicas=0))) == (False, "Deployment shop/web not Available")
    assert check(Reader()) == (False, "Deployment shop/web missing")
    assert check(Reader(deploy(namespace="other"))) == (False, "Deployment shop/web missing")


def test_statefulset_ready_exists_and_always() -> None:
    sts = {"kind": "StatefulSet", "metadata": {"name": "db", "namespace": "shop"}, "spec": {"replicas": 3}}
    sts["status"] = {"readyReplicas": 3, "updatedReplicas": 3}
    assert statefulset_ready("shop", "db")(Reader(sts)) == (True, "StatefulSet shop/db Ready")
    sts["status"] = {"readyReplicas": 3, "updatedReplicas": 2}
    assert statefulset_ready("shop", "db")(Reader(sts)) == (False, "StatefulSet shop/db not ready")
    assert statefulset_ready("shop", "db")(Reader())[0] is False
    assert exists("apps/v1", "StatefulSet", "shop", "db")(Reader(sts)) == (True, "StatefulSet shop/db exists")
    assert exists("apps/v1", "StatefulSet", "shop", "db")(Reader())[0] is False
    assert always()(Reader()) == (True, "nothing to check")


def test_wait_polls_until_the_check_holds_and_returns_the_last_outcome() -> None:
    reader = Reader(ks("False", "Progressing"))
    check = kustomization_ready("flux-system", "app")
    seen = 0

    def flipping(r: Any) -> tuple[bool, str]:
        nonlocal seen
        seen += 1
        if seen == 3:
            reader.put(ks("True"))
        return check(r)

    assert poll(lambda: Check("flip", flipping)(reader), 30, 0, done=lambda outcome: outcome[0]) == (
        True,
        "Kustomization flux-system/app Ready",
    )
    assert seen == 3
    assert poll(lambda: check(Reader()), 0, done=lambda outcome: outcome[0])[0] is False


# -- invariants: user data survives ---------------------------------------------------------------------


class Kube:
    """A fake Kube with `list`, serving data objects per (kind, namespace)."""

    def __init__(self, objects: list[dict[str, Any]]) -> None:
        self.objects = objects

    def list(self, api_version: str, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        assert api_version == "v1"
        return [o for o in self.objects if o["kind"] == kind and o["metadata"]["namespace"] == namespace]


def data_obj(kind: str, name: str, uid: str = "u1", namespace: str = "shop", **body: Any) -> dict[str, Any]:
    return {"kind": kind, "metadata": {"name": name, "namespace": namespace, "uid": uid}, **body}


BEFORE = [
    data_obj("PersistentVolumeClaim", "data-db-0", spec={"volumeName": "pv-1"}),
    data_obj("Secret", "creds", data={"password": "c2VjcmV0"}),
    data_obj("ConfigMap", "settings", data={"mode": "fast"}),
    data_obj("ConfigMap", "kube-root-ca.crt", data={"ca.crt": "A"}),
    data_obj("ConfigMap", "elsewhere", namespace="other"),
]


def snapshot(objects: list[dict[str, Any]], namespaces: tuple[str, ...] = ("shop",)) -> dict[str, Any]:
    return invariants.snapshot(Kube(objects), namespaces)  # type: ignore[arg-type]


def replaced(name: str, gone: bool = False, uid: str | None = None, **body: Any) -> list[dict[str, Any]]:
    """BEFORE with one object deleted, re-created under another uid, or with other content."""
    out = []
    for o in BEFORE:
        if o["metadata"]["name"] != name:
            out.append(o)
        elif not gone:
            out.append({**o, **body, "metadata": {**o["metadata"], "uid": uid or o["metadata"]["uid"]}})
    return out


def test_snapshot_covers_data_kinds_of_the_namespaces_but_not_kube_root_ca() -> None:
    assert sorted(snapshot(BEFORE)) == [
        "ConfigMap/shop/settings",
        "PersistentVolumeClaim/shop/data-db-0",
        "Secret/shop/creds",
    ]
    assert sorted(snapshot(BEFORE, ("shop", "other"))) == [
        "ConfigMap/other/elsewhere",
        "ConfigMap/shop/settings",
        "PersistentVolumeClaim/shop/data-db-0",
        "Secret/shop/creds",
    ]
    secret_named_like_it = [data_obj("Secret", "kube-root-ca.crt", data={"x": "y"})]
    assert list(snapshot(secret_named_like_it)) == ["Secret/shop/kube-root-ca.crt"]


def test_controller_state_secrets_are_not_user_data() -> None:
    helm = data_obj("Secret", "sh.helm.release.v1.web.v2", type="helm.sh/release.v1", data={"release": "H4sI"})
    token = data_obj("Secret", "builder-token", type="kubernetes.io/service-account-token", data={"token": "x"})
    opaque = data_obj("Secret", "creds", type="Opaque", data={"password": "c2VjcmV0"})
    assert list(snapshot([helm, token, opaque])) == ["Secret/shop/creds"]
    # A new Helm release deletes and rewrites its release Secrets: no violation.
    assert invariants.violations(snapshot([helm, token, opaque]), snapshot([opaque])) == []


def test_data_applied_from_git_may_change_but_pvcs_may_not() -> None:
    def labelled(kind: str, name: str, labels: dict[str, str], **body: Any) -> dict[str, Any]:
        obj = data_obj(kind, name, **body)
        obj["metadata"]["labels"] = labels
        return obj

    flux = {"kustomize.toolkit.fluxcd.io/name": "app"}
    helm = {"app.kubernetes.io/managed-by": "Helm"}
    before = [
        labelled("ConfigMap", "from-flux", flux, data={"v": "1"}),
        labelled("Secret", "from-helm", helm, data={"v": "MQ=="}),
        labelled("PersistentVolumeClaim", "data-db-0", flux, spec={"volumeName": "pv-1"}),
    ]
    assert list(snapshot(before)) == ["PersistentVolumeClaim/shop/data-db-0"]
    after = [
        labelled("ConfigMap", "from-flux", flux, data={"v": "2"}),
        labelled("PersistentVolumeClaim", "data-db-0", flux, spec={"volumeName": "pv-2"}),
    ]
    assert invariants.violations(snapshot(before), snapshot(after)) == [
        "PersistentVolumeClaim/shop/data-db-0 data changed"
    ]


@pytest.mark.parametrize(
    ("after", "problems"),
    [
        (BEFORE, []),
        (replaced("settings", gone=True), ["ConfigMap/shop/settings was deleted"]),
        (replaced("creds", uid="u2"), ["Secret/shop/creds was re-created (its data is a new object)"]),
        (replaced("creds", data={"password": "b3RoZXI="}), ["Secret/shop/creds data changed"]),
        (replaced("settings", binaryData={"blob": "AA=="}), ["ConfigMap/shop/settings data changed"]),
        (
            replaced("data-db-0", spec={"volumeName": "pv-2"}),
            ["PersistentVolumeClaim/shop/data-db-0 data changed"],
        ),
        (replaced("data-db-0", spec={"volumeName": "pv-1", "resources": {"requests": {"storage": "2Gi"}}}), []),
        (replaced("kube-root-ca.crt", uid="u9", data={"ca.crt": "B"}), []),  # Kubernetes re-creates it at will
        ([*BEFORE, data_obj("ConfigMap", "new")], []),
        (
            [o for o in BEFORE if o["kind"] != "Secret" and o["metadata"]["name"] != "settings"],
            ["ConfigMap/shop/settings was deleted", "Secret/shop/creds was deleted"],
        ),
    ],
    ids=[
        "unchanged",
        "deleted",
        "recreated",
        "secret-data",
        "binary-data",
        "pvc-volume",
        "pvc-resized",
        "kube-root-ca",
        "new-object",
        "two-deleted",
    ],
)
def test_violations(after: list[dict[str, Any]], problems: list[str]) -> None:
    assert invariants.violations(snapshot(BEFORE), snapshot(after)) == problems


# -- the phase recorder ----------------------------------------------------------------------------------

WATCHED = {"Kustomization/flux-system/app"}
INJECTED = 100.0


def failing(r: steady.Reader) -> tuple[bool, str]:
    o = r.get("kustomize.toolkit.fluxcd.io/v1", "Kustomization", "app", "flux-system")
    ready = (o or {}).get("status", {}).get("conditions", [{}])[0]
    return ready.get("reason") == "ReconciliationFailed", f"reason {ready.get('reason')}"


VISIBLE = Check("visible", failing)
RECOVERED = kustomization_ready("flux-system", "app", revision=REV1)


def recorder(
    reader: Reader, recovered: Check | None = RECOVERED, requires_visible: bool = True, injected: bool = True
) -> tuple[PhaseRecorder, Timeline]:
    timeline = Timeline()
    if injected:
        timeline.mark("injected", INJECTED)
    rec = PhaseRecorder(timeline, VISIBLE, recovered, set(WATCHED), requires_visible=requires_visible)
    rec.attach(reader)
    return rec, timeline


def feed(rec: PhaseRecorder, reader: Reader, o: dict[str, Any], at: float) -> None:
    """A watch event: the cache stores the object, then calls back."""
    reader.put(o)
    rec.on_change("MODIFIED", o, at)


def visible_at(at: float) -> tuple[PhaseRecorder, Timeline, Reader]:
    """A recorder whose fault became visible at `at` (a failing Kustomization)."""
    reader = Reader(ks("False", "ReconciliationFailed"))
    rec, timeline = recorder(reader)
    feed(rec, reader, ks("False", "ReconciliationFailed"), at=at)
    assert timeline.marks == {"injected": INJECTED, "visible": at}
    return rec, timeline, reader


def event(reason: str, component: str | None = OPERATOR_COMPONENT, source: str | None = None) -> dict[str, Any]:
    e: dict[str, Any] = {
        "kind": "Event",
        "metadata": {"name": f"app.{reason}", "namespace": "flux-system"},
        "reason": reason,
        "type": "Normal",
        "message": f"{reason} on Kustomization/flux-system/app",
        "involvedObject": {"kind": "Kustomization", "namespace": "flux-system", "name": "app"},
    }
    if component is not None:
        e["reportingComponent"] = component
    if source is not None:
        e["source"] = {"component": source}
    return e


def test_visible_then_recovered_marks_at_the_events_receipt() -> None:
    reader = Reader(ks("True"))
    rec, timeline = recorder(reader)
    feed(rec, reader, ks("False", "ReconciliationFailed", revision=REV1), at=101.5)
    assert timeline.marks == {"injected": INJECTED, "visible": 101.5}
    feed(rec, reader, ks("False", "Progressing"), at=110.0)
    assert "recovered" not in timeline.marks and rec.last_recovered.endswith("not Ready: Progressing")
    feed(rec, reader, ks("True"), at=130.25)
    assert timeline.marks["recovered"] == 130.25 and timeline.ttr == 30.25
    assert rec.last_visible == "reason ReconciliationFailed"


def test_recovered_is_not_evaluated_before_visible_when_visibility_is_required() -> None:
    reader = Reader(ks("True"))
    rec, timeline = recorder(reader)
    feed(rec, reader, ks("True"), at=101.0)
    assert "recovered" not in timeline.marks and rec.last_recovered == "not evaluated"


def test_recovered_without_visible_when_visibility_is_not_required() -> None:
    reader = Reader(ks("True"))
    rec, timeline = recorder(reader, requires_visible=False)
    feed(rec, reader, ks("True"), at=101.0)
    assert timeline.marks == {"injected": INJECTED, "recovered": 101.0}


def test_nothing_is_marked_before_injection_or_without_a_reader() -> None:
    reader = Reader(ks("False", "ReconciliationFailed"))
    rec, timeline = recorder(reader, injected=False)
    feed(rec, reader, ks("False", "ReconciliationFailed"), at=99.0)
    rec.on_change("ADDED", event("RecoveryDetected"), 99.0)
    rec.evaluate()
    assert timeline.marks == {} and timeline.events == [] and timeline.conditions == []
    lonely = PhaseRecorder(Timeline(), VISIBLE, RECOVERED, set(WATCHED))
    lonely.timeline.mark("injected", INJECTED)
    lonely.evaluate(101.0)
    assert lonely.timeline.marks == {"injected": INJECTED}


def test_a_recovered_check_set_after_injection_is_used() -> None:
    reader = Reader(ks("False", "ReconciliationFailed"))
    rec, timeline = recorder(reader, recovered=None)
    feed(rec, reader, ks("True"), at=101.0)
    assert "recovered" not in timeline.marks
    rec.recovered = RECOVERED
    rec.evaluate(102.0)
    assert "recovered" not in timeline.marks  # not yet visible: Ready at REV1 is the pre-fault state
    feed(rec, reader, ks("False", "ReconciliationFailed"), at=103.0)
    feed(rec, reader, ks("True"), at=104.0)
    assert timeline.marks["recovered"] == 104.0


def test_after_recovery_nothing_is_evaluated_again() -> None:
    reader = Reader(ks("False", "ReconciliationFailed"))
    rec, timeline = recorder(reader)
    feed(rec, reader, ks("True"), at=101.0)
    rec.evaluate(101.0)
    feed(rec, reader, ks("False", "ReconciliationFailed"), at=102.0)
    feed(rec, reader, ks("True"), at=103.0)
    reads = len(reader.reads)
    feed(rec, reader, ks("False", "ReconciliationFailed"), at=104.0)
    rec.evaluate(105.0)
    assert len(reader.reads) == reads and timeline.marks["recovered"] == 103.0


def test_operator_events_mark_detected_and_acted() -> None:
    rec, timeline, _ = visible_at(101.0)
    rec.on_change("ADDED", event("RecoveryDetected"), 102.0)
    rec.on_change("ADDED", event("RecoveryAction"), 104.0)
    rec.on_change("ADDED", event("RecoveryDetected"), 105.0)  # the first mark wins
    assert timeline.marks == {"injected": INJECTED, "visible": 101.0, "detected": 102.0, "acted": 104.0}
    assert [e["reason"] for e in timeline.events] == ["RecoveryDetected", "RecoveryAction", "RecoveryDetected"]
    first = timeline.events[0]
    assert first["component"] == OPERATOR_COMPONENT and first["object"] == "Kustomization/flux-system/app"
    assert first["message"] == "RecoveryDetected on Kustomization/flux-system/app"


def test_an_action_without_a_detection_event_marks_both() -> None:
    rec, timeline, _ = visible_at(101.0)
    rec.on_change("ADDED", event("RecoveryAction"), 103.0)
    assert timeline.marks["detected"] == timeline.marks["acted"] == 103.0


def test_dependency_cycle_events_and_the_legacy_source_field_count() -> None:
    rec, timeline, _ = visible_at(101.0)
    rec.on_change("ADDED", event("DependencyCycle", component=None, source=OPERATOR_COMPONENT), 102.0)
    assert timeline.marks["detected"] == 102.0


@pytest.mark.parametrize(
    "e",
    [
        event("RecoveryAction", component="kustomize-controller"),
        event("RecoveryDetected", component=None, source="helm-controller"),
        event("RecoveryDetected", component=None),
        event("ReconciliationSucceeded"),
    ],
    ids=["other-component", "other-source", "no-component", "other-reason"],
)
def test_other_events_are_recorded_but_mark_nothing(e: dict[str, Any]) -> None:
    rec, timeline, _ = visible_at(101.0)
    rec.on_change("ADDED", e, 102.0)
    assert set(timeline.marks) == {"injected", "visible"}
    assert len(timeline.events) == 1


def test_operator_events_before_injection_mark_nothing() -> None:
    reader = Reader(ks("True"))
    rec, timeline = recorder(reader)
    rec.on_change("ADDED", event("RecoveryDetected"), 99.0)  # received before injection: ignored entirely
    assert timeline.events == [] and set(timeline.marks) == {"injected"}


def test_an_operator_that_detects_before_flux_shows_the_fault_is_timed_and_reported() -> None:
    """Not silently skipped: the detection counts, and a note says it came first."""
    reader = Reader(ks("True"))
    rec, timeline = recorder(reader)
    rec.on_change("ADDED", event("RecoveryDetected"), 101.0)
    assert timeline.marks["detected"] == 101.0 and not timeline.has("visible") and len(timeline.events) == 1
    assert rec.notes == ["the operator's RecoveryDetected came before Flux showed the fault"]
    feed(rec, reader, ks("False", "ReconciliationFailed"), at=103.0)
    assert timeline.time_to_detect == 1.0 and timeline.phase_seconds() == {"detected": 1.0, "visible": 2.0}


def test_events_on_objects_of_other_runs_are_not_this_runs_phases() -> None:
    reader = Reader(ks("False", "ReconciliationFailed"))
    timeline = Timeline()
    rec = PhaseRecorder(timeline, always(), None, set(), owns=owned_by_run("app", "app-ns"))
    rec.attach(reader)
    timeline.mark("injected", 100.0)
    other = event("RecoveryAction")
    other["involvedObject"] = {"kind": "Kustomization", "namespace": "flux-system", "name": "someone-else"}
    rec.on_change("ADDED", other, 101.0)
    assert timeline.events == [] and not timeline.has("acted")
    rec.on_change("ADDED", event("RecoveryAction"), 102.0)  # on flux-system/app: this run's
    assert timeline.has("acted")


def test_condition_transitions_are_recorded_once_per_change() -> None:
    reader = Reader()
    rec, timeline = recorder(reader)
    failed = ks("False", "ReconciliationFailed")
    failed["status"]["conditions"] = [
        {"type": "Ready", "status": "False", "reason": "ReconciliationFailed", "message": "m" * 400},
        {"type": "Reconciling", "status": "True", "reason": "Progressing"},
        {"type": "Healthy", "status": "False", "reason": "HealthCheckFailed", "lastTransitionTime": "t1"},
    ]
    feed(rec, reader, failed, at=101.0)
    feed(rec, reader, failed, at=102.0)  # a resync: no transition
    changed = ks("True", "ReconciliationSucceeded")
    feed(rec, reader, changed, at=103.0)
    feed(rec, reader, ks("True", "ReconciliationSucceeded"), at=104.0)
    recorded = [(c["type"], c["status"], c["reason"]) for c in timeline.conditions]
    assert recorded == [
        ("Ready", "False", "ReconciliationFailed"),
        ("Healthy", "False", "HealthCheckFailed"),
        ("Ready", "True", "ReconciliationSucceeded"),
    ]
    assert all(c["object"] == "Kustomization/flux-system/app" for c in timeline.conditions)
    assert len(timeline.conditions[0]["message"]) == 300
    assert timeline.conditions[1]["lastTransitionTime"] == "t1"


def test_unwatched_objects_record_no_conditions() -> None:
    reader = Reader()
    rec, timeline = recorder(reader)
    other = flux("Kustomization", "other", "False", "ReconciliationFailed")
    feed(rec, reader, other, at=101.0)
    feed(rec, reader, deploy(), at=101.0)
    assert timeline.conditions == []


def test_waiting_for_a_phase_evaluates_between_polls() -> None:
    reader = Reader(ks("False", "ReconciliationFailed"))
    rec, timeline = recorder(reader)
    assert poll(lambda: rec.reached("visible"), 30, 0, before_sleep=rec.evaluate) is True  # the safety-net tick
    assert timeline.has("visible")
    assert poll(lambda: rec.reached("recovered"), 0, 0, before_sleep=rec.evaluate) is False
    assert rec.reached("recovered", "visible") is True


def test_an_observation_received_before_the_injection_counts_from_it() -> None:
    # Under load, a watch may deliver an object received a moment before the injection only after it: no phase
    # may precede the injection (a negative time to detect would make the run invalid).
    reader = Reader(ks("True", "ReconciliationSucceeded"))
    rec, timeline = recorder(reader)
    feed(rec, reader, ks("False", "ReconciliationFailed"), at=INJECTED - 0.5)
    assert timeline.marks == {"injected": INJECTED, "visible": INJECTED}
    assert timeline.time_to_detect == 0.0


def staged(stages: dict[str, tuple[str, str]], rolled_back: tuple[tuple[str, str, str], ...] = ()) -> dict[str, Any]:
    """A StagedKustomization's status: each stage's phase and revision, the RolledBack entries of its history."""
    history = [{"at": at, "stage": s, "revision": r, "result": "RolledBack"} for s, r, at in rolled_back]
    return {
        "kind": STAGED_KUSTOMIZATION.kind,
        "metadata": {"name": "app", "namespace": "flux-system"},
        "status": {
            "stages": [{"name": n, "phase": p, "revision": r} for n, (p, r) in stages.items()],
            "history": [{"at": "t0", "stage": "canary", "revision": REV1, "result": "Passed"}, *history],
        },
    }


def test_a_staged_kustomizations_stages_and_the_rollbacks_its_history_gains_are_recorded_after_injection() -> None:
    ref = f"{STAGED_KUSTOMIZATION.kind}/flux-system/app"
    reader, timeline = Reader(), Timeline()
    rec = PhaseRecorder(timeline, VISIBLE, RECOVERED, {*WATCHED, ref})
    rec.attach(reader)
    earlier = ("canary", REV1, "t1")  # a rollback before the injection is not the run's
    feed(rec, reader, staged({"canary": ("RolledBack", REV1)}, (earlier,)), at=99.0)
    timeline.mark("injected", INJECTED)
    feed(rec, reader, staged({"canary": ("Progressing", REV2)}, (earlier,)), at=101.0)
    feed(rec, reader, staged({"canary": ("Progressing", REV2)}, (earlier,)), at=102.0)  # a resync: no change
    now = (earlier, ("canary", REV2, "t2"))
    feed(rec, reader, staged({"canary": ("RolledBack", REV2)}, now), at=103.0)
    # A rollback the watch saw only in the history: the stage had moved on by the next event.
    feed(rec, reader, staged({"canary": ("Progressing", REV1)}, (*now, ("canary", REV1, "t3"))), at=104.0)
    assert [(r["object"], r["stage"], r["phase"], r["revision"]) for r in timeline.stages] == [
        (ref, "canary", "Progressing", REV2),
        (ref, "canary", "RolledBack", REV2),
        (ref, "canary", "Progressing", REV1),
        (ref, "canary", "RolledBack", REV1),
    ]
