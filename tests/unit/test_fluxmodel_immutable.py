"""fluxmodel.immutable: the rule table, the differ, API-message recognition and quantities."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fluxmodel.immutable import (
    MISSING,
    RULES,
    RULES_BY_ID,
    annotated_fields,
    get_path,
    immutable_changes,
    is_forced,
    parse_quantity,
    rule_for_error,
    rules_for,
)


def deployment(**labels: str) -> dict[str, Any]:
    labels = labels or {"app": "web"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": dict(labels)},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": dict(labels)},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {"containers": [{"name": "c", "image": "a"}]},
            },
        },
    }


def test_rule_ids_are_unique_and_each_rule_says_why_and_how_to_fix() -> None:
    assert len(RULES_BY_ID) == len(RULES) + 1
    for rule in RULES:
        assert rule.why and rule.fix and rule.api_message and rule.fields


def test_rules_for_checks_group_and_kind() -> None:
    assert [r.id for r in rules_for("apps/v1", "Deployment")] == ["workload-selector"]
    assert rules_for("example.com/v1", "Deployment") == []
    assert {r.id for r in rules_for("v1", "Service")} == {"service-clusterip"}


def test_selector_change_reports_old_new_and_the_commonlabels_hint() -> None:
    new = deployment(app="web", team="a")
    new["spec"]["selector"]["matchLabels"] = {"app": "web", "team": "a"}

    [change] = immutable_changes(deployment(), new)

    assert change.rule.id == "workload-selector"
    assert (change.field, change.old, change.new) == (
        "spec.selector",
        {"matchLabels": {"app": "web"}},
        {"matchLabels": {"app": "web", "team": "a"}},
    )
    assert "commonLabels" in change.detail
    assert 'API server: "field is immutable"' in change.message


def test_selector_change_not_from_labels_has_no_hint() -> None:
    new = deployment()
    new["spec"]["selector"]["matchLabels"] = {"app": "other"}
    [change] = immutable_changes(deployment(), new)
    assert change.detail == ""


def test_identity_and_version_change() -> None:
    old = deployment()
    assert immutable_changes(old, copy.deepcopy(old)) == []
    moved = deployment()
    moved["apiVersion"] = "apps/v1beta2"
    moved["spec"]["selector"] = {"matchLabels": {"x": "y"}}
    assert [c.rule.id for c in immutable_changes(old, moved)] == ["workload-selector"]
    other_kind = dict(moved, kind="DaemonSet")
    assert immutable_changes(old, other_kind) == []


def test_statefulset_generic_rule_skips_fields_with_their_own_rule() -> None:
    old: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "db"},
        "spec": {"serviceName": "a"},
    }
    new = copy.deepcopy(old)
    new["spec"].update(serviceName="b", podManagementPolicy="Parallel", replicas=3)

    changes = {(c.rule.id, c.field) for c in immutable_changes(old, new)}

    assert changes == {
        ("statefulset-servicename", "spec.serviceName"),
        ("statefulset-spec", "spec.podManagementPolicy"),
    }


def test_pvc_limits_are_immutable_but_requests_may_grow() -> None:
    old: dict[str, Any] = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "d"},
                           "spec": {"resources": {"requests": {"storage": "1Gi"}}}}  # fmt: skip
    grown = copy.deepcopy(old)
    grown["spec"]["resources"]["requests"]["storage"] = "2Gi"
    limited = copy.deepcopy(old)
    limited["spec"]["resources"]["limits"] = {"storage": "2Gi"}

    assert immutable_changes(old, grown) == []
    assert [(c.rule.id, c.field) for c in immutable_changes(old, limited)] == [("pvc-spec", "spec.resources.limits")]


def test_immutable_configmap_only_when_old_was_immutable() -> None:
    old = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}}
    new = dict(old, data={"a": "2"})
    assert immutable_changes(old, new) == []
    assert immutable_changes(dict(old, immutable=False), dict(new, immutable=True)) == []
    assert [c.rule.id for c in immutable_changes(dict(old, immutable=True), dict(new, immutable=True))] == [
        "immutable-configmap"
    ]


def test_sops_encrypted_secrets_are_not_compared() -> None:
    old: dict[str, Any] = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "immutable": True,
                           "data": {"a": "ENC[AES256_GCM,data:x]"}, "sops": {"version": "3"}}  # fmt: skip
    new = copy.deepcopy(old)
    new["data"]["a"] = "ENC[AES256_GCM,data:y]"
    assert immutable_changes(old, new) == []


def test_annotation_fields_any_kind_and_no_double_report() -> None:
    old = deployment()
    old["metadata"]["annotations"] = {"gitops.flux.io/immutable-fields": "spec.selector, spec.replicas ,"}
    new = copy.deepcopy(old)
    new["spec"]["replicas"] = 2
    new["spec"]["selector"] = {"matchLabels": {"x": "y"}}

    changes = [(c.rule.id, c.field) for c in immutable_changes(old, new)]

    assert changes == [("workload-selector", "spec.selector"), ("annotated-immutable", "spec.replicas")]
    assert annotated_fields(old) == ["spec.selector", "spec.replicas"]


def test_get_path() -> None:
    obj = {"a": {"b": [{"c": 1}]}}
    assert get_path(obj, "a.b.0.c") == 1
    assert get_path(obj, "a.b.1.c") is MISSING
    assert get_path(obj, "a.x") is MISSING


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1Gi", Decimal(1024**3)), ("1000Mi", Decimal(1000 * 1024**2)), ("5G", Decimal(5 * 10**9)),
     ("500m", Decimal("0.5")), ("1e3", Decimal(1000)), (10, Decimal(10)), ("lots", None), (None, None)],
)  # fmt: skip
def test_parse_quantity(value: object, expected: Decimal | None) -> None:
    assert parse_quantity(value) == expected


def test_is_forced() -> None:
    d = deployment()
    assert not is_forced(d)
    d["metadata"]["annotations"] = {"kustomize.toolkit.fluxcd.io/force": "Enabled"}
    assert is_forced(d)
    assert is_forced({"metadata": {"labels": {"kustomize.toolkit.fluxcd.io/force": "enabled"}}})


DEPLOY_MSG = 'Deployment.apps "web" is invalid: spec.selector: Invalid value: v1.LabelSelector{}: field is immutable'
STS_MSG = (
    'StatefulSet.apps "db" is invalid: spec: Forbidden: updates to statefulset spec for fields other than '
    "'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', "
    "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
)
SVC_MSG = 'Service "web" is invalid: spec.clusterIPs[0]: Invalid value: []string{"10.9.0.1"}: may not change once set'
JOB_TEMPLATE_MSG = 'Job.batch "m" is invalid: spec.template: Invalid value: core.PodTemplateSpec{}: field is immutable'
JOB_SELECTOR_MSG = 'Job.batch "m" is invalid: spec.selector: Invalid value: "x": field is immutable'
PVC_MSG = (
    'PersistentVolumeClaim "d" is invalid: spec: Forbidden: spec is immutable after creation except '
    "resources.requests and volumeAttributesClassName for bound claims"
)
CM_MSG = 'ConfigMap "c" is invalid: data: Forbidden: field is immutable when `immutable` is set'


@pytest.mark.parametrize(
    ("kind", "message", "rule"),
    [
        ("Deployment", DEPLOY_MSG, "workload-selector"),
        ("StatefulSet", STS_MSG, "statefulset-spec"),
        ("Service", SVC_MSG, "service-clusterip"),
        ("Job", JOB_TEMPLATE_MSG, "job-template"),
        ("Job", JOB_SELECTOR_MSG, "job-selector"),
        ("PersistentVolumeClaim", PVC_MSG, "pvc-spec"),
        ("ConfigMap", CM_MSG, "immutable-configmap"),
        ("Deployment", "admission webhook denied the request", None),
        ("ConfigMap", "field is immutable", None),
    ],
)
def test_rule_for_error(kind: str, message: str, rule: str | None) -> None:
    found = rule_for_error(kind, message)
    assert (found.id if found else None) == rule


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)


@given(json_values, st.sampled_from([r for r in RULES if r.group != "*"]))
def test_an_object_never_conflicts_with_itself(spec: Any, rule: Any) -> None:
    kind = sorted(rule.kinds)[0]
    api_version = f"{rule.group}/v1" if rule.group else "v1"
    obj = {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": "x"},
        "spec": spec,
        "immutable": True,
    }
    assert immutable_changes(obj, copy.deepcopy(obj)) == []


@given(st.integers(1, 50), st.text(alphabet="abcdefgh:.0123456789", min_size=1, max_size=12))
def test_replicas_and_image_never_conflict(replicas: int, image: str) -> None:
    new = deployment()
    new["spec"]["replicas"] = replicas
    new["spec"]["template"]["spec"]["containers"][0]["image"] = image
    assert immutable_changes(deployment(), new) == []
