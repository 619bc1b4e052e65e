"""Flux at its best: every recovery knob the pinned controllers have, in one place (docs/flux-knobs.md says why).

A `flux-tuned` run is reconciled by a shard of its own: a second kustomize-controller and helm-controller started
with the gates and flags below and `--watch-label-selector` on the run's recovery label, while the default
controllers exclude those objects (Flux's sharding, installation/configuration/sharding in the Flux docs). Feature
gates are per process, so this is the only way to keep Flux's defaults for the other modes of the same session.
Each gate name is checked against the pinned controller's own `internal/features` (an unknown gate makes the
controller exit 1 with "feature-gate 'X' not supported", so a wrong name fails cluster start).

The object knobs go on the run's Kustomizations and HelmReleases (scenarios.recoveries.FluxTuned); the webhook
Flux would get from notification-controller's Receiver (it only annotates the GitRepository with requestedAt) is
the same annotation, set by the harness right after each push.
"""

from __future__ import annotations

import copy
from typing import Any

from fluxmodel.annotations import RECOVERY_MODE_LABEL
from fluxmodel.kinds import GIT_REPOSITORY, HELM_RELEASE, KUSTOMIZATION

MODE = "flux-tuned"
# The shard's process names: the default controller's name with this suffix.
SUFFIX = "-tuned"
SHARDED = ("kustomize-controller", "helm-controller")
DEFAULT_CONTROLLERS = ("source-controller", *SHARDED)
# Every Flux controller process of a cluster with the shard.
CONTROLLER_PROCESSES = (*DEFAULT_CONTROLLERS, *(c + SUFFIX for c in SHARDED))
# Dependencies re-checked every 5 s instead of 30 s (a maintainer's suggestion in fluxcd/flux2#4808).
REQUEUE_DEPENDENCY = "5s"
GATES: dict[str, dict[str, bool]] = {
    # A new revision or reconcile request cancels a running health check (kc >= 1.7, any watch event >= 1.8);
    # sources read from the API server, not a possibly stale cache.
    "kustomize-controller": {"CancelHealthCheckOnNewRevision": True, "DirectSourceFetch": True},
    # The same cancel for Helm's poller wait (hc >= 1.5.0), enabled with DefaultToRetryOnFailure as its changelog
    # asks (a canceled release without a strategy is not left stuck).
    "helm-controller": {
        "CancelHealthCheckOnNewRevision": True,
        "DefaultToRetryOnFailure": True,
        "DirectSourceFetch": True,
    },
}
# Object knobs. A Kustomization's timeout is never under 30 s in the controller (GetTimeout's floor).
KUSTOMIZATION_RETRY = "5s"
KUSTOMIZATION_TIMEOUT = "30s"
GIT_INTERVAL = "10s"
# Upgrade remediation: one retry, and a failed last attempt is rolled back to the last good release. An explicit
# RemediateOnFailure: with DefaultToRetryOnFailure on, an unset strategy would mean RetryOnFailure, which skips
# remediation altogether.
UPGRADE = {
    "strategy": {"name": "RemediateOnFailure"},
    "remediation": {"retries": 1, "remediateLastFailure": True, "strategy": "rollback"},
}
INSTALL = {"strategy": {"name": "RemediateOnFailure"}, "remediation": {"retries": 1, "remediateLastFailure": True}}
HELM_TIMEOUT = "60s"


def shard(component: str) -> str:
    """The tuned shard's process for a default controller (source-controller is shared: it has no gate to set)."""
    return component + SUFFIX if component in SHARDED else component


def is_shard(component: str) -> bool:
    return component.endswith(SUFFIX)


def reconciling(shard_mode: str | None) -> tuple[str, ...]:
    """The controller processes a run of a mode depends on: its shard's (and the shared source-controller), or
    the default ones."""
    return tuple(shard(c) for c in DEFAULT_CONTROLLERS) if shard_mode == MODE else DEFAULT_CONTROLLERS


def default_selector() -> str:
    """What the default controllers watch: everything but the tuned shard's objects (objects without the label too).
    The set form: the controllers parse the flag with ParseToLabelSelector, which refuses `!=`."""
    return f"{RECOVERY_MODE_LABEL} notin ({MODE})"


def shard_selector() -> str:
    return f"{RECOVERY_MODE_LABEL}={MODE}"


def controller_flags(component: str) -> list[str]:
    """The tuned shard's flags for `component` (one of SHARDED): gates, requeue and the watch selector."""
    gates = ",".join(f"{name}={str(on).lower()}" for name, on in GATES[component].items())
    return [
        f"--feature-gates={gates}",
        f"--requeue-dependency={REQUEUE_DEPENDENCY}",
        f"--watch-label-selector={shard_selector()}",
    ]


def decorate(obj: dict[str, Any]) -> dict[str, Any]:
    """Flux's object knobs for fast recovery on a run's Flux object (settings a fault made itself are kept where
    they are its point: a Kustomization's own timeout sized to its app, a release's own timeout)."""
    kind, spec = obj.get("kind"), obj.setdefault("spec", {})
    if kind == KUSTOMIZATION.kind:
        spec["force"] = True
        spec["retryInterval"] = KUSTOMIZATION_RETRY
        spec.setdefault("timeout", KUSTOMIZATION_TIMEOUT)
    elif kind == HELM_RELEASE.kind:
        spec["install"] = {**spec.get("install", {}), **copy.deepcopy(INSTALL)}
        spec["upgrade"] = {**spec.get("upgrade", {}), **copy.deepcopy(UPGRADE)}
        spec["waitStrategy"] = {"name": "poller"}
        spec.setdefault("timeout", HELM_TIMEOUT)
    elif kind == GIT_REPOSITORY.kind:
        spec["interval"] = GIT_INTERVAL
    return obj


def marks(obj: dict[str, Any]) -> list[str]:
    """flux-tuned's object knobs found on `obj` (for the isolation check: none may show under another mode)."""
    spec, kind = obj.get("spec") or {}, obj.get("kind")
    found = []
    if kind == KUSTOMIZATION.kind and spec.get("retryInterval") == KUSTOMIZATION_RETRY and spec.get("force") is True:
        found.append("spec.force with a 5s retryInterval")
    if kind == HELM_RELEASE.kind and (spec.get("waitStrategy") or {}).get("name") == "poller":
        found.append("an explicit poller waitStrategy")
    return found
