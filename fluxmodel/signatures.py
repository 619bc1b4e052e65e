"""The messages and reasons the pinned Flux controllers really produce, as named signatures.

Injectors use them as proof that a fault took effect, the recovery engine's default patterns match them, and
the assertions classify failures with them: one table, checked against the real controllers by the
integration tests. Sources (pinned): kustomize-controller v1.9.3 with fluxcd/pkg/ssa (DryRunErr:
"<Kind>/<ns>/<name> dry-run failed (<Reason>): <api error>"), helm-controller v1.6.2 (fmtUpgradeFailure,
MarkStalled "RetriesExceeded"), fluxcd/pkg/runtime dependency sort ("circular dependency detected").
Older message forms that users still run are listed too, so patterns written for them keep matching.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fluxmodel.conditions import condition


@dataclass(frozen=True)
class Signature:
    """A failure as it shows on a Flux object: which condition, which reasons, and a message regex."""

    name: str
    kinds: tuple[str, ...]
    condition_type: str
    reasons: tuple[str, ...]
    message: re.Pattern[str]
    description: str
    status: str = "False"

    def matches(self, obj: dict[str, Any]) -> bool:
        """True when the object's condition shows this failure now."""
        if obj.get("kind") not in self.kinds:
            return False
        cond = condition(obj, self.condition_type)
        if cond is None or cond.status != self.status:
            return False
        if self.reasons and cond.reason not in self.reasons:
            return False
        return bool(self.message.search(cond.message))


def _re(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.DOTALL)


KS = ("Kustomization",)
HR = ("HelmRelease",)

IMMUTABLE_FIELD = Signature(
    "immutable-field",
    KS,
    "Ready",
    ("ReconciliationFailed",),
    _re(
        r"dry-run failed(?: \(Invalid\)|, reason: Invalid)?[:,].*"
        r"(field is immutable|may not change once set|Forbidden: updates to statefulset spec)"
    ),
    "the API server refused a change to an immutable field during kustomize-controller's dry-run",
)
SELECTOR_IMMUTABLE = Signature(
    "selector-immutable",
    KS,
    "Ready",
    ("ReconciliationFailed",),
    _re(r"dry-run failed.*Invalid.*spec\.selector.*field is immutable"),
    "a workload's spec.selector changed (kustomize commonLabels, labels with includeSelectors, a rename)",
)
DRY_RUN_INVALID = Signature(
    "dry-run-invalid",
    KS,
    "Ready",
    ("ReconciliationFailed",),
    _re(r"dry-run failed(?: \(Invalid\)|, reason: Invalid)"),
    "any object refused by the API server's validation during dry-run",
)
HEALTH_CHECK_FAILED = Signature(
    "health-check-failed",
    KS,
    "Ready",
    ("HealthCheckFailed",),
    _re(r"(timeout waiting for|failed early due to stalled resources|health check failed)"),
    "applied objects did not become healthy within spec.timeout",
)
DEPENDENCY_NOT_READY = Signature(
    "dependency-not-ready",
    KS + HR,
    "Ready",
    ("DependencyNotReady",),
    _re(r"dependency '[^']+' (is not ready|revision is not up to date)|dependencies do not meet ready condition"),
    "a dependsOn dependency is not Ready; retried every --requeue-dependency (30s)",
)
ARTIFACT_FAILED = Signature(
    "artifact-failed",
    KS,
    "Ready",
    ("ArtifactFailed",),
    _re(r"(Source artifact not found|Source is not ready|failed to download archive|artifact)"),
    "the source artifact could not be fetched",
)
SOURCE_FETCH_FAILED = Signature(
    "source-fetch-failed",
    ("GitRepository",),
    "Ready",
    ("GitOperationFailed", "FetchFailed"),
    _re(r"(failed to checkout and determine revision|unable to clone|connection refused|dial tcp)"),
    "source-controller could not fetch the Git repository",
)
HELM_UPGRADE_FAILED = Signature(
    "helm-upgrade-failed",
    HR,
    "Released",
    ("UpgradeFailed",),
    _re(r"Helm upgrade failed for release [^ ]+ with chart [^ ]+: "),
    "helm upgrade failed (manifest refused, or pods not Ready before the upgrade timeout)",
)
HELM_INSTALL_FAILED = Signature(
    "helm-install-failed",
    HR,
    "Released",
    ("InstallFailed",),
    _re(r"Helm install failed for release [^ ]+ with chart [^ ]+: "),
    "helm install failed",
)
HELM_ROLLED_BACK = Signature(
    "helm-rolled-back",
    HR,
    "Remediated",
    ("RollbackSucceeded",),
    _re(r"Helm rollback to previous release .* succeeded"),
    "helm-controller remediated a failed upgrade by rolling back (the release is not at the desired chart)",
    status="True",
)
# The same rollback as helm-controller's Ready says it: False, with the rollback's message, until the next change of
# the spec. Not in ALL: classify reports the rollback once, as helm-rolled-back.
HELM_ROLLBACK_REPORTED = Signature(
    "helm-rollback-reported",
    HR,
    "Ready",
    HELM_ROLLED_BACK.reasons,
    HELM_ROLLED_BACK.message,
    "helm-controller's Ready after a remediation rolled a failed upgrade back to the previous release",
)
HELM_RETRIES_EXHAUSTED = Signature(
    "helm-retries-exhausted",
    HR,
    "Stalled",
    ("RetriesExceeded",),
    _re(r"Failed to (install|upgrade) after \d+ attempt\(s\)|(install|upgrade) retries exhausted"),
    "remediation retries are spent: helm-controller stops until the spec changes or a reset is requested",
    status="True",
)
HELM_UPGRADE_TIMEOUT = Signature(
    "helm-upgrade-timeout",
    HR,
    "Released",
    ("UpgradeFailed",),
    # helm-controller v1.6 (Helm 4, kstatus wait): "...: timeout waiting for: [Deployment/<ns>/<name> status:
    # 'InProgress']", or, when the deadline hits client-go's rate limiter first, "...: client rate limiter Wait
    # returned an error: rate: Wait(n=1) would exceed context deadline"; Helm 3 based releases said "context
    # deadline exceeded" / "timed out waiting for the condition".
    _re(
        r"Helm upgrade failed .*(timeout waiting for|context deadline|"
        r"timed out waiting for the condition|resource not ready)"
    ),
    "helm upgrade waited for workloads that never became Ready",
)
HELM_IMMUTABLE_FIELD = Signature(
    "helm-immutable-field",
    HR,
    "Released",
    ("UpgradeFailed",),
    # Helm 4 (server-side apply): "server-side apply failed for object <ns>/<name> apps/v1, Kind=Deployment: ...";
    # Helm 3: `cannot patch "<name>" with kind Deployment: ...`.
    _re(r"Helm upgrade failed .*(field is immutable|may not change once set|Forbidden: updates to statefulset spec)"),
    "a chart upgrade changes an immutable field of an object the release already has",
)

ALL: tuple[Signature, ...] = (
    SELECTOR_IMMUTABLE,
    IMMUTABLE_FIELD,
    DRY_RUN_INVALID,
    HEALTH_CHECK_FAILED,
    DEPENDENCY_NOT_READY,
    ARTIFACT_FAILED,
    SOURCE_FETCH_FAILED,
    HELM_IMMUTABLE_FIELD,
    HELM_UPGRADE_TIMEOUT,
    HELM_UPGRADE_FAILED,
    HELM_INSTALL_FAILED,
    HELM_ROLLED_BACK,
    HELM_RETRIES_EXHAUSTED,
)
BY_NAME = {s.name: s for s in ALL}

# Not on any object: kustomize-controller only logs it, and a cycle silently stops event-driven reconciles
# of its source (fluxcd/kustomize-controller issue 1712).
CIRCULAR_DEPENDENCY_LOG = re.compile(r"circular dependency detected: (?P<cycle>[^\"]+)")


def rolled_back(obj: dict[str, Any]) -> bool:
    """helm-controller says its remediation rolled a failed upgrade back (on Ready or on Remediated)."""
    return HELM_ROLLBACK_REPORTED.matches(obj) or HELM_ROLLED_BACK.matches(obj)


def classify(obj: dict[str, Any]) -> list[Signature]:
    """Every signature the object shows now, most specific first."""
    return [s for s in ALL if s.matches(obj)]


@dataclass(frozen=True)
class NamedObject:
    """An object a failure message names: kind, namespace ("" when not given) and name; apiVersion if known."""

    kind: str
    namespace: str
    name: str
    api_version: str = ""


_NAME = r"[a-z0-9](?:[-a-z0-9.]{0,251}[a-z0-9])?"
_KIND = r"[A-Z][A-Za-z0-9]{0,62}"
# fluxcd/pkg/ssa: "<Kind>/<ns>/<name> dry-run failed ..." (no namespace for cluster-scoped objects).
_SSA_OBJECT = re.compile(rf"(?P<kind>{_KIND})/(?:(?P<ns>{_NAME})/)?(?P<name>{_NAME}) dry-run failed")
# Helm 4 (helm-controller v1.6): "server-side apply failed for object <ns>/<name> apps/v1, Kind=Deployment: ...".
_HELM_SSA_OBJECT = re.compile(
    rf"failed for object (?P<ns>{_NAME})?/(?P<name>{_NAME}) (?P<gv>[a-z0-9.]{{0,253}}/?v[0-9a-z]{{1,20}}), "
    rf"Kind=(?P<kind>{_KIND})"
)
# Helm 3: `cannot patch "<name>" with kind <Kind>: ...` (the release namespace is implied).
_HELM_PATCH_OBJECT = re.compile(rf'cannot patch "(?P<name>{_NAME})" with kind (?P<kind>{_KIND})')


def failing_objects(message: str) -> list[NamedObject]:
    """The objects a Kustomization or HelmRelease failure message says the API server refused, in order."""
    found: list[NamedObject] = []
    for match in _SSA_OBJECT.finditer(message):
        found.append(NamedObject(match["kind"], match["ns"] or "", match["name"]))
    for match in _HELM_SSA_OBJECT.finditer(message):
        found.append(NamedObject(match["kind"], match["ns"] or "", match["name"], match["gv"].lstrip("/")))
    for match in _HELM_PATCH_OBJECT.finditer(message):
        found.append(NamedObject(match["kind"], "", match["name"]))
    return list(dict.fromkeys(found))
