"""The alert rules a run is checked against, and what each one promises in terms the harness sees for itself.

The rules are the operator's shipped PrometheusRule (read here, never copied): `rule_groups` reads the groups of a
PrometheusRule manifest or a plain rule file, which is also what Prometheus loads. A promise names the condition
the harness observes on a run's Flux objects (not Ready, a dependsOn cycle, blocking dependents while not Ready, an
escalation Event, a stage rolled back) and how long it must hold before the rule's `for` starts: the threshold
written in the rule's expression. The thresholds are restated here because an expression cannot be read back
reliably; the promtool test of the shipped rules (tests/integration/test_monitoring_rules.py) proves each promise
against the real rule evaluator, so the two cannot drift apart. Alerts without a promise say why none can be kept by
a run.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from fluxmodel.kinds import HELM_RELEASE, KUSTOMIZATION, STAGED_KUSTOMIZATION
from foundation.errors import UserError

NOT_READY = "not-ready"  # the object's Ready condition is not True
BLOCKING = "blocking"  # not Ready while another of the run's objects dependsOn it
CYCLE = "cycle"  # the object is on a dependsOn cycle
ESCALATED = "escalated"  # the operator (or the stage controller) emitted RecoveryEscalated on the object
ROLLED_BACK = "rolled-back"  # a stage of the StagedKustomization rolled back (its status says so)
CONDITIONS = (NOT_READY, BLOCKING, CYCLE, ESCALATED, ROLLED_BACK)

_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_UNIT = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def shipped_rules() -> Path:
    """The operator's PrometheusRule, as shipped with it."""
    return Path(str(resources.files("recovery") / "manifests" / "prometheusrule.yaml"))


def rule_groups(path: Path) -> list[dict[str, Any]]:
    """The rule groups of a PrometheusRule manifest or of a plain Prometheus rule file; UserError naming the file."""
    fix = "give a PrometheusRule manifest (spec.groups) or a Prometheus rule file (groups)"
    try:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except OSError as e:
        raise UserError(f"{path}: cannot read the alert rules ({e.strerror}); {fix}") from e
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "somewhere"
        raise UserError(f"{path}: the alert rules are not valid YAML at {where}; {fix}") from e
    groups: list[dict[str, Any]] = []
    for doc in docs:
        if not isinstance(doc, dict):
            raise UserError(f"{path}: a document is not a mapping; {fix}")
        body = doc.get("spec") if doc.get("kind") == "PrometheusRule" else doc
        found = (body or {}).get("groups")
        if not isinstance(found, list) or not found:
            raise UserError(f"{path}: no rule groups found; {fix}")
        groups += found
    if not groups:
        raise UserError(f"{path}: the file is empty; {fix}")
    return groups


def duration(text: str) -> float:
    """Seconds of a Prometheus duration (`2m`, `1h30m`, `500ms`); ValueError for anything else."""
    parts = _DURATION.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a Prometheus duration: {text!r}")
    return sum(int(n) * _UNIT[u] for n, u in parts)


@dataclass(frozen=True)
class Rule:
    """One alerting rule as shipped: its name, group, `for` (seconds) and runbook."""

    name: str
    group: str
    for_seconds: float
    runbook_url: str | None


@functools.cache
def rules() -> dict[str, Rule]:
    """The shipped alerting rules by name."""
    out = {}
    for group in rule_groups(shipped_rules()):
        for rule in group.get("rules") or []:
            if "alert" in rule:
                annotations = rule.get("annotations") or {}
                out[rule["alert"]] = Rule(
                    rule["alert"], group["name"], duration(str(rule.get("for", "0s"))), annotations.get("runbook_url")
                )
    return out


@dataclass(frozen=True)
class Promise:
    """`alert` must fire once `condition` has held on one of `kinds` for `threshold` seconds plus the rule's `for`."""

    alert: str
    condition: str
    kinds: tuple[str, ...]
    threshold: float

    @property
    def for_seconds(self) -> float:
        return rules()[self.alert].for_seconds

    @property
    def holds_for(self) -> float:
        """How long the condition holds before the rule fires (at the first evaluation after that)."""
        return self.threshold + self.for_seconds


BOTH = (KUSTOMIZATION.kind, HELM_RELEASE.kind)
PROMISES: tuple[Promise, ...] = (
    Promise("FluxKustomizationStuck", NOT_READY, (KUSTOMIZATION.kind,), 300),
    Promise("FluxHelmReleaseStuck", NOT_READY, (HELM_RELEASE.kind,), 300),
    Promise("FluxDependencyCycle", CYCLE, BOTH, 0),
    Promise("FluxDependencyDeadlock", BLOCKING, (KUSTOMIZATION.kind,), 600),
    Promise("FluxHelmReleaseDependencyDeadlock", BLOCKING, (HELM_RELEASE.kind,), 600),
    Promise("FluxRecoveryEscalated", ESCALATED, (*BOTH, STAGED_KUSTOMIZATION.kind), 0),
    Promise("FluxStageRolledBack", ROLLED_BACK, (STAGED_KUSTOMIZATION.kind,), 0),
)
# Shipped alerts no run can be held to, and the fault that would have to exist.
UNPROMISED: dict[str, str] = {
    "FluxSourcePinned": "fires after a source has been pinned for 1h: no catalog fault keeps a pin that long",
    "FluxRecoveryNoLeader": "names no object: it needs a fault that keeps every operator instance from the Lease "
    "for 5m (a foreign Lease holder, RBAC on leases), which the catalog does not have",
}


def promise(alert: str) -> Promise | None:
    return next((p for p in PROMISES if p.alert == alert), None)
