"""The built-in patterns, written from fluxmodel.signatures so they match what the pinned controllers print.

Each default names the signature it comes from; older message forms users still run (`install retries
exhausted`, `dry-run failed, reason: Invalid`) are covered by the same regexes. The shipped ConfigMap
(manifests/configmap.yaml) holds the same list; a unit test keeps them equal.
"""

from __future__ import annotations

from typing import Any

import yaml

from fluxmodel import signatures as sig
from recovery.patterns import CONFIGMAP_KEY, PatternSet, parse

WORKLOADS = ["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"]
RECREATABLE = [*WORKLOADS, "Service", "Job", "CronJob", "PodDisruptionBudget", "Ingress"]


def _from(signature: sig.Signature, **fields: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": signature.name,
        "error_pattern": signature.message.pattern,
        "kinds": list(signature.kinds),
        "conditions": [signature.condition_type],
        "reasons": list(signature.reasons),
        "description": signature.description,
    }
    out.update(fields)
    return out


DEFAULT_PATTERNS: list[dict[str, Any]] = [
    _from(
        sig.SELECTOR_IMMUTABLE,
        recovery_action="recreate_deployment",
        max_retries=3,
        applies_to=WORKLOADS,
        cleanup_dependencies=True,
    ),
    _from(
        sig.IMMUTABLE_FIELD,
        recovery_action="recreate_resource",
        max_retries=3,
        applies_to=RECREATABLE,
        cleanup_dependencies=True,
    ),
    _from(
        sig.HELM_IMMUTABLE_FIELD,
        conditions=["Released", "Ready"],
        recovery_action="recreate_resource",
        max_retries=3,
        applies_to=RECREATABLE,
    ),
    _from(
        sig.HEALTH_CHECK_FAILED,
        recovery_action="rollback_to_last_good_revision",
        max_retries=2,
        validation_required=True,
    ),
    {
        "name": "helm-upgrade-retries-exhausted",
        "error_pattern": r"Failed to upgrade after \d+ attempt\(s\)|upgrade retries exhausted",
        "kinds": ["HelmRelease"],
        "conditions": [sig.HELM_RETRIES_EXHAUSTED.condition_type, "Ready"],
        "recovery_action": "rollback_helm_release",
        "max_retries": 2,
        "validation_required": True,
        "description": "upgrade remediation is spent (helm-retries-exhausted): return to the last good chart/revision",
    },
    {
        "name": "helm-install-retries-exhausted",
        "error_pattern": r"Failed to install after \d+ attempt\(s\)|install retries exhausted",
        "kinds": ["HelmRelease"],
        "conditions": [sig.HELM_RETRIES_EXHAUSTED.condition_type, "Ready"],
        "recovery_action": "reset_helm_release",
        "max_retries": 6,
        "retry_interval": "10s",
        "cleanup_dependencies": True,
        "description": "install remediation is spent (helm-retries-exhausted): reset the counters, with backoff, "
        "so the install is retried once its cause is gone",
    },
    _from(
        sig.DEPENDENCY_NOT_READY,
        recovery_action="reconcile_dependents",
        max_retries=20,
        retry_interval="1s",
    ),
]


def default_yaml() -> str:
    """The defaults as the `recovery-patterns.yaml` document of the flux-recovery-config ConfigMap."""
    return yaml.safe_dump({"patterns": DEFAULT_PATTERNS}, sort_keys=False, width=1000)


def default_patterns() -> PatternSet:
    return parse(default_yaml(), f"built-in defaults ({CONFIGMAP_KEY})")
