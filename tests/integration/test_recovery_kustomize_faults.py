"""Kustomization faults from the catalog, each recovered by the operator running as a real process.

Every test first proves the fault is real (the pinned kustomize-controller shows its signature), then waits
for recovery: the Kustomization Ready at the revision that now holds the desired state (or, when Git holds a
bad state, at the last good revision) and the workload Available; user data (PVCs, Secrets) untouched.
"""

from __future__ import annotations

import threading
from typing import Any

import yaml

from fluxmodel import signatures as sig
from fluxmodel.annotations import PINNED_BY
from fluxmodel.kinds import FLUX_NAMESPACE, GIT_REPOSITORY, KUSTOMIZATION, ObjectRef
from foundation.waiting import wait_until
from injectors.apps import deployment, dump, kustomization_file
from injectors.testapp import App
from testsupport.operatorprocess import OperatorProcess

FAULT_SECONDS = 90
RECOVERY_SECONDS = 120


def ready_pods(app: App, selector: dict[str, str]) -> int:
    count = 0
    for pod in app.kube.list("v1", "Pod", app.ns):
        labels = (pod.get("metadata") or {}).get("labels") or {}
        if pod.get("metadata", {}).get("deletionTimestamp") or any(labels.get(k) != v for k, v in selector.items()):
            continue
        if any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in (pod.get("status") or {}).get("conditions") or []
        ):
            count += 1
    return count


class PodWatch(threading.Thread):
    """Samples the Ready pods serving `selector` until stopped: the minimum must never reach 0."""

    def __init__(self, app: App, selector: dict[str, str]):
        super().__init__(daemon=True)
        self.app, self.selector = app, selector
        self.samples: list[int] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.samples.append(ready_pods(self.app, self.selector))
            self.stop.wait(0.1)


def expect_recovery_events(app: App, ref: ObjectRef, action: str) -> None:
    detected = app.events(ref, "RecoveryDetected")
    acted = [e for e in app.events(ref, "RecoveryAction") if action in e.get("message", "")]
    assert detected and acted, f"no RecoveryDetected/RecoveryAction ({action}) Events on {ref}"
    assert all(e.get("reportingComponent") == "gitops-resilience-operator" for e in detected + acted)


def test_selector_change_is_replaced_blue_green_without_a_moment_without_ready_pods(
    app: App, operator: OperatorProcess
) -> None:
    labels = {"app": "web"}
    files = {
        f"{app.path}/deployment.yaml": dump(deployment("web", app.ns, labels)),
        f"{app.path}/kustomization.yaml": dump(kustomization_file(["deployment.yaml"])),
    }
    first = app.setup(files)
    ref = ObjectRef(KUSTOMIZATION.kind, FLUX_NAMESPACE, app.name)
    wait_until(lambda: app.ready(ref, first) and app.available("web"), 90, "the app to be Ready")
    old_uid = app.kube.get("apps/v1", "Deployment", "web", app.ns)["metadata"]["uid"]  # type: ignore[index]

    watch = PodWatch(app, labels)
    watch.start()
    changed = deployment("web", app.ns, {"app": "web", "tier": "frontend"})
    head = app.commit("selector change", {f"{app.path}/deployment.yaml": dump(changed)})
    wait_until(lambda: app.shows(ref, sig.SELECTOR_IMMUTABLE), FAULT_SECONDS, "the selector fault")
    wait_until(
        lambda: app.ready(ref, head) and app.available("web"),
        RECOVERY_SECONDS,
        "recovery at the new revision",
        detail=operator.log,
    )
    watch.stop.set()
    watch.join()

    live = app.kube.get("apps/v1", "Deployment", "web", app.ns)
    assert live is not None and live["metadata"]["uid"] != old_uid
    assert live["spec"]["selector"]["matchLabels"] == {"app": "web", "tier": "frontend"}
    assert [d["metadata"]["name"] for d in app.kube.list("apps/v1", "Deployment", app.ns)] == ["web"]  # copy gone
    assert min(watch.samples) >= 1, f"a moment without Ready pods: {watch.samples}"
    expect_recovery_events(app, ref, "recreate_deployment")


def test_common_labels_with_include_selectors_is_recovered(app: App, operator: OperatorProcess) -> None:
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": app.ns},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    files = {
        f"{app.path}/deployment.yaml": dump(deployment("web", app.ns, {"app": "web"})),
        f"{app.path}/service.yaml": dump(service),
        f"{app.path}/kustomization.yaml": dump(kustomization_file(["deployment.yaml", "service.yaml"])),
    }
    first = app.setup(files)
    ref = ObjectRef(KUSTOMIZATION.kind, FLUX_NAMESPACE, app.name)
    wait_until(lambda: app.ready(ref, first), 90, "the app to be Ready")

    labelled = kustomization_file(
        ["deployment.yaml", "service.yaml"], labels=[{"pairs": {"team": "payments"}, "includeSelectors": True}]
    )
    head = app.commit("team label everywhere", {f"{app.path}/kustomization.yaml": dump(labelled)})
    wait_until(lambda: app.shows(ref, sig.SELECTOR_IMMUTABLE), FAULT_SECONDS, "the includeSelectors fault")
    wait_until(lambda: app.ready(ref, head) and app.available("web"), RECOVERY_SECONDS, "recovery", detail=operator.log)
    live = app.kube.get("apps/v1", "Deployment", "web", app.ns)
    svc = app.kube.get("v1", "Service", "web", app.ns)
    assert live is not None and live["spec"]["selector"]["matchLabels"] == {"app": "web", "team": "payments"}
    assert svc is not None and svc["spec"]["selector"] == {"app": "web", "team": "payments"}
    expect_recovery_events(app, ref, "recreate_deployment")


def test_unhealthy_rollout_is_rolled_back_to_the_last_good_revision_and_unpinned_by_a_fix(
    app: App, operator: OperatorProcess
) -> None:
    files = {
        f"{app.path}/deployment.yaml": dump(deployment("web", app.ns, {"app": "web"}, image="registry.local/app:1")),
        f"{app.path}/kustomization.yaml": dump(kustomization_file(["deployment.yaml"])),
    }
    good = app.setup(files)
    ref = ObjectRef(KUSTOMIZATION.kind, FLUX_NAMESPACE, app.name)
    wait_until(lambda: app.ready(ref, good), 90, "the app to be Ready")

    broken = deployment("web", app.ns, {"app": "web"}, behavior="never-ready", image="registry.local/app:2")
    app.commit("rollout that never becomes Ready", {f"{app.path}/deployment.yaml": dump(broken)})
    wait_until(lambda: app.shows(ref, sig.HEALTH_CHECK_FAILED), FAULT_SECONDS, "HealthCheckFailed")
    wait_until(
        lambda: app.ready(ref, good) and app.available("web"),
        RECOVERY_SECONDS,
        "rollback to the last good revision",
        detail=operator.log,
    )
    source = app.get(ObjectRef(GIT_REPOSITORY.kind, FLUX_NAMESPACE, app.source))
    assert source is not None and source["spec"]["ref"].get("commit") == good.split(":")[-1]
    assert source["metadata"]["annotations"][PINNED_BY] == str(ref)
    live = app.kube.get("apps/v1", "Deployment", "web", app.ns)
    assert live is not None and live["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.local/app:1"
    expect_recovery_events(app, ref, "rollback_to_last_good_revision")

    fixed = deployment("web", app.ns, {"app": "web"}, image="registry.local/app:3")
    head = app.commit("fixed rollout", {f"{app.path}/deployment.yaml": dump(fixed)})
    wait_until(
        lambda: app.ready(ref, head), RECOVERY_SECONDS, "the pin lifted and the fix applied", detail=operator.log
    )
    source = app.get(ObjectRef(GIT_REPOSITORY.kind, FLUX_NAMESPACE, app.source))
    assert source is not None and "commit" not in source["spec"]["ref"]
    assert app.get(ObjectRef(GIT_REPOSITORY.kind, FLUX_NAMESPACE, f"{app.source}-head-probe")) is None


def service(app: App, cluster_ip: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": app.ns},
        "spec": {"clusterIP": cluster_ip, "selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }


def free_cluster_ips(app: App, n: int) -> list[str]:
    used = {s["spec"].get("clusterIP") for s in app.kube.list("v1", "Service")}
    candidates = [f"10.96.{a}.{b}" for a in range(200, 250) for b in range(10, 250, 7)]
    import random

    random.shuffle(candidates)
    return [ip for ip in candidates if ip not in used][:n]


def test_service_cluster_ip_change_is_recreated(app: App, operator: OperatorProcess) -> None:
    first_ip, second_ip = free_cluster_ips(app, 2)
    files = {
        f"{app.path}/deployment.yaml": dump(deployment("web", app.ns, {"app": "web"})),
        f"{app.path}/service.yaml": dump(service(app, first_ip)),
        f"{app.path}/kustomization.yaml": dump(kustomization_file(["deployment.yaml", "service.yaml"])),
    }
    first = app.setup(files)
    ref = ObjectRef(KUSTOMIZATION.kind, FLUX_NAMESPACE, app.name)
    wait_until(lambda: app.ready(ref, first), 90, "the app to be Ready")

    head = app.commit("move the Service address", {f"{app.path}/service.yaml": dump(service(app, second_ip))})
    wait_until(lambda: app.shows(ref, sig.IMMUTABLE_FIELD), FAULT_SECONDS, "the clusterIP refusal")
    wait_until(lambda: app.ready(ref, head), RECOVERY_SECONDS, "recovery", detail=operator.log)
    svc = app.kube.get("v1", "Service", "web", app.ns)
    assert svc is not None and svc["spec"]["clusterIP"] == second_ip
    assert app.available("web")  # the Deployment was not touched
    expect_recovery_events(app, ref, "recreate_resource")


def job(app: App, command: str) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "migrate", "namespace": app.ns},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {"name": "migrate", "image": "registry.local/migrate:1", "command": ["sh", "-c", command]}
                    ],
                }
            },
        },
    }


def test_job_template_change_is_recreated(app: App, operator: OperatorProcess) -> None:
    files = {
        f"{app.path}/job.yaml": dump(job(app, "migrate --to 1")),
        f"{app.path}/kustomization.yaml": dump(kustomization_file(["job.yaml"])),
    }
    first = app.setup(files, wait=False)
    ref = ObjectRef(KUSTOMIZATION.kind, FLUX_NAMESPACE, app.name)
    wait_until(lambda: app.ready(ref, first), 90, "the app to be Ready")
    old = app.kube.get("batch/v1", "Job", "migrate", app.ns)
    assert old is not None

    head = app.commit("next migration", {f"{app.path}/job.yaml": dump(job(app, "migrate --to 2"))})
    wait_until(lambda: app.shows(ref, sig.IMMUTABLE_FIELD), FAULT_SECONDS, "the Job template refusal")
    wait_until(lambda: app.ready(ref, head), RECOVERY_SECONDS, "recovery", detail=operator.log)
    new = app.kube.get("batch/v1", "Job", "migrate", app.ns)
    assert new is not None and new["metadata"]["uid"] != old["metadata"]["uid"]
    assert new["spec"]["template"]["spec"]["containers"][0]["command"][-1] == "migrate --to 2"


def statefulset(app: App, size: str) -> dict[str, Any]:
    labels = {"app": "db"}
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": app.ns},
        "spec": {
            "serviceName": "db",
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "db", "image": "registry.local/db:1"}]},
            },
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "storageClassName": "manual",
                        "resources": {"requests": {"storage": size}},
                    },
                }
            ],
        },
    }


def test_statefulset_volume_claim_template_change_keeps_pvcs_and_data(app: App, operator: OperatorProcess) -> None:
    pv = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": f"{app.name}-pv"},
        "spec": {
            "capacity": {"storage": "5Gi"},
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": "manual",
            "persistentVolumeReclaimPolicy": "Retain",
            "hostPath": {"path": f"/tmp/{app.name}"},
            "claimRef": {"namespace": app.name, "name": "data-db-0"},
        },
    }
    app.kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": app.ns}})
    app.kube.apply(pv)
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db-credentials", "namespace": app.ns},
        "stringData": {"password": "s3cret"},
    }
    app.kube.apply(secret)
    try:
        files = {
            f"{app.path}/sts.yaml": dump(statefulset(app, "1Gi")),
            f"{app.path}/kustomization.yaml": dump(kustomization_file(["sts.yaml"])),
        }
        first = app.setup(files)
        ref = ObjectRef(KUSTOMIZATION.kind, FLUX_NAMESPACE, app.name)
        wait_until(lambda: app.ready(ref, first), 120, "the StatefulSet app to be Ready")
        pvc = app.kube.get("v1", "PersistentVolumeClaim", "data-db-0", app.ns)
        assert pvc is not None and (pvc.get("status") or {}).get("phase") == "Bound"
        secret_uid = app.kube.get("v1", "Secret", "db-credentials", app.ns)["metadata"]["uid"]  # type: ignore[index]
        old_sts = app.kube.get("apps/v1", "StatefulSet", "db", app.ns)

        head = app.commit("bigger volumes", {f"{app.path}/sts.yaml": dump(statefulset(app, "2Gi"))})
        wait_until(lambda: app.shows(ref, sig.IMMUTABLE_FIELD), FAULT_SECONDS, "the StatefulSet refusal")
        wait_until(lambda: app.ready(ref, head), RECOVERY_SECONDS, "recovery", detail=operator.log)
        new_sts = app.kube.get("apps/v1", "StatefulSet", "db", app.ns)
        assert new_sts is not None and old_sts is not None and new_sts["metadata"]["uid"] != old_sts["metadata"]["uid"]
        assert new_sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "2Gi"
        after = app.kube.get("v1", "PersistentVolumeClaim", "data-db-0", app.ns)
        assert after is not None and after["metadata"]["uid"] == pvc["metadata"]["uid"]  # the data survived
        assert app.kube.get("v1", "Secret", "db-credentials", app.ns)["metadata"]["uid"] == secret_uid  # type: ignore[index]
        expect_recovery_events(app, ref, "recreate_resource")
    finally:
        app.kube.delete("v1", "PersistentVolume", f"{app.name}-pv")


def test_explain_on_the_live_message_names_the_same_pattern(app: App, operator: OperatorProcess) -> None:
    """`resilience explain` on a message copied from the cluster says what the operator then does."""
    import json
    import subprocess
    import sys

    files = {
        f"{app.path}/deployment.yaml": dump(deployment("web", app.ns, {"app": "web"})),
        f"{app.path}/kustomization.yaml": dump(kustomization_file(["deployment.yaml"])),
    }
    first = app.setup(files, suspend=False)
    ref = ObjectRef(KUSTOMIZATION.kind, FLUX_NAMESPACE, app.name)
    wait_until(lambda: app.ready(ref, first), 90, "the app to be Ready")
    app.kube.merge_patch(
        KUSTOMIZATION.api_version,
        ref.kind,
        ref.name,
        ref.namespace,
        {"metadata": {"annotations": {"gitops.flux.io/recovery-policy": "manual"}}},
    )
    app.commit(
        "selector change", {f"{app.path}/deployment.yaml": dump(deployment("web", app.ns, {"app": "web", "v": "2"}))}
    )
    wait_until(lambda: app.shows(ref, sig.SELECTOR_IMMUTABLE), FAULT_SECONDS, "the selector fault")
    ready = next(c for c in app.ks()["status"]["conditions"] if c["type"] == "Ready")  # type: ignore[index]
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "resilience.cli",
            "explain",
            "--kind",
            "Kustomization",
            "--reason",
            ready["reason"],
            "--message",
            ready["message"],
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    plan = json.loads(out.stdout)
    assert plan["pattern"]["name"] == "selector-immutable" and plan["action"]["name"] == "recreate_deployment"
    # recovery-policy manual: the operator reports and escalates, and leaves the Deployment alone
    wait_until(lambda: app.events(ref, "RecoveryEscalated"), 30, "the manual-policy escalation", detail=operator.log)
    assert "manual" in app.events(ref, "RecoveryEscalated")[0]["message"]
    assert not [e for e in app.events(ref, "RecoveryAction")]
    assert yaml.safe_load(yaml.safe_dump(plan))  # plain JSON data
