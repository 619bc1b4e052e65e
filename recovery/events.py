"""Kubernetes Events on the Flux objects: how users (and the harness's timeline) see what the operator did.

Reasons are fixed (RecoveryDetected, RecoveryDeferred, RecoveryAction, RecoveryEscalated, DependencyCycle, and the stage
controller's Stage*) and every Event carries the reporting component (gitops-resilience-operator, or
gitops-resilience-stages for the stage controller), so a watch on Events can time detection and action.
Failing to record an Event never fails a recovery.
"""

from __future__ import annotations

import datetime
import logging
import secrets
import socket
from typing import Any

from ctlruntime.api import KubeApi
from fluxmodel.annotations import OPERATOR_COMPONENT
from kubeapi import ApiError
from recovery import runbooks

COMPONENT = OPERATOR_COMPONENT
DETECTED = "RecoveryDetected"
DEFERRED = "RecoveryDeferred"  # a Flux knob on the object answers the failure: the operator waits for it
ACTION = "RecoveryAction"
ESCALATED = "RecoveryEscalated"
CYCLE = "DependencyCycle"
# The stage controller's: a revision enters a stage, passes it, is refused by a check, is rolled back.
STAGE_PROMOTING = "StagePromoting"
STAGE_PASSED = "StagePassed"
STAGE_FAILED = "StageFailed"
STAGE_ROLLED_BACK = "StageRolledBack"
REASONS = (DETECTED, DEFERRED, ACTION, ESCALATED, CYCLE, STAGE_PROMOTING, STAGE_PASSED, STAGE_FAILED, STAGE_ROLLED_BACK)
# eventTime (microseconds) needs an action, so watchers can time detection and action precisely.
ACTIONS = {
    DETECTED: "Detect",
    DEFERRED: "Defer",
    ACTION: "Recover",
    ESCALATED: "Escalate",
    CYCLE: "Report",
    STAGE_PROMOTING: "Promote",
    STAGE_PASSED: "Pass",
    STAGE_FAILED: "Fail",
    STAGE_ROLLED_BACK: "RollBack",
}
# Events that hand over to a person name the runbook of the alert that pages for them.
RUNBOOK_ALERTS = {ESCALATED: runbooks.ESCALATED, CYCLE: runbooks.CYCLE}
_MESSAGE_LIMIT = 1024
log = logging.getLogger("recovery.events")


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_body(
    obj: dict[str, Any], reason: str, message: str, warning: bool, instance: str, component: str = COMPONENT
) -> dict[str, Any]:
    """A core/v1 Event about `obj` (any kind), message cut to 1 KiB (the runbook it names, if any, is kept)."""
    if reason not in REASONS:
        raise ValueError(f"unknown Event reason {reason!r}; use one of {', '.join(REASONS)}")
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace") or "default"
    now = _now()
    runbook = runbooks.for_alert(RUNBOOK_ALERTS[reason]) if reason in RUNBOOK_ALERTS else None
    suffix = f" Runbook: {runbook}" if runbook else ""
    room = _MESSAGE_LIMIT - len(suffix)
    text = (message if len(message) <= room else message[: room - 3] + "...") + suffix
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{meta.get('name', 'object')}.{secrets.token_hex(8)}", "namespace": namespace},
        "involvedObject": {
            "apiVersion": obj.get("apiVersion"),
            "kind": obj.get("kind"),
            "name": meta.get("name"),
            "namespace": namespace,
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
        },
        "reason": reason,
        "message": text,
        "type": "Warning" if warning else "Normal",
        "firstTimestamp": now,
        "lastTimestamp": now,
        "eventTime": now,
        "action": ACTIONS[reason],
        "count": 1,
        "source": {"component": component, "host": instance[:128]},
        "reportingComponent": component,
        "reportingInstance": instance[:128],
    }


class Recorder:
    """Creates Events; disabled (log only) in dry-run."""

    def __init__(
        self, kube: KubeApi | None, *, enabled: bool = True, instance: str | None = None, component: str = COMPONENT
    ):
        self.kube = kube
        self.enabled = enabled and kube is not None
        self.instance = instance or socket.gethostname()
        self.component = component

    def emit(self, obj: dict[str, Any], reason: str, message: str, *, warning: bool = False) -> None:
        body = event_body(obj, reason, message, warning, self.instance, self.component)
        if not self.enabled or self.kube is None:
            return
        try:
            self.kube.create(body)
        except ApiError as e:
            log.warning(
                "could not record Event %s on %s/%s: %s", reason, obj.get("kind"), body["involvedObject"]["name"], e
            )
