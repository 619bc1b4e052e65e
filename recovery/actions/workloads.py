"""recreate_resource and recreate_deployment: replace the objects the API server refuses to change in place.

The refused objects come from the failure message (fluxmodel.signatures.failing_objects) and must have been
applied by the failing Flux object (inventory or origin labels). Each is replaced with its lifecycle plan
(blue-green, recreate, orphan), lowest dependency weight first; then Flux is asked to reconcile, and it
creates the objects from the desired state.
"""

from __future__ import annotations

import contextlib
from typing import Any

from fluxmodel.annotations import RECOVERY_POLICY, annotation
from fluxmodel.conditions import deployment_available
from fluxmodel.inventory import find
from fluxmodel.kinds import ObjectRef
from fluxmodel.signatures import NamedObject
from kubeapi import Conflict
from recovery import lifecycle
from recovery.actions.base import Context, Done, Outcome, Requeue, guarded_delete, managed_by, request_reconcile
from recovery.errors import PermanentError

COPY_READY_SECONDS = 120.0
NEW_READY_SECONDS = 600.0
POLL = 1.0


def plan(match_targets: tuple[NamedObject, ...], default: str) -> list[str]:
    """What the action would do, for `explain` and dry-run logs."""
    if not match_targets:
        return ["no refused object named in the message: nothing to re-create (escalate)"]
    steps = []
    for t in match_targets:
        where = f"{t.kind}/{t.namespace or '<release namespace>'}/{t.name}"
        if t.kind == "StatefulSet":
            steps.append(f"delete {where} with propagation Orphan (pods and PVCs stay), let Flux re-create it")
        elif t.kind == "Deployment" and default == lifecycle.BLUE_GREEN:
            steps.append(
                f"blue-green {where}: copy it under a temporary name, wait until the copy is Available, delete "
                "the original, reconcile, wait until Flux's new Deployment is Available, delete the copy"
            )
        else:
            steps.append(f"delete {where} (propagation Background), let Flux re-create it")
    steps.append("request a reconcile of the Flux object (HelmRelease: forceAt and resetAt too)")
    return steps


def run(ctx: Context, default: str) -> Outcome:
    targets = ctx.note("targets")
    if targets is None:
        targets = _resolve(ctx)
        ctx.progress["targets"] = targets
    for key in targets:
        progress = ctx.progress.setdefault("steps", {}).setdefault(key, {"step": "start"})
        outcome = _advance(ctx, targets[key], progress, default)
        if outcome is not None:
            return outcome
    if not ctx.note("reconciled"):
        token = request_reconcile(ctx.kube, ctx.obj, helm_force=ctx.ref.kind == "HelmRelease")
        ctx.progress["reconciled"] = token
    for key in targets:
        progress = ctx.progress["steps"][key]
        if progress["step"] == "new-wait":
            outcome = _blue_green_finish(ctx, targets[key], progress)
            if outcome is not None:
                return outcome
    done = ", ".join(f"{k} ({ctx.progress['steps'][k].get('strategy', 'gone')})" for k in targets)
    return Done(f"re-created {done}", {"token": ctx.progress["reconciled"]})


def _resolve(ctx: Context) -> dict[str, dict[str, Any]]:
    """Refused objects as {key: {apiVersion, kind, namespace, name}}, checked and ordered by weight."""
    named = ctx.match.targets
    if not named:
        raise PermanentError("the message names no refused object to re-create")
    found: list[tuple[str, dict[str, Any] | None]] = []
    described: dict[str, dict[str, Any]] = {}
    for target in named:
        api_version, namespace = locate(ctx.obj, target)
        if not api_version:
            raise PermanentError(f"unknown apiVersion for {target.kind}: not in the inventory of {ctx.ref}")
        key = f"{target.kind}/{namespace}/{target.name}"
        live = ctx.kube.get(api_version, target.kind, target.name, namespace)
        if live is not None:
            if not managed_by(ctx.obj, live):
                raise PermanentError(f"{key} was not applied by {ctx.ref}: refusing to touch it")
            if (annotation(live, RECOVERY_POLICY) or "").strip().lower() == "manual":
                raise PermanentError(f"{key} has {RECOVERY_POLICY}: manual")
            try:
                lifecycle.check_declared_fields(live, ctx.match.failure.message)
            except lifecycle.StrategyRefused as e:
                raise PermanentError(f"{key}: {e}") from e
        described[key] = {"apiVersion": api_version, "kind": target.kind, "namespace": namespace, "name": target.name}
        found.append((key, live))
    return {key: described[key] for key in lifecycle.replacement_order(found)}


def locate(flux_obj: dict[str, Any], target: NamedObject) -> tuple[str | None, str]:
    """(apiVersion, namespace) of an object a failure message names: from the inventory, else the usual ones."""
    ref = ObjectRef.of(flux_obj)
    namespace = target.namespace or str((flux_obj.get("spec") or {}).get("targetNamespace") or ref.namespace)
    entry = find(flux_obj, ObjectRef(target.kind, namespace, target.name))
    api_version = entry.api_version if entry else target.api_version or lifecycle.DEFAULT_API_VERSIONS.get(target.kind)
    return api_version, namespace


def _advance(ctx: Context, target: dict[str, Any], progress: dict[str, Any], default: str) -> Outcome | None:
    """Move one target forward; None when it needs nothing more before the reconcile."""
    api_version, kind, ns, name = target["apiVersion"], target["kind"], target["namespace"], target["name"]
    if progress["step"] == "start":
        live = ctx.kube.get(api_version, kind, name, ns)
        if live is None:
            progress["step"] = "gone"
            return None
        try:
            plan_ = lifecycle.strategy_for(live, default)
        except lifecycle.StrategyRefused as e:
            raise PermanentError(f"{kind}/{ns}/{name}: {e}") from e
        progress.update(strategy=plan_.strategy, propagation=plan_.propagation, uid=live["metadata"]["uid"])
        if plan_.strategy == lifecycle.BLUE_GREEN:
            progress["copy"] = lifecycle.copy_name(name, progress["uid"])
            progress["serving"] = deployment_available(live)
            with contextlib.suppress(Conflict):  # created before a restart
                ctx.kube.create(lifecycle.blue_green_copy(live, progress["copy"]))
            progress["step"] = "copy-wait"
            progress["since"] = ctx.now()
        else:
            progress["step"] = "delete"
    if progress["step"] == "copy-wait":
        copy = ctx.kube.get("apps/v1", "Deployment", progress["copy"], ns)
        if progress.get("serving") and not deployment_available(copy):
            if ctx.now() - float(progress["since"]) < COPY_READY_SECONDS:
                return Requeue(POLL, f"waiting for the blue-green copy {progress['copy']} to be Available")
            raise PermanentError(f"blue-green copy {ns}/{progress['copy']} not Available after {COPY_READY_SECONDS:g}s")
        progress["step"] = "delete"
    if progress["step"] == "delete":
        guarded_delete(ctx.kube, api_version, kind, name, ns, propagation=progress["propagation"], uid=progress["uid"])
        progress["step"] = "gone-wait"
    if progress["step"] == "gone-wait":
        live = ctx.kube.get(api_version, kind, name, ns)
        if live is not None and live["metadata"].get("uid") == progress["uid"]:
            return Requeue(0.5, f"waiting for {kind}/{ns}/{name} to be deleted")
        progress["step"] = "new-wait" if progress.get("strategy") == lifecycle.BLUE_GREEN else "gone"
        progress["since"] = ctx.now()
    return None


def _blue_green_finish(ctx: Context, target: dict[str, Any], progress: dict[str, Any]) -> Outcome | None:
    """After the reconcile: wait for Flux's new Deployment, then remove the copy."""
    ns, name = target["namespace"], target["name"]
    new = ctx.kube.get("apps/v1", "Deployment", name, ns)
    fresh = new is not None and new["metadata"].get("uid") != progress["uid"]
    if not (fresh and deployment_available(new)):
        if ctx.now() - float(progress["since"]) < NEW_READY_SECONDS:
            return Requeue(POLL, f"waiting for Flux's new Deployment {ns}/{name} to be Available")
        raise PermanentError(
            f"Flux's new Deployment {ns}/{name} not Available after {NEW_READY_SECONDS:g}s; "
            f"the copy {progress['copy']} keeps serving the old pods"
        )
    guarded_delete(ctx.kube, "apps/v1", "Deployment", progress["copy"], ns, propagation="Background", uid=None)
    progress["step"] = "gone"
    progress["strategy"] = lifecycle.BLUE_GREEN
    return None
