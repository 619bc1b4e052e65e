"""Server-side dry-run: API refusals become findings (fake client), and one real-cluster integration test."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException
from validate_support import (
    KUBECTL,
    Repo,
    app_root,
    configmap,
    job,
    needs_git,
    needs_kubectl,
    pvc,
    service,
    statefulset,
    workload,
)

from clusters.model import Cluster
from foundation.errors import UserError
from kubeapi.errors import ApiError, TemporaryApiError, UnknownKind, from_exception
from validation.dryrun import dry_run
from validation.findings import DRY_RUN
from validation.render import Rendered

STS_MESSAGE = (
    'StatefulSet.apps "db" is invalid: spec: Forbidden: updates to statefulset spec for fields other than '
    "'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', "
    "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
)


def api_error(status: int, message: str) -> ApiError:
    """What kubeapi raises for an API answer with this status and Status message."""
    return from_exception(
        ApiException(status=status, reason="Error", body=json.dumps({"kind": "Status", "message": message}))
    )


class FakeApplier:
    """Raises a scripted error per object name and records what was applied, in order."""

    def __init__(self, errors: dict[str, BaseException] | None = None) -> None:
        self.errors = errors or {}
        self.applied: list[str] = []

    def apply(self, obj: dict[str, Any]) -> None:
        name = obj["metadata"]["name"]
        self.applied.append(f"{obj['kind']}/{name}")
        if name in self.errors:
            raise self.errors[name]


def rendered(kind: str, name: str, api_version: str = "v1", namespace: str | None = "apps", **extra: Any) -> Rendered:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    obj = {"apiVersion": api_version, "kind": kind, "metadata": meta, **extra}
    return Rendered(obj, Path(f"/repo/{name}.yaml"), Path("/repo"))


def show(path: Path) -> str:
    return path.name


def test_immutable_refusal_is_mapped_to_its_rule() -> None:
    applier = FakeApplier(
        {
            "web": api_error(422, 'Deployment.apps "web" is invalid: spec.selector: Invalid value: '
                                  "v1.LabelSelector{}: field is immutable"),
            "db": api_error(422, STS_MESSAGE),
        }
    )  # fmt: skip
    objs = [rendered("Deployment", "web", "apps/v1"), rendered("StatefulSet", "db", "apps/v1")]

    findings = dry_run(objs, applier, show)

    got = {(f.name, f.rule, f.severity, f.field, f.file) for f in findings}
    assert got == {
        ("web", DRY_RUN, "error", "spec.selector", "web.yaml"),
        ("db", DRY_RUN, "error", "spec", "db.yaml"),
    }
    by_name = {f.name: f.message for f in findings}
    assert "[workload-selector]" in by_name["web"] and "includeSelectors: false" in by_name["web"]
    assert "[statefulset-spec]" in by_name["db"]


def test_multiline_server_messages_keep_their_first_line() -> None:
    pvc_message = (
        'PersistentVolumeClaim "data" is invalid: spec: Forbidden: spec is immutable after creation except '
        "resources.requests and volumeAttributesClassName for bound claims\n@@ -10,7 +10,7 @@\n-  x\n+  y\n"
    )
    applier = FakeApplier({"data": api_error(422, pvc_message)})
    [finding] = dry_run([rendered("PersistentVolumeClaim", "data")], applier, show)
    assert "\n" not in finding.message
    assert "[pvc-spec]" in finding.message and "for bound claims (the server's spec diff is omitted)" in finding.message


def test_other_refusals_keep_the_server_message() -> None:
    applier = FakeApplier({"web": api_error(400, 'admission webhook "policy" denied the request: no latest tag')})
    [finding] = dry_run([rendered("Deployment", "web", "apps/v1")], applier, show)
    assert (finding.rule, finding.severity) == (DRY_RUN, "error")
    assert "HTTP 400" in finding.message and "no latest tag" in finding.message


def test_namespaces_and_crds_of_the_same_change_are_skipped_not_failed() -> None:
    crd = rendered(
        "CustomResourceDefinition",
        "dbs.example.com",
        "apiextensions.k8s.io/v1",
        namespace=None,
        spec={"group": "example.com", "names": {"kind": "Database"}},
    )
    objs = [
        rendered("ConfigMap", "cm"),
        rendered("Database", "db", "example.com/v1"),
        rendered("Widget", "w", "other.io/v1"),
        rendered("ConfigMap", "elsewhere", namespace="ghost"),
        crd,
        rendered("Namespace", "apps", namespace=None),
    ]
    applier = FakeApplier(
        {
            "cm": api_error(404, 'namespaces "apps" not found'),
            "elsewhere": api_error(404, 'namespaces "ghost" not found'),
            "db": UnknownKind(404, "NotFound", "no Database in example.com/v1"),
            "w": UnknownKind(404, "NotFound", "no Widget in other.io/v1"),
        }
    )

    findings = dry_run(objs, applier, show)

    assert applier.applied[:2] == ["Namespace/apps", "CustomResourceDefinition/dbs.example.com"]
    got = {(f.name, f.rule, f.severity) for f in findings}
    assert got == {
        ("cm", "server-dry-run-skipped", "warning"),
        ("db", "server-dry-run-skipped", "warning"),
        ("w", DRY_RUN, "error"),
        ("elsewhere", DRY_RUN, "error"),
    }


def test_forbidden_is_a_warning_and_unauthorized_is_bad_input() -> None:
    [finding] = dry_run([rendered("Secret", "s")], FakeApplier({"s": api_error(403, "forbidden")}), show)
    assert (finding.rule, finding.severity) == ("server-dry-run-skipped", "warning")
    with pytest.raises(UserError, match="unauthorized"):
        dry_run([rendered("Secret", "s")], FakeApplier({"s": api_error(401, "Unauthorized")}), show)


def test_unreachable_server_is_bad_input() -> None:
    unreachable = TemporaryApiError(0, "Unreachable", "connection refused")
    with pytest.raises(UserError, match="unreachable"):
        dry_run([rendered("Secret", "s")], FakeApplier({"s": unreachable}), show)


def test_duplicates_are_applied_once_and_clean_objects_give_no_finding() -> None:
    applier = FakeApplier()
    objs = [rendered("ConfigMap", "a"), rendered("ConfigMap", "a"), rendered("ConfigMap", "b")]
    assert dry_run(objs, applier, show) == []
    assert applier.applied == ["ConfigMap/a", "ConfigMap/b"]


@pytest.mark.process
@needs_kubectl
@needs_git
def test_bad_kubeconfig_exits_2(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "repo")
    app_root(repo, workload())
    bogus = tmp_path / "kubeconfig"
    bogus.write_text("this: is not a kubeconfig\n")

    result = repo.validate("--no-diff", "--server-dry-run", "--kubeconfig", str(bogus))

    assert result.code == 2
    assert result.err.startswith(f"resilience: error: {bogus}")


@pytest.mark.integration
@pytest.mark.process
@needs_kubectl
@needs_git
def test_server_dry_run_against_a_cluster(tmp_path: Path, cluster: Cluster) -> None:
    """Real API-server refusals of each kind are recognised as the rule that predicts them."""
    kubeconfig = cluster.kubeconfig
    kubectl = [KUBECTL or "kubectl", "--kubeconfig", str(kubeconfig)]
    namespace = f"validate-{uuid.uuid4().hex[:8]}"
    ns_obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
    old = [ns_obj, workload(), statefulset(), job(), pvc(), configmap({"mode": "a"}, immutable=True), service()]
    repo = Repo(tmp_path / "repo")
    app_root(repo, *old, namespace=namespace)
    live = subprocess.run([kubectl[0], "kustomize", str(repo.path / "apps/web")], capture_output=True, check=True)
    subprocess.run([*kubectl, "apply", "--server-side", "-f", "-"], input=live.stdout, check=True, capture_output=True)
    try:
        assert repo.validate("--no-diff", "--server-dry-run", "--kubeconfig", str(kubeconfig)).code == 0
        ip = subprocess.run(
            [*kubectl, "get", "service", "web", "-n", namespace, "-o", "jsonpath={.spec.clusterIP}"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        a, b, c, d = ip.split(".")
        other_ip = f"{a}.{b}.{c}.{(int(d) % 200) + 20}"
        new = [
            ns_obj,
            workload(labels={"app": "changed"}),
            statefulset(serviceName="db-other"),
            job(image="busybox:1.37"),
            pvc(storageClassName="fast"),
            configmap({"mode": "b"}, immutable=True),
            service(clusterIP=other_ip),
        ]
        for stale in (repo.path / "apps/web").glob("*.yaml"):
            stale.unlink()
        app_root(repo, *new, namespace=namespace)

        result = repo.validate("--no-diff", "--server-dry-run", "--kubeconfig", str(kubeconfig))

        assert result.code == 1
        found = {f["kind"]: f for f in result.findings}
        assert {f["rule"] for f in result.findings} == {DRY_RUN}
        expected = {
            "Deployment": "workload-selector",
            "StatefulSet": "statefulset-spec",
            "Job": "job-template",
            "PersistentVolumeClaim": "pvc-spec",
            "ConfigMap": "immutable-configmap",
            "Service": "service-clusterip",
        }
        messages = {kind: found[kind]["message"] for kind in expected if kind in found}
        assert {k: f"[{v}]" in messages.get(k, "") for k, v in expected.items()} == dict.fromkeys(expected, True), (
            messages
        )
    finally:
        subprocess.run([*kubectl, "delete", "namespace", namespace, "--wait=false"], capture_output=True, check=False)
