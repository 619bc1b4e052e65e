"""StagedKustomizations on a real cluster: the CRD against the API server, Ready=False for what it cannot refuse,
and the stage controller holding a stage with its pin while Flux re-applies that GitRepository from Git."""

from __future__ import annotations

import copy
import secrets
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml
from recovery_support import service_account_kubeconfig

from clusters.model import Cluster
from fluxmodel.annotations import PINNED_BY, reconcile_request
from fluxmodel.conditions import condition, is_ready, last_applied_revision, last_attempted_revision
from fluxmodel.kinds import GIT_REPOSITORY, KUSTOMIZATION, STAGED_KUSTOMIZATION
from foundation.waiting import wait_until
from injectors.apps import deployment, dump, kustomization_file
from kubeapi import Invalid
from testsupport.operatorprocess import OperatorProcess

SEED = Path(__file__).resolve().parents[3] / "shared" / "seed" / "000_eae44de37d5b03d3.txt"
DESIGN = """
apiVersion: flux.weave.works/v1
kind: StagedKustomization
metadata:
  name: infrastructure-staged
spec:
  stages:
  - name: validation
    kustomizationRef:
      name: infrastructure-dry-run
    validationChecks:
    - type: build-success
    - type: compatibility-check
  - name: deployment
    kustomizationRef:
      name: infrastructure
    dependsOn:
    - validation
    healthChecks:
    - type: pod-ready
      timeout: 300s
"""


def design_example() -> dict[str, Any]:
    """The design document's YAML as written (the copy above when the seed is not beside this worktree)."""
    if SEED.exists():
        text = SEED.read_text()
        start = text.index("apiVersion: flux.weave.works/v1")
        return dict(yaml.safe_load(text[start : text.index("```", start)]))
    return dict(yaml.safe_load(DESIGN))


@pytest.fixture
def namespace(cluster: Cluster) -> Iterator[str]:
    ns = f"stg-{secrets.token_hex(3)}"
    cluster.kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    yield ns
    for obj in cluster.kube.list(STAGED_KUSTOMIZATION.api_version, STAGED_KUSTOMIZATION.kind, ns):
        cluster.kube.delete(STAGED_KUSTOMIZATION.api_version, STAGED_KUSTOMIZATION.kind, obj["metadata"]["name"], ns)
    for kind in (KUSTOMIZATION, GIT_REPOSITORY):
        for obj in cluster.kube.list(kind.api_version, kind.kind, ns):
            cluster.kube.delete(kind.api_version, kind.kind, obj["metadata"]["name"], ns)
    cluster.kube.delete("v1", "Namespace", ns)


def controller(
    cluster: Cluster, namespace: str, tmp_path: Path, kubeconfig: Path | None = None, *extra: str
) -> OperatorProcess:
    args = ("--namespace", namespace, "--state-namespace", namespace, "--lease-duration", "3", *extra)
    log = tmp_path / "stage.log"
    return OperatorProcess(kubeconfig or cluster.kubeconfig, *args, log=log, command="stage").start()


MANIFESTS = Path(str(resources.files("recovery") / "manifests"))


def shipped_identity(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> tuple[Path, list[tuple[str, str, str, str | None]]]:
    """A ServiceAccount bound to exactly the shipped stage controller roles (the Role in `namespace`), and a
    kustomize-controller ServiceAccount with cluster-admin (as Flux installs it) to dry-run as; returns the
    ServiceAccount's kubeconfig and what to delete."""
    kube, suffix = cluster.kube, secrets.token_hex(3)
    created: list[tuple[str, str, str, str | None]] = []

    def make(obj: dict[str, Any]) -> None:
        kube.apply(obj)
        created.append((obj["apiVersion"], obj["kind"], obj["metadata"]["name"], obj["metadata"].get("namespace")))

    for name in ("stages", "kustomize-controller"):
        make({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": namespace}})
    for shipped in yaml.safe_load_all((MANIFESTS / "rbac-stages.yaml").read_text()):
        obj = copy.deepcopy(shipped)
        obj["metadata"]["name"] = f"{obj['metadata']['name']}-{suffix}"
        if obj["kind"] in ("Role", "RoleBinding"):
            obj["metadata"]["namespace"] = namespace
        if obj["kind"].endswith("Binding"):
            obj["roleRef"]["name"] = f"{obj['roleRef']['name']}-{suffix}"
            obj["subjects"] = [{"kind": "ServiceAccount", "name": "stages", "namespace": namespace}]
        make(obj)
    make(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": f"stg-reconciler-{suffix}"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"kind": "ServiceAccount", "name": "kustomize-controller", "namespace": namespace}],
        }
    )
    return service_account_kubeconfig(cluster, namespace, "stages", tmp_path), created


def in_namespace(obj: dict[str, Any], namespace: str, name: str | None = None) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    out["metadata"]["namespace"] = namespace
    if name:
        out["metadata"]["name"] = name
    return out


def test_the_design_example_is_accepted_as_written_and_invalid_specs_are_refused(
    cluster: Cluster, namespace: str
) -> None:
    kube = cluster.kube
    stored = kube.apply(in_namespace(design_example(), namespace))
    assert stored["spec"] == design_example()["spec"]

    def refused(change: Any, name: str) -> str:
        obj = in_namespace(design_example(), namespace, name)
        change(obj["spec"]["stages"])
        with pytest.raises(Invalid) as info:
            kube.create(obj)  # a POST: server-side apply refuses duplicate list keys before validation (HTTP 500)
        return info.value.message

    unknown = refused(lambda s: s[1].update(dependsOn=["nothere"]), "unknown-stage")
    assert "every dependsOn entry must name a stage of this StagedKustomization" in unknown
    itself = refused(lambda s: s[1].update(dependsOn=["deployment"]), "self-dependency")
    assert "stage deployment depends on itself" in itself
    check = refused(lambda s: s[1]["healthChecks"][0].update(type="pods-ready"), "unknown-check")
    assert 'Unsupported value: "pods-ready"' in check
    twice = refused(lambda s: s[1].update(name="validation", dependsOn=[]), "duplicate-stage")
    assert "Duplicate value" in twice
    timeout = refused(lambda s: s[1]["healthChecks"][0].update(timeout="5 minutes"), "bad-timeout")
    assert "timeout" in timeout


def ready(obj: dict[str, Any] | None) -> tuple[str, str, str]:
    cond = condition(obj or {}, "Ready")
    return (cond.status, cond.reason, cond.message) if cond else ("", "", "")


def test_what_the_schema_cannot_catch_is_ready_false_naming_the_stage(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    kube = cluster.kube
    cycle = in_namespace(design_example(), namespace, "cycle")
    cycle["spec"]["stages"][0]["dependsOn"] = ["deployment"]
    kube.apply(cycle)  # the API server accepts it: every dependsOn names a stage
    kube.apply(in_namespace(design_example(), namespace))  # its Kustomizations do not exist
    process = controller(cluster, namespace, tmp_path)
    try:

        def get(name: str) -> dict[str, Any] | None:
            return kube.get(STAGED_KUSTOMIZATION.api_version, STAGED_KUSTOMIZATION.kind, name, namespace)

        wait_until(lambda: ready(get("cycle"))[0] == "False", 30, "Ready=False on the cycle", detail=process.log)
        _, reason, message = ready(get("cycle"))
        assert reason == "InvalidStages" and message.startswith(
            "stage deployment: dependsOn cycle deployment -> validation"
        )
        wait_until(lambda: ready(get("infrastructure-staged"))[0] == "False", 30, "Ready=False", detail=process.log)
        _, reason, message = ready(get("infrastructure-staged"))
        assert reason == "KustomizationNotFound"
        assert message.startswith(f"stage validation: Kustomization {namespace}/infrastructure-dry-run not found")
        assert "nothing is promoted" in message
        assert not kube.list(GIT_REPOSITORY.api_version, GIT_REPOSITORY.kind, namespace)  # no head, no pin
    finally:
        assert process.stop() == 0


def test_a_stage_held_by_its_pin_survives_flux_reapplying_its_source_from_git(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    """The stages' GitRepositories are themselves applied from Git by a parent Kustomization; a selector change is
    held at validation while Flux re-applies them, production never attempts it, and a fix then flows through. The
    controller authenticates as a ServiceAccount bound to exactly the shipped roles and dry-runs as
    kustomize-controller (what holds with those roles holds with cluster-admin: one run proves both)."""
    kube, git, flux_ns = cluster.kube, cluster.git, cluster.bootstrap.flux_namespace
    app = f"apps/{namespace}"
    stages = ("validation", "production")
    sources = []
    for stage in stages:
        src = cluster.bootstrap.git_repository(git.url)
        sources.append(in_namespace(src, namespace, f"{namespace}-{stage}"))
    web = deployment("web", "", {"app": "web"}, replicas=1)
    first = git.commit(
        f"staged test {namespace}",
        write={
            f"{app}/deployment.yaml": dump(web),
            f"{app}/kustomization.yaml": dump(kustomization_file(["deployment.yaml"])),
            f"sources/{namespace}/sources.yaml": dump(*sources),
        },
    )
    parent = cluster.bootstrap.kustomization(f"{namespace}-sources", f"sources/{namespace}", wait=False)
    parent = in_namespace(parent, namespace)
    parent["spec"]["sourceRef"]["namespace"] = flux_ns
    kube.apply(parent)
    scratch = f"{namespace}-v"  # the validation stage's copy of the app
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": scratch}})
    for stage in stages:
        target = scratch if stage == "validation" else namespace
        manifest = cluster.bootstrap.kustomization(
            f"{namespace}-{stage}", app, wait=stage == "production", timeout="20s", targetNamespace=target
        )
        manifest = in_namespace(manifest, namespace)
        manifest["spec"]["sourceRef"] = {"kind": GIT_REPOSITORY.kind, "name": f"{namespace}-{stage}"}
        kube.apply(manifest)

    def ks(stage: str) -> dict[str, Any]:
        return kube.get(KUSTOMIZATION.api_version, KUSTOMIZATION.kind, f"{namespace}-{stage}", namespace) or {}

    def source(stage: str) -> dict[str, Any]:
        return kube.get(GIT_REPOSITORY.api_version, GIT_REPOSITORY.kind, f"{namespace}-{stage}", namespace) or {}

    wait_until(
        lambda: all(is_ready(ks(s)) and last_applied_revision(ks(s)) == first for s in stages), 90, "stages Ready"
    )
    staged = {
        "apiVersion": STAGED_KUSTOMIZATION.api_version,
        "kind": STAGED_KUSTOMIZATION.kind,
        "metadata": {"name": "app", "namespace": namespace},
        "spec": {
            "stages": [
                {
                    "name": "validation",
                    "kustomizationRef": {"name": f"{namespace}-validation"},
                    "validationChecks": [{"type": "build-success"}, {"type": "compatibility-check"}],
                },
                {
                    "name": "production",
                    "kustomizationRef": {"name": f"{namespace}-production"},
                    "dependsOn": ["validation"],
                    "healthChecks": [{"type": "pod-ready", "timeout": "60s"}],
                },
            ]
        },
    }
    kube.apply(staged)
    kubeconfig, created = shipped_identity(cluster, namespace, tmp_path)
    as_flux = f"system:serviceaccount:{namespace}:kustomize-controller"
    process = controller(cluster, namespace, tmp_path, kubeconfig, "--dry-run-as", as_flux)

    def status() -> dict[str, Any]:
        obj = kube.get(STAGED_KUSTOMIZATION.api_version, STAGED_KUSTOMIZATION.kind, "app", namespace)
        return dict((obj or {}).get("status") or {})

    def request(kind: Any, name: str, ns: str) -> None:
        kube.merge_patch(kind.api_version, kind.kind, name, ns, reconcile_request())

    try:
        wait_until(lambda: ready({"status": status()})[1] == "Succeeded", 60, "adoption", detail=process.log)
        assert {source(s)["metadata"]["annotations"][PINNED_BY] for s in stages} == {
            f"StagedKustomization/{namespace}/app"
        }
        bad = git.commit(
            "selector change",
            write={f"{app}/deployment.yaml": dump(deployment("web", "", {"app": "web", "v": "2"}, replicas=1))},
        )
        request(GIT_REPOSITORY, "app-head", namespace)
        wait_until(
            lambda: any(f.get("revision") == bad for f in status().get("failedRevisions") or []),
            60,
            "the selector change held at validation",
            detail=process.log,
        )
        failure = next(f for f in status()["failedRevisions"] if f["revision"] == bad)
        assert failure["stage"] == "validation" and failure["check"] == "compatibility-check"
        assert "field is immutable" in failure["message"]
        # Flux re-applies the stages' GitRepositories from Git (which sets no commit): the pins stay.
        request(GIT_REPOSITORY, cluster.bootstrap.git_repository(git.url)["metadata"]["name"], flux_ns)
        request(KUSTOMIZATION, f"{namespace}-sources", namespace)

        def sources_kustomization() -> dict[str, Any]:
            return kube.get(KUSTOMIZATION.api_version, KUSTOMIZATION.kind, f"{namespace}-sources", namespace) or {}

        wait_until(
            lambda: last_applied_revision(sources_kustomization()) == bad, 60, "the parent to re-apply the sources"
        )
        for stage in stages:
            assert source(stage)["spec"]["ref"]["commit"] == first.split(":")[-1]
            assert last_attempted_revision(ks(stage)) == first  # production never attempted the bad revision
        fix = git.commit(
            "fix: keep the selector, new image",
            write={
                f"{app}/deployment.yaml": dump(
                    deployment("web", "", {"app": "web"}, replicas=1, image="registry.local/app:1.1.0")
                )
            },
        )
        request(GIT_REPOSITORY, "app-head", namespace)
        wait_until(
            lambda: [s.get("passedRevision") for s in status().get("stages") or []] == [fix, fix],
            120,
            "the fix to pass every stage",
            detail=process.log,
        )
        assert is_ready(ks("production")) and last_applied_revision(ks("production")) == fix
        assert ready({"status": status()})[1] == "Succeeded"
        assert "orbidden" not in process.log(), process.log()[-2000:]
    finally:
        assert process.stop() == 0
        for api_version, kind, name, ns in reversed(created):
            kube.delete(api_version, kind, name, ns)
        kube.delete(KUSTOMIZATION.api_version, KUSTOMIZATION.kind, f"{namespace}-sources", namespace)
        kube.delete("v1", "Namespace", scratch)
        git.commit(f"staged test {namespace} done", delete=[app, f"sources/{namespace}"])


def test_the_shipped_stage_controller_objects_are_accepted_and_grant_no_deletes(cluster: Cluster) -> None:
    kinds = []
    for name in ("stagedkustomization-crd.yaml", "rbac-stages.yaml", "stages.yaml"):
        for obj in yaml.safe_load_all((MANIFESTS / name).read_text()):
            cluster.kube.apply(obj, dry_run=True)
            kinds.append(obj["kind"])
    assert sorted(kinds) == sorted(
        [
            "CustomResourceDefinition",
            "ClusterRole",
            "ClusterRoleBinding",
            "Role",
            "RoleBinding",
            "ServiceAccount",
            "Deployment",
            "Service",
        ]
    )
    for role in yaml.safe_load_all((MANIFESTS / "rbac-stages.yaml").read_text()):
        for rule in role.get("rules") or []:
            assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"]
            assert "delete" not in rule["verbs"] and not {"secrets", "namespaces"} & set(rule["resources"])
    (deployment_,) = [
        o for o in yaml.safe_load_all((MANIFESTS / "stages.yaml").read_text()) if o["kind"] == "Deployment"
    ]
    container = deployment_["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["resilience", "stage"]
    assert "--dry-run-as=system:serviceaccount:flux-system:kustomize-controller" in container["args"]
