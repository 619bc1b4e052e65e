"""Deference to Flux's own recovery knobs, so the operator and a Flux controller never act on one object at once.

Each failure the operator recovers has, for some patterns, an object knob that is Flux's own answer to it:
`spec.force` (or the force label/annotation on the refused object) for an immutable field, upgrade or install
remediation (or RetryOnFailure) for a failed Helm release. When that knob is on, the operator waits until Flux
has had its chance (the failure outlasts a grace) or says its mechanism is spent (Stalled RetriesExceeded),
and does nothing once Flux resolved it (RollbackSucceeded). Dependency and health-check patterns have no object
knob (Flux's answers there, --requeue-dependency and CancelHealthCheckOnNewRevision, are controller flags).
Pure: the caller looks the refused objects up; the verdict is a function of the object, its health and a clock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fluxmodel import signatures as sig
from fluxmodel.annotations import KUSTOMIZE_FORCE
from fluxmodel.kinds import HELM_RELEASE, KUSTOMIZATION
from fluxmodel.staged import parse_duration
from recovery.health import Failure, Health, format_time
from recovery.patterns import Match

FLUX_GRACE_SECONDS = 60.0  # --flux-grace: the least time a failure is left to the Flux knob that answers it
HELM_TIMEOUT_SECONDS = 300.0  # helm-controller's default spec.timeout and strategy.retryInterval (5m)

# The families of failures a Flux object knob answers, and the ones whose answer is a controller flag.
IMMUTABLE, HELM_UPGRADE, HELM_INSTALL = "immutable-field", "helm-upgrade", "helm-install"
RECREATE_ACTIONS = ("recreate_resource", "recreate_deployment")
NO_OBJECT_KNOB = {
    "reconcile_dependents": "no object knob: Flux's answer is the controllers' --requeue-dependency (a flag, not "
    "visible on objects); the operator acts as without knobs",
    "rollback_to_last_good_revision": "no object knob: Flux's answer, the CancelHealthCheckOnNewRevision feature "
    "gate, is a controller flag and only shortens the wait for a fix; the operator acts as without knobs",
}
# The Helm action whose remediation a failure belongs to (helm-controller atomic_release.go).
HELM_ACTION_OF = {
    sig.HELM_UPGRADE_FAILED.name: "upgrade",
    sig.HELM_UPGRADE_TIMEOUT.name: "upgrade",
    sig.HELM_IMMUTABLE_FIELD.name: "upgrade",
    sig.HELM_ROLLED_BACK.name: "upgrade",
    sig.HELM_INSTALL_FAILED.name: "install",
}
_STALLED = sig.HELM_RETRIES_EXHAUSTED
_ROLLED_BACK = sig.HELM_ROLLED_BACK

# Verdicts
DEFER = "defer"  # Flux's mechanism is still having its chance: look again at `until`
RESOLVED = "resolved"  # Flux's mechanism already did what the action would: do nothing
SPENT = "spent"  # Flux says its mechanism is exhausted: act as without knobs
ELAPSED = "elapsed"  # Flux had its grace and the failure persists: act as without knobs


@dataclass(frozen=True)
class Rule:
    """Flux's own answer to a family of failures, for people: the knobs that turn it on and when the operator acts."""

    family: str
    knobs: str
    flux_does: str
    operator_acts: str


RULES = {
    IMMUTABLE: Rule(
        IMMUTABLE,
        f"Kustomization spec.force: true, or {KUSTOMIZE_FORCE}: enabled (label or annotation) on the refused object",
        "kustomize-controller deletes and re-creates the refused object at its next apply",
        "once the failure has lasted max(--flux-grace, spec.retryInterval or spec.interval)",
    ),
    HELM_UPGRADE: Rule(
        HELM_UPGRADE,
        "HelmRelease spec.upgrade.remediation.retries != 0, or spec.upgrade.strategy.name: RetryOnFailure",
        "helm-controller rolls the failed upgrade back (or uninstalls) and retries it; RetryOnFailure retries every "
        "strategy.retryInterval and never stalls",
        "once helm-controller marks it Stalled=True RetriesExceeded (never for a rollback it already made: "
        "Remediated=True RollbackSucceeded), or the failure has lasted max(--flux-grace, the time Flux needs for "
        "its attempts: (retries + 1) x the upgrade timeout, or retryInterval + timeout)",
    ),
    HELM_INSTALL: Rule(
        HELM_INSTALL,
        "HelmRelease spec.install.remediation.retries != 0, or spec.install.strategy.name: RetryOnFailure",
        "helm-controller uninstalls the failed install and retries it",
        "once helm-controller marks it Stalled=True RetriesExceeded, or the failure has lasted max(--flux-grace, "
        "(retries + 1) x the install timeout, or retryInterval + timeout)",
    ),
}


@dataclass(frozen=True)
class Knob:
    """A Flux knob that is on for one object: what it is, what Flux does, how long Flux needs for its chance."""

    family: str
    name: str
    period: float
    exhausts: bool = False  # Flux says when it is spent (Stalled=True RetriesExceeded)


@dataclass(frozen=True)
class Deference:
    """What the knob means for the operator now; `until` is when a DEFER ends at the latest."""

    verdict: str
    knob: Knob
    until: float
    why: str


def family(kind: str, match: Match, failures: Sequence[Failure]) -> str | None:
    """The family of the matched failure whose answer is an object knob; None for the rest."""
    action = match.pattern.recovery_action
    if action in NO_OBJECT_KNOB:
        return None
    if kind == KUSTOMIZATION.kind and action in RECREATE_ACTIONS:
        return IMMUTABLE
    if kind == HELM_RELEASE.kind:
        helm = next((a for f in (match.failure, *failures) if (a := helm_action(kind, f))), None)
        return {"upgrade": HELM_UPGRADE, "install": HELM_INSTALL}.get(helm or "")
    return None


def helm_action(kind: str, failure: Failure) -> str | None:
    """`upgrade` or `install`: the Helm action a HelmRelease failure belongs to (None when it names none)."""
    stalled = _STALLED.message.search(failure.message)
    if stalled:
        return stalled.group(1) or stalled.group(2)
    for s in sig.ALL:
        named = s.message.search(failure.message) or (failure.reason and failure.reason in s.reasons)
        if s.name in HELM_ACTION_OF and kind in s.kinds and named:
            return HELM_ACTION_OF[s.name]
    return None


def knob(
    kind: str,
    obj: dict[str, Any],
    match: Match,
    failures: Sequence[Failure],
    live: Callable[[sig.NamedObject], dict[str, Any] | None] = lambda target: None,
) -> Knob | None:
    """The Flux knob on `obj` (or, for force, on the refused objects `live` returns) that answers the failure."""
    spec = obj.get("spec") or {}
    found = family(kind, match, failures)
    if found == IMMUTABLE:
        period = parse_duration(spec.get("retryInterval")) or parse_duration(spec.get("interval")) or 0.0
        if spec.get("force") is True:
            return Knob(IMMUTABLE, "spec.force: true", period)
        for target in match.targets:
            if _force_enabled(live(target)):
                where = f"{target.kind}/{target.namespace or '-'}/{target.name}"
                return Knob(IMMUTABLE, f"{KUSTOMIZE_FORCE}: enabled on {where}", period)
        return None
    if found in (HELM_UPGRADE, HELM_INSTALL):
        return _helm_knob(found, spec)
    return None


def judge(knob: Knob, match: Match, health: Health, now: float, grace: float = FLUX_GRACE_SECONDS) -> Deference:
    """Whether the operator waits for Flux's mechanism, leaves the object to it, or acts now."""
    until = health.unready_since + max(grace, knob.period)
    rolled_back = any(
        f.condition == _ROLLED_BACK.condition_type and f.reason in _ROLLED_BACK.reasons for f in health.failures
    )
    if rolled_back and match.pattern.recovery_action == "rollback_helm_release":
        return Deference(
            RESOLVED, knob, until, f"Flux resolved it: helm-controller rolled the release back ({knob.name})"
        )
    if knob.exhausts and any(
        f.condition == _STALLED.condition_type and f.reason in _STALLED.reasons for f in health.failures
    ):
        return Deference(SPENT, knob, until, f"Flux's {knob.name} is spent (Stalled=True RetriesExceeded)")
    if now >= until:
        return Deference(
            ELAPSED,
            knob,
            until,
            f"Flux's {knob.name} had its chance: failing since {format_time(health.unready_since)}",
        )
    spent = " or helm-controller reports RetriesExceeded" if knob.exhausts else ""
    return Deference(DEFER, knob, until, f"defers to Flux's {knob.name} until {format_time(until)}{spent}")


def describe(kind: str, match: Match, failures: Sequence[Failure]) -> dict[str, str]:
    """For `explain`: which Flux knob answers this failure and what the operator then does (no object needed)."""
    found = family(kind, match, failures)
    if found is None:
        return {
            "knobs": NO_OBJECT_KNOB.get(match.pattern.recovery_action, "no Flux object knob answers this failure"),
            "operator": "acts as described, whatever the object's knobs",
        }
    rule = RULES[found]
    return {
        "knobs": rule.knobs,
        "flux": rule.flux_does,
        "operator": f"defers to Flux while a knob is on, and acts only {rule.operator_acts}",
    }


def _helm_knob(found: str, spec: dict[str, Any]) -> Knob | None:
    action = "upgrade" if found == HELM_UPGRADE else "install"
    section = spec.get(action) or {}
    timeout = parse_duration(section.get("timeout")) or parse_duration(spec.get("timeout")) or HELM_TIMEOUT_SECONDS
    strategy = section.get("strategy") or {}
    if strategy.get("name") == "RetryOnFailure":
        interval = parse_duration(strategy.get("retryInterval")) or HELM_TIMEOUT_SECONDS
        return Knob(found, f"spec.{action}.strategy.name: RetryOnFailure", interval + timeout)
    retries = (section.get("remediation") or {}).get("retries") or 0
    if not isinstance(retries, int) or isinstance(retries, bool) or retries == 0:
        return None
    name = f"spec.{action}.remediation.retries: {retries}"
    if retries < 0:  # unlimited: Flux never says it is spent
        return Knob(found, name, 2 * timeout)
    return Knob(found, name, (retries + 1) * timeout, exhausts=True)


def _force_enabled(obj: dict[str, Any] | None) -> bool:
    """kustomize-controller's force selector: the label or annotation, compared case-insensitively."""
    meta = (obj or {}).get("metadata") or {}
    values = ((meta.get("labels") or {}).get(KUSTOMIZE_FORCE), (meta.get("annotations") or {}).get(KUSTOMIZE_FORCE))
    return any(str(v).lower() == "enabled" for v in values if v is not None)
