"""Recovery patterns: the design's format, validation errors that name the bad pattern, matching real messages."""

from __future__ import annotations

import pytest
import yaml

from fluxmodel import signatures as sig
from recovery.defaults import DEFAULT_PATTERNS, default_patterns, default_yaml
from recovery.errors import PatternError
from recovery.health import Failure
from recovery.patterns import ACTION_NAMES, PatternSet, parse

# Messages as the pinned controllers print them (seen on the local cluster), and older forms users still run.
KS_SELECTOR = (
    'Deployment/shop/web dry-run failed (Invalid): Deployment.apps "web" is invalid: spec.selector: Invalid value: '
    '{"matchLabels":{"app":"web","tier":"x"}}: field is immutable\n'
)
KS_SELECTOR_OLD = (
    'Deployment/shop/web dry-run failed, reason: Invalid: Deployment.apps "web" is invalid: spec.selector: '
    "Invalid value: v1.LabelSelector{...}: field is immutable"
)
KS_SERVICE = (
    'Service/shop/web dry-run failed (Invalid): Service "web" is invalid: spec.clusterIPs[0]: Invalid value: '
    '[]string{"10.96.0.20"}: may not change once set'
)
KS_STS = (
    'StatefulSet/shop/db dry-run failed (Invalid): StatefulSet.apps "db" is invalid: spec: Forbidden: updates to '
    "statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', "
    "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
)
KS_JOB = (
    'Job/shop/migrate dry-run failed (Invalid): Job.batch "migrate" is invalid: spec.template: Invalid value: '
    "core.PodTemplateSpec{...}: field is immutable"
)
KS_HEALTH = "health check failed after 30.078047796s: timeout waiting for: [Deployment/shop/web status: 'InProgress']"
KS_DEPENDENCY = "dependency 'flux-system/root' is not ready"
HR_UPGRADE = (
    "Helm upgrade failed for release shop/web with chart demo-app@1.9.0: server-side apply failed for object "
    'shop/web apps/v1, Kind=Deployment: Deployment.apps "web" is invalid: spec.replicas: Invalid value: -1: must '
    "be greater than or equal to 0"
)
HR_IMMUTABLE = (
    "Helm upgrade failed for release shop/web with chart demo-app@1.2.0: server-side apply failed for object "
    'shop/web apps/v1, Kind=Deployment: Deployment.apps "web" is invalid: spec.selector: Invalid value: '
    '{"matchLabels":{"app.kubernetes.io/name":"web","tier":"x"}}: field is immutable'
)
HR_TIMEOUT = (
    "Helm upgrade failed for release shop/web with chart demo-app@1.8.0: timeout waiting for: "
    "[Deployment/shop/web status: 'InProgress']"
)

SEED = """
patterns:
- error_pattern: "field is immutable"
  recovery_action: "recreate_resource"
  max_retries: 3
  applies_to: ["Deployment", "Service", "StatefulSet"]
- error_pattern: "dry-run failed.*Invalid.*spec.selector"
  recovery_action: "recreate_deployment"
  cleanup_dependencies: true
- error_pattern: "HelmRelease.*failed.*upgrade"
  recovery_action: "rollback_helm_release"
  max_retries: 2
  validation_required: true
- error_pattern: "install retries exhausted"
  recovery_action: "reset_helm_release"
  cleanup_dependencies: true
"""


def name_of(patterns: PatternSet, kind: str, *failures: Failure) -> str | None:
    match = patterns.match(kind, failures)
    return match.pattern.name if match else None


def test_the_design_documents_patterns_load_and_match_real_messages() -> None:
    seed = parse(SEED, "seed")
    assert [p.recovery_action for p in seed.patterns] == [
        "recreate_resource",
        "recreate_deployment",
        "rollback_helm_release",
        "reset_helm_release",
    ]
    assert seed.patterns[1].cleanup_dependencies and seed.patterns[1].max_retries == 3
    ks = seed.match("Kustomization", [Failure("Ready", "ReconciliationFailed", KS_SELECTOR)])
    assert ks is not None and ks.pattern.recovery_action == "recreate_resource"
    assert [t.name for t in ks.targets] == ["web"]
    hr = seed.match("HelmRelease", [Failure("Ready", "UpgradeFailed", HR_UPGRADE)])
    assert hr is not None and hr.pattern.recovery_action == "rollback_helm_release"
    old = seed.match("HelmRelease", [Failure("Stalled", "RetriesExceeded", "install retries exhausted")])
    assert old is not None and old.pattern.recovery_action == "reset_helm_release"


@pytest.mark.parametrize(
    ("kind", "condition", "reason", "message", "expected"),
    [
        ("Kustomization", "Ready", "ReconciliationFailed", KS_SELECTOR, "selector-immutable"),
        ("Kustomization", "Ready", "ReconciliationFailed", KS_SELECTOR_OLD, "selector-immutable"),
        ("Kustomization", "Ready", "ReconciliationFailed", KS_SERVICE, "immutable-field"),
        ("Kustomization", "Ready", "ReconciliationFailed", KS_STS, "immutable-field"),
        ("Kustomization", "Ready", "ReconciliationFailed", KS_JOB, "immutable-field"),
        ("Kustomization", "Ready", "HealthCheckFailed", KS_HEALTH, "health-check-failed"),
        ("Kustomization", "Ready", "DependencyNotReady", KS_DEPENDENCY, "dependency-not-ready"),
        ("HelmRelease", "Ready", "DependencyNotReady", KS_DEPENDENCY, "dependency-not-ready"),
        ("HelmRelease", "Released", "UpgradeFailed", HR_IMMUTABLE, "helm-immutable-field"),
        (
            "HelmRelease",
            "Stalled",
            "RetriesExceeded",
            "Failed to upgrade after 1 attempt(s)",
            "helm-upgrade-retries-exhausted",
        ),
        ("HelmRelease", "Stalled", "RetriesExceeded", "upgrade retries exhausted", "helm-upgrade-retries-exhausted"),
        (
            "HelmRelease",
            "Stalled",
            "RetriesExceeded",
            "Failed to install after 3 attempt(s)",
            "helm-install-retries-exhausted",
        ),
        ("HelmRelease", "Stalled", "RetriesExceeded", "install retries exhausted", "helm-install-retries-exhausted"),
        ("HelmRelease", "Released", "UpgradeFailed", HR_UPGRADE, None),  # Flux may still retry: wait for Stalled
        ("Kustomization", "Ready", "HealthCheckFailed", HR_TIMEOUT, "health-check-failed"),
        ("HelmRelease", "Released", "UpgradeFailed", HR_TIMEOUT, None),
        ("Kustomization", "Ready", "BuildFailed", "kustomize build failed: accumulating resources", None),
    ],
)
def test_default_patterns_match_what_the_pinned_controllers_print(
    kind: str, condition: str, reason: str, message: str, expected: str | None
) -> None:
    assert name_of(default_patterns(), kind, Failure(condition, reason, message)) == expected


def test_every_default_pattern_agrees_with_its_signature() -> None:
    """A default named after a signature matches exactly the messages that signature recognises."""
    samples = [KS_SELECTOR, KS_SELECTOR_OLD, KS_SERVICE, KS_STS, KS_JOB, KS_HEALTH, KS_DEPENDENCY, HR_UPGRADE]
    samples += [HR_IMMUTABLE, HR_TIMEOUT, "Failed to upgrade after 1 attempt(s)", "install retries exhausted"]
    defaults = default_patterns()
    for pattern in defaults.patterns:
        signature = sig.BY_NAME.get(pattern.name)
        if signature is None:
            continue
        for message in samples:
            expected = bool(signature.message.search(message))
            got = pattern.regex.search(f"{signature.kinds[0]} {signature.reasons[0]}: {message}") is not None
            assert got == expected, (pattern.name, message)


def test_a_failing_helmrelease_matches_on_its_most_specific_condition() -> None:
    """Stalled says retries are spent; Ready holds the cause: an immutable cause wins over a rollback."""
    defaults = default_patterns()
    stalled = Failure("Stalled", "RetriesExceeded", "Failed to upgrade after 1 attempt(s)")
    assert name_of(defaults, "HelmRelease", stalled, Failure("Ready", "UpgradeFailed", HR_IMMUTABLE)) == (
        "helm-immutable-field"
    )
    assert name_of(defaults, "HelmRelease", stalled, Failure("Ready", "UpgradeFailed", HR_UPGRADE)) == (
        "helm-upgrade-retries-exhausted"
    )


def test_applies_to_filters_on_the_refused_object_or_the_flux_kind() -> None:
    patterns = parse(
        "patterns:\n"
        "- {error_pattern: 'field is immutable|may not change', recovery_action: recreate_resource,"
        " applies_to: [Service]}\n"
        "- {name: helm-only, error_pattern: 'failed', recovery_action: escalate, applies_to: [HelmRelease]}\n",
        "test",
    )
    assert patterns.match("Kustomization", [Failure("Ready", "x", KS_SELECTOR)]) is None
    service = patterns.match("Kustomization", [Failure("Ready", "x", KS_SERVICE)])
    assert service is not None and [t.kind for t in service.targets] == ["Service"]
    assert name_of(patterns, "HelmRelease", Failure("Ready", "InstallFailed", "install failed")) == "helm-only"


def test_shipped_configmap_holds_the_defaults() -> None:
    from importlib import resources

    text = (resources.files("recovery") / "manifests" / "configmap.yaml").read_text()
    cm = yaml.safe_load(text)
    assert cm["metadata"]["name"] == "flux-recovery-config"
    shipped = yaml.safe_load(cm["data"]["recovery-patterns.yaml"])
    assert shipped == yaml.safe_load(default_yaml())
    assert [p["name"] for p in shipped["patterns"]] == [p["name"] for p in DEFAULT_PATTERNS]


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("patterns: []", ["non-empty list"]),
        ("patterns: [{error_pattern: x}]", ["pattern 0", "recovery_action None"]),
        (
            "patterns:\n- {name: ok, error_pattern: a, recovery_action: escalate}\n"
            "- {name: broken, error_pattern: 'foo(', recovery_action: escalate}",
            ["pattern 1 ('broken')", "foo(", "not a valid regular expression"],
        ),
        ("patterns: [{error_pattern: '(a+)+$', recovery_action: escalate}]", ["(a+)+$", "nested repetition"]),
        ("patterns: [{error_pattern: 'x', recovery_action: recreate_resorce}]", ["did you mean 'recreate_resource'"]),
        (
            "patterns: [{error_pattern: 'x', recovery_action: escalate, max_retry: 2}]",
            ["unknown field 'max_retry'", "max_retries"],
        ),
        ("patterns: [{error_pattern: 'x', recovery_action: escalate, max_retries: -1}]", ["max_retries"]),
        ("patterns: [{error_pattern: 'x', recovery_action: escalate, max_retries: yes}]", ["max_retries"]),
        (
            "patterns: [{error_pattern: 'x', recovery_action: escalate, applies_to: [deployment]}]",
            ["'deployment'", "not a Kind"],
        ),
        ("patterns: [{error_pattern: 'x', recovery_action: escalate, kinds: [Deployment]}]", ["Flux kinds"]),
        ("patterns: [{error_pattern: '.*', recovery_action: escalate}]", ["'.*'", "every"]),
        ("patterns: [{error_pattern: 'x', recovery_action: escalate, retry_interval: soon}]", ["retry_interval"]),
        ("patterns: [{error_pattern: 'x', recovery_action: escalate, cleanup_dependencies: 'yes'}]", ["true or false"]),
        (
            "patterns:\n- {name: a, error_pattern: x, recovery_action: escalate}\n"
            "- {name: a, error_pattern: y, recovery_action: escalate}",
            ["'a' is used more than once"],
        ),
        ("pattern: []", ["unknown top-level key", "pattern"]),
        ("patterns: [", ["not valid YAML"]),
    ],
)
def test_invalid_patterns_are_refused_naming_the_pattern(text: str, fragments: list[str]) -> None:
    with pytest.raises(PatternError) as err:
        parse(text, "recovery-patterns.yaml")
    message = str(err.value)
    assert message.startswith("recovery-patterns.yaml: ")
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    assert err.value.exit_code == 2


def test_every_bad_pattern_is_reported_at_once() -> None:
    text = (
        "patterns:\n- {name: one, error_pattern: '(', recovery_action: escalate}\n"
        "- {name: two, error_pattern: x, recovery_action: nope}\n"
    )
    with pytest.raises(PatternError) as err:
        parse(text, "f")
    assert "pattern 0 ('one')" in str(err.value) and "pattern 1 ('two')" in str(err.value)


def test_durations_and_round_trip() -> None:
    patterns = parse(
        "patterns: [{name: p, error_pattern: x, recovery_action: reset_helm_release, retry_interval: 2m,"
        " stuck_for: 30}]",
        "t",
    )
    p = patterns.patterns[0]
    assert (p.retry_interval, p.stuck_for) == (120.0, 30.0)
    again = parse(yaml.safe_dump({"patterns": [p.to_dict()]}), "t").patterns[0]
    assert again == p
    assert set(ACTION_NAMES) >= {p.recovery_action for p in default_patterns().patterns}
