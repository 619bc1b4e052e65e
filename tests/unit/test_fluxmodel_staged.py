"""The StagedKustomization model: the design's example as written, what the schema refuses, what only the model
can (cycles), and that the CRD's schema says the same as the model (one fact, two readers)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from fluxmodel import staged
from fluxmodel.kinds import STAGED_KUSTOMIZATION, ObjectRef

ROOT = Path(__file__).resolve().parents[2]
CRD = ROOT / "recovery" / "manifests" / "stagedkustomization-crd.yaml"
SEED = ROOT.parent / "shared" / "seed" / "000_eae44de37d5b03d3.txt"

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


def design() -> dict[str, Any]:
    return dict(yaml.safe_load(DESIGN))


def test_the_design_example_parses_without_problems() -> None:
    spec = staged.parse(design(), "flux-system")
    assert spec.problems == ()
    assert spec.ref == ObjectRef("StagedKustomization", "flux-system", "infrastructure-staged")
    validation, deployment = spec.stages
    assert validation.validation_checks == ("build-success", "compatibility-check")
    assert validation.kustomization == ObjectRef("Kustomization", "flux-system", "infrastructure-dry-run")
    assert deployment.depends_on == ("validation",)
    assert deployment.health_checks == (staged.HealthCheck("pod-ready", 300.0),)
    assert [s.name for s in spec.order()] == ["validation", "deployment"]
    assert [s.name for s in spec.downstream("validation")] == ["deployment"]


@pytest.mark.skipif(not SEED.exists(), reason="the shared seed document is not beside this worktree")
def test_the_example_here_is_the_design_documents_verbatim() -> None:
    text = SEED.read_text()
    block = text[text.index("kind: StagedKustomization") - len("apiVersion: flux.weave.works/v1\n") :]
    block = block[: block.index("```")]
    assert yaml.safe_load(block) == design()


def _with(change: Any) -> dict[str, Any]:
    obj = copy.deepcopy(design())
    change(obj["spec"]["stages"])
    return obj


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda s: s[1].update(dependsOn=["nothere"]), "stage deployment: dependsOn names 'nothere'"),
        (lambda s: s[1].update(dependsOn=["deployment"]), "stage deployment: dependsOn names the stage itself"),
        (lambda s: s[0].update(dependsOn=["deployment"]), "stage deployment: dependsOn cycle deployment -> validation"),
        (lambda s: s[1]["healthChecks"][0].update(type="pods-ready"), "healthChecks type 'pods-ready' is none of"),
        (lambda s: s[1]["healthChecks"][0].update(timeout="5 minutes"), "timeout '5 minutes' is not a duration"),
        (lambda s: s[0]["validationChecks"].append({"type": "lint"}), "validationChecks type 'lint' is none of"),
        (lambda s: s[1].update(name="validation"), "stage validation: the name is used by another stage"),
        (lambda s: s[1].update(kustomizationRef={"name": "infrastructure-dry-run"}), "a Kustomization of its own"),
        (lambda s: s[1].update(approval="sometimes"), "approval 'sometimes' is none of automatic, manual"),
        (lambda s: s[1].update(soakTime="a while"), "soakTime 'a while' is not a duration"),
    ],
)
def test_every_problem_names_the_stage(change: Any, problem: str) -> None:
    problems = [str(p) for p in staged.parse(_with(change)).problems]
    assert any(problem in p for p in problems), problems


@pytest.mark.parametrize(
    ("name", "like"),
    [
        ("Canary", "canary"),
        ("canary_eu", "canary-eu"),
        ("-canary", "canary"),
        ("canary.eu", "canary-eu"),
        ("x" * 64, "x" * 63),
        ("__", ""),
    ],
)
def test_a_stage_name_that_is_no_dns_label_is_a_problem_naming_the_stage_and_the_rule(name: str, like: str) -> None:
    (problem,) = staged.parse(_with(lambda s: s[1].update(name=name, dependsOn=["validation"]))).problems
    assert problem.code == staged.STAGE_NAME
    assert problem.message.startswith(f"stage {name!r}: the name is not a DNS-1123 label")
    assert "at most 63 lower-case letters, digits and '-'" in problem.message
    assert f"rename it (like {like})" in problem.message if like else "rename it: at most" in problem.message


@pytest.mark.parametrize("name", ["a", "canary", "prod-eu-1", "0", "x" * 63])
def test_dns_label_stage_names_are_fine(name: str) -> None:
    assert staged.parse(_with(lambda s: s[1].update(name=name))).problems == ()


def _stage(name: str, kustomization: str = "") -> staged.Stage:
    return staged.Stage(name, ObjectRef("Kustomization", "flux-system", kustomization or f"infra-{name}"))


def _git(name: str, namespace: str = "flux-system") -> ObjectRef:
    return ObjectRef("GitRepository", namespace, name)


def test_a_stage_reading_a_gitrepository_of_its_own_can_be_held() -> None:
    assert staged.source_problem(_stage("canary"), _git("infra-canary"), {_git("infra"): "validation"}) is None
    assert staged.source_problem(_stage("canary"), _git("infra", "apps"), {_git("infra"): "validation"}) is None


def test_two_stages_reading_one_gitrepository_is_a_problem_naming_both_and_the_source() -> None:
    problem = staged.source_problem(_stage("canary"), _git("infra"), {_git("infra"): "validation"})
    assert problem is not None and problem.code == staged.SHARED_SOURCE
    assert problem.message.startswith(
        "stage canary: reads GitRepository flux-system/infra like stage validation; give each stage a GitRepository "
        "of its own"
    )


@pytest.mark.parametrize(
    ("kind", "says"), [("OCIRepository", "kind OCIRepository"), ("Bucket", "kind Bucket"), ("", "no kind")]
)
def test_a_source_no_pin_can_hold_is_a_problem_naming_the_stage_kustomization_and_kind(kind: str, says: str) -> None:
    problem = staged.source_problem(_stage("canary"), ObjectRef(kind, "flux-system", "infra"), {})
    assert problem is not None and problem.code == staged.UNPINNABLE_SOURCE
    assert problem.message.startswith(f"stage canary: Kustomization flux-system/infra-canary reads a source of {says}")
    assert "only a GitRepository holds a stage back" in problem.message


def test_a_three_stage_cycle_is_one_problem_naming_every_stage() -> None:
    obj = _with(lambda s: s.append({"name": "prod", "kustomizationRef": {"name": "p"}, "dependsOn": ["deployment"]}))
    obj["spec"]["stages"][0]["dependsOn"] = ["prod"]
    (problem,) = staged.parse(obj).problems
    assert problem.code == staged.CYCLE
    assert problem.message.startswith(
        "stage deployment: dependsOn cycle deployment -> validation -> prod -> deployment"
    )


def test_no_stages_is_a_problem_and_suspend_is_read() -> None:
    assert staged.parse({"kind": "StagedKustomization", "metadata": {"name": "x"}, "spec": {}}).problems
    obj = design()
    obj["spec"]["suspend"] = True
    assert staged.parse(obj).suspend


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("300s", 300.0), ("5m", 300.0), ("1h30m", 5400.0), ("500ms", 0.5), ("1.5s", 1.5), ("0s", 0.0)],
)
def test_durations_are_read_as_flux_writes_them(text: str, seconds: float) -> None:
    assert staged.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["300", "5 minutes", "", "-1s", "1d", None, 5])
def test_what_is_not_a_duration(text: Any) -> None:
    assert staged.parse_duration(text) is None


def test_revisions_are_named_by_commit() -> None:
    rev = "main@sha1:" + "0123456789abcdef" * 2 + "01234567"
    assert staged.same_commit(rev, "0123456")
    assert staged.same_commit(rev, rev)
    assert not staged.same_commit(rev, "012345")  # too short to name one commit
    assert not staged.same_commit(rev, "1234567")
    assert staged.short(rev) == "main@0123456"


def test_the_crd_schema_says_what_the_model_says() -> None:
    crd = yaml.safe_load(CRD.read_text())
    assert crd["spec"]["group"] == STAGED_KUSTOMIZATION.group
    assert crd["spec"]["names"]["plural"] == STAGED_KUSTOMIZATION.plural
    (version,) = crd["spec"]["versions"]
    assert version["name"] == STAGED_KUSTOMIZATION.version
    stage = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["stages"]["items"]["properties"]
    assert stage["validationChecks"]["items"]["properties"]["type"]["enum"] == list(staged.VALIDATION_CHECKS)
    health = stage["healthChecks"]["items"]["properties"]
    assert health["type"]["enum"] == list(staged.HEALTH_CHECKS)
    assert stage["approval"]["enum"] == list(staged.APPROVALS)
    assert health["timeout"]["pattern"] == stage["soakTime"]["pattern"] == staged.DURATION_PATTERN
    assert stage["name"]["pattern"] == staged.STAGE_NAME_PATTERN
    assert stage["name"]["maxLength"] == staged.STAGE_NAME_MAX
    for text in ("300s", "1h30m", "500ms", "1.5s"):
        assert staged.parse_duration(text) is not None
    assert "status" in version["subresources"]
    assert any(c["jsonPath"] == ".status.summary" for c in version["additionalPrinterColumns"])
