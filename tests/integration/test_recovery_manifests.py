"""The shipped manifests: the PrometheusRule checked and unit-tested by the real promtool, the objects accepted by
the real API server, and the least-privilege RBAC enough for a real recovery (and nothing on user data)."""

from __future__ import annotations

import secrets
import subprocess
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml
from recovery_support import service_account_kubeconfig, start_operator

from clusters.build import require
from clusters.model import Cluster
from fluxmodel import signatures as sig
from fluxmodel.kinds import FLUX_NAMESPACE, KUSTOMIZATION, ObjectRef
from foundation.waiting import wait_until
from injectors.apps import deployment, dump, kustomization_file
from injectors.testapp import App
from kubeapi import connect

MANIFESTS = Path(str(resources.files("recovery") / "manifests"))


def manifests(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((MANIFESTS / name).read_text()) if d]


def rules_file(tmp_path: Path) -> Path:
    (rule,) = manifests("prometheusrule.yaml")
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}, sort_keys=False))
    return path


RULE_TESTS = """
rule_files: [rules.yaml]
evaluation_interval: 1m
tests:
- interval: 1m
  input_series:
  - series: 'flux_kustomization_ready{namespace="flux-system",name="apps"}'
    values: '0x20'
  - series: 'flux_kustomization_last_applied_revision_timestamp{namespace="flux-system",name="apps"}'
    values: '0x20'
  - series: 'flux_kustomization_ready{namespace="flux-system",name="fine"}'
    values: '1x20'
  - series: 'flux_kustomization_last_applied_revision_timestamp{namespace="flux-system",name="fine"}'
    values: '0x20'
  - series: 'flux_helmrelease_ready{namespace="shop",name="web"}'
    values: '0x20'
  - series: 'flux_helmrelease_suspended{namespace="shop",name="web"}'
    values: '0x20'
  - series: 'flux_helmrelease_last_applied_revision_timestamp{namespace="shop",name="web"}'
    values: '0x20'
  - series: 'flux_dependency_cycle{kind="Kustomization",namespace="flux-system",name="a",cycle="a -> b -> a"}'
    values: '1x20'
  - series: 'flux_dependency_blocked_dependents{kind="Kustomization",namespace="flux-system",name="apps"}'
    values: '2x20'
  - series: 'flux_kustomization_stuck_seconds{namespace="flux-system",name="apps"}'
    values: '700x20'
  - series: 'flux_recovery_escalations_total{kind="HelmRelease",action="rollback_helm_release",why="retries"}'
    values: '0 0 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1'
  alert_rule_test:
  - eval_time: 5m
    alertname: FluxKustomizationStuck
    exp_alerts: []
  - eval_time: 10m
    alertname: FluxKustomizationStuck
    exp_alerts:
    - exp_labels: {severity: warning, namespace: flux-system, name: apps}
      exp_annotations:
        runbook_url: docs/runbooks/FluxKustomizationStuck.md
        summary: "Flux kustomization apps stuck for > 5 minutes"
        description: "Kustomization apps in namespace flux-system has been stuck for more than 5 minutes"
  - eval_time: 10m
    alertname: FluxHelmReleaseStuck
    exp_alerts:
    - exp_labels: {severity: warning, namespace: shop, name: web}
      exp_annotations:
        runbook_url: docs/runbooks/FluxHelmReleaseStuck.md
        summary: "Flux HelmRelease web stuck for > 5 minutes"
        description: "HelmRelease web in namespace shop has not been Ready for more than 5 minutes"
  - eval_time: 3m
    alertname: FluxDependencyCycle
    exp_alerts:
    - exp_labels: {severity: critical, kind: Kustomization, namespace: flux-system, name: a, cycle: "a -> b -> a"}
      exp_annotations:
        runbook_url: docs/runbooks/FluxDependencyCycle.md
        summary: "dependsOn cycle through Kustomization flux-system/a"
        description: "a -> b -> a: Flux waits forever and reports nothing; kustomize-controller also stops
          reconciling this source's Kustomizations on new revisions. Break the cycle in Git."
  - eval_time: 7m
    alertname: FluxDependencyDeadlock
    exp_alerts:
    - exp_labels: {severity: warning, namespace: flux-system, name: apps}
      exp_annotations:
        runbook_url: docs/runbooks/FluxDependencyDeadlock.md
        summary: "Kustomization flux-system/apps has blocked its dependents for > 10 minutes"
        description: "Everything that dependsOn flux-system/apps waits while it is not Ready."
  - eval_time: 4m
    alertname: FluxRecoveryEscalated
    exp_alerts:
    - exp_labels: {severity: warning, kind: HelmRelease, action: rollback_helm_release, why: retries}
      exp_annotations:
        runbook_url: docs/runbooks/FluxRecoveryEscalated.md
        summary: "Automated recovery gave up on a HelmRelease (rollback_helm_release: retries)"
        description: "See the RecoveryEscalated Event and the gitops.flux.io/recovery-escalated annotation
          on the object."
"""


def test_promtool_accepts_the_rules_and_they_fire_as_designed(tmp_path: Path) -> None:
    promtool = require("prometheus").binary("promtool")
    rules = rules_file(tmp_path)
    check = subprocess.run([str(promtool), "check", "rules", str(rules)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    (rule,) = manifests("prometheusrule.yaml")
    count = sum(len(group["rules"]) for group in rule["spec"]["groups"])
    assert f"SUCCESS: {count} rules found" in check.stdout
    (tmp_path / "tests.yaml").write_text(RULE_TESTS)
    test = subprocess.run([str(promtool), "test", "rules", "tests.yaml"], capture_output=True, text=True, cwd=tmp_path)
    assert test.returncode == 0, test.stdout + test.stderr
    stuck = rule["spec"]["groups"][0]["rules"][0]
    assert stuck["alert"] == "FluxKustomizationStuck" and stuck["for"] == "2m"  # the design's rule, verbatim
    assert "(time() - flux_kustomization_last_applied_revision_timestamp) > 300" in stuck["expr"]


ESCALATION_TESTS = """
rule_files: [rules.yaml]
evaluation_interval: 1m
tests:
- interval: 1m
  input_series:
  - series: 'flux_recovery_escalations_total{kind="Kustomization",action="recreate_deployment",why="retries"}'
    values: '_ _ 1x10'
  - series: 'flux_recovery_escalations_total{kind="HelmRelease",action="rollback_helm_release",why="retries"}'
    values: '0 0 1x10'
  alert_rule_test:
  - eval_time: 4m
    alertname: FluxRecoveryEscalated
    exp_alerts:
    - exp_labels: {severity: warning, kind: HelmRelease, action: rollback_helm_release, why: retries}
      exp_annotations:
        runbook_url: docs/runbooks/FluxRecoveryEscalated.md
        summary: "Automated recovery gave up on a HelmRelease (rollback_helm_release: retries)"
        description: "See the RecoveryEscalated Event and the gitops.flux.io/recovery-escalated annotation
          on the object."
"""


def test_an_escalation_counter_must_exist_at_zero_before_its_first_escalation(tmp_path: Path) -> None:
    """Why the operator exports every escalation counter at 0: one that appears at 1 never pages."""
    promtool = require("prometheus").binary("promtool")
    rules_file(tmp_path)
    (tmp_path / "tests.yaml").write_text(ESCALATION_TESTS)
    test = subprocess.run([str(promtool), "test", "rules", "tests.yaml"], capture_output=True, text=True, cwd=tmp_path)
    assert test.returncode == 0, test.stdout + test.stderr


def test_promtool_refuses_a_broken_rule(tmp_path: Path) -> None:
    """The check above can fail: the same promtool rejects a rule with a bad expression."""
    promtool = require("prometheus").binary("promtool")
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump({"groups": [{"name": "g", "rules": [{"alert": "A", "expr": "flux_kustomization_ready ==="}]}]})
    )
    check = subprocess.run([str(promtool), "check", "rules", str(bad)], capture_output=True, text=True)
    assert check.returncode != 0


def test_the_api_server_accepts_the_shipped_objects(cluster: Cluster) -> None:
    kinds = []
    for name in ("serviceaccount.yaml", "rbac.yaml", "configmap.yaml", "deployment.yaml", "service.yaml"):
        for obj in manifests(name):
            cluster.kube.apply(obj, dry_run=True)
            kinds.append(obj["kind"])
    assert sorted(kinds) == sorted(
        [
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "Role",
            "RoleBinding",
            "ConfigMap",
            "Deployment",
            "Service",
        ]
    )
    listed = manifests("kustomization.yaml")[0]["resources"]
    assert sorted(listed) == sorted(p.name for p in MANIFESTS.glob("*.yaml") if p.name != "kustomization.yaml")


def test_the_cluster_role_grants_nothing_on_user_data() -> None:
    role = next(o for o in manifests("rbac.yaml") if o["kind"] == "ClusterRole")
    for rule in role["rules"]:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"] and "*" not in rule["apiGroups"]
        assert not {"secrets", "persistentvolumeclaims", "persistentvolumes", "namespaces"} & set(rule["resources"])


def bind(cluster: Cluster, state_ns: str, sa_ns: str, suffix: str) -> list[tuple[str, str, str, str | None]]:
    """The shipped ClusterRole and Role, bound to a ServiceAccount of the test's own; returns what to delete."""
    created: list[tuple[str, str, str, str | None]] = []
    for shipped in manifests("rbac.yaml"):
        obj = dict(shipped)
        obj["metadata"] = {**obj["metadata"], "name": f"{obj['metadata']['name']}-{suffix}"}
        if obj["kind"] in ("Role", "RoleBinding"):
            obj["metadata"]["namespace"] = state_ns
        if obj["kind"].endswith("Binding"):
            obj["roleRef"] = {**obj["roleRef"], "name": f"{obj['roleRef']['name']}-{suffix}"}
            obj["subjects"] = [{"kind": "ServiceAccount", "name": "operator", "namespace": sa_ns}]
        cluster.kube.apply(obj)
        created.append((obj["apiVersion"], obj["kind"], obj["metadata"]["name"], obj["metadata"].get("namespace")))
    return created


def test_the_shipped_rbac_is_enough_to_recover_and_forbids_user_data(
    cluster: Cluster, app: App, tmp_path: Path
) -> None:
    suffix = secrets.token_hex(3)
    state_ns = f"rc-rbac-{suffix}"
    cluster.kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": state_ns}})
    cluster.kube.apply(
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "operator", "namespace": state_ns}}
    )
    created = bind(cluster, state_ns, state_ns, suffix)
    operator = None
    try:
        kubeconfig = service_account_kubeconfig(cluster, state_ns, "operator", tmp_path)
        sa = connect(kubeconfig)
        for verb, resource, ns in (
            ("delete", "secrets", app.ns),
            ("delete", "persistentvolumeclaims", app.ns),
            ("delete", "namespaces", None),
            ("get", "secrets", app.ns),
            ("delete", "deployments", app.ns),
        ):
            review = sa.create(
                {
                    "apiVersion": "authorization.k8s.io/v1",
                    "kind": "SelfSubjectAccessReview",
                    "spec": {
                        "resourceAttributes": {
                            "verb": verb,
                            "resource": resource,
                            "namespace": ns,
                            "group": "apps" if resource == "deployments" else "",
                        }
                    },
                }
            )
            assert review["status"]["allowed"] is (resource == "deployments"), (verb, resource)
        sa.close()

        operator = start_operator(cluster, tmp_path, state_namespace=state_ns, kubeconfig=kubeconfig)
        files = {
            f"{app.path}/deployment.yaml": dump(deployment("web", app.ns, {"app": "web"})),
            f"{app.path}/kustomization.yaml": dump(kustomization_file(["deployment.yaml"])),
        }
        first = app.setup(files)
        ref = ObjectRef(KUSTOMIZATION.kind, FLUX_NAMESPACE, app.name)
        wait_until(lambda: app.ready(ref, first), 90, "the app to be Ready")
        head = app.commit(
            "selector change",
            {f"{app.path}/deployment.yaml": dump(deployment("web", app.ns, {"app": "web", "v": "2"}))},
        )
        wait_until(lambda: app.shows(ref, sig.SELECTOR_IMMUTABLE), 90, "the selector fault")
        wait_until(
            lambda: app.ready(ref, head) and app.available("web"),
            120,
            "recovery with the shipped RBAC",
            detail=operator.log,
        )
        assert "Forbidden" not in operator.log() and "forbidden" not in operator.log()
        state = cluster.kube.list(
            "v1", "ConfigMap", state_ns, label_selector="gitops.flux.io/reconciliation-state=true"
        )
        assert state, "the operator kept no reconciliation-state with its Role"
    finally:
        if operator is not None:
            assert operator.stop() == 0
        for api_version, kind, name, ns in reversed(created):
            cluster.kube.delete(api_version, kind, name, ns)
        cluster.kube.delete("v1", "Namespace", state_ns)


@pytest.mark.parametrize("name", ["deployment.yaml"])
def test_the_deployment_runs_the_recover_command(name: str) -> None:
    (dep,) = manifests(name)
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["resilience", "recover"]
    assert dep["spec"]["template"]["spec"]["serviceAccountName"] == "gitops-resilience-operator"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
