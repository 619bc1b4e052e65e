"""The runbook of each shipped alert, and which one a failure or an escalation sends a person to.

The runbooks are the design's emergency recovery procedures (docs/runbooks/<alert>.md). Their URLs live in one
place, the `runbook_url` annotations of the shipped rules (manifests/prometheusrule.yaml), relative to the
repository root; `resilience explain` names the runbook of the failure it explains, and the operator's
escalation and cycle Events name theirs, so `kubectl describe` leads to the procedure too.
"""

from __future__ import annotations

import functools
from importlib import resources

import yaml

from fluxmodel import signatures as sig
from fluxmodel.kinds import HELM_RELEASE, KUSTOMIZATION

STUCK = {KUSTOMIZATION.kind: "FluxKustomizationStuck", HELM_RELEASE.kind: "FluxHelmReleaseStuck"}
BLOCKING = {KUSTOMIZATION.kind: "FluxDependencyDeadlock", HELM_RELEASE.kind: "FluxHelmReleaseDependencyDeadlock"}
ESCALATED = "FluxRecoveryEscalated"
CYCLE = "FluxDependencyCycle"


@functools.cache
def urls() -> dict[str, str]:
    """Alert name -> runbook_url, from the shipped PrometheusRule."""
    text = (resources.files("recovery") / "manifests" / "prometheusrule.yaml").read_text()
    out = {}
    for group in (yaml.safe_load(text).get("spec") or {}).get("groups") or []:
        for rule in group.get("rules") or []:
            url = (rule.get("annotations") or {}).get("runbook_url")
            if rule.get("alert") and url:
                out[str(rule["alert"])] = str(url)
    return out


def for_alert(alert: str) -> str | None:
    return urls().get(alert)


def for_failure(kind: str, signatures: list[str]) -> str | None:
    """The runbook for a failing object: its dependency runbook when it waits for a dependency, else its kind's."""
    table = BLOCKING if sig.DEPENDENCY_NOT_READY.name in signatures else STUCK
    alert = table.get(kind)
    return for_alert(alert) if alert else None
