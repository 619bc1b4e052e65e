"""rollback_helm_release and reset_helm_release.

reset: forceAt and resetAt with requestedAt (helm-controller only honours them when equal), so a release
that spent its remediation retries is tried again; the engine spaces attempts out, for causes that go away.
rollback: when Git delivered the HelmRelease (origin labels name its Kustomization), pin that Git source to
the revision at which the release was last Ready, so Git, the HelmRelease and the release agree again, and
try the rejected revision again later (a quota or a missing namespace goes away; a broken chart does not);
a HelmRelease applied by hand gets its chart version set back to the deployed one.
"""

from __future__ import annotations

from fluxmodel.annotations import owner, reconcile_request
from fluxmodel.conditions import last_applied_revision
from fluxmodel.kinds import HELM_RELEASE, KUSTOMIZATION, ObjectRef
from recovery.actions.base import Context, Done, Outcome, request_reconcile
from recovery.actions.sources import pin, source_of
from recovery.errors import PermanentError

ROLLED_BACK_FROM = "gitops.flux.io/rolled-back-from"


def plan_reset() -> list[str]:
    return ["annotate the HelmRelease with requestedAt = forceAt = resetAt: reset failure counters, force a release"]


def plan_rollback() -> list[str]:
    return [
        "if a Kustomization applied the HelmRelease: pin its GitRepository to the revision at which the release "
        "was last Ready (the Kustomization then applies the old HelmRelease spec); lift the pin after 30 s, 60 s, "
        "120 s to try the rejected revision again (a failure rolls back again)",
        "otherwise: set spec.chart.spec.version back to the deployed chart version, force and reset",
        "when nothing was ever deployed (a failed install): force and reset, as for install retries exhausted",
    ]


def reset(ctx: Context) -> Done:
    token = request_reconcile(ctx.kube, ctx.obj, helm_force=True)
    return Done("requested a forced, reset reconcile (forceAt = resetAt = requestedAt)", {"token": token})


def rollback(ctx: Context) -> Outcome:
    origin = owner(ctx.obj)
    if origin and origin[0] == KUSTOMIZATION.kind and ctx.state.last_successful_source_revision:
        return _rollback_source(ctx, ObjectRef(*origin))
    deployed = last_applied_revision(ctx.obj)
    chart_spec = ((ctx.obj.get("spec") or {}).get("chart") or {}).get("spec") or {}
    wanted = chart_spec.get("version")
    if not deployed and not ctx.state.last_successful_source_revision:
        # Never deployed (an install that failed, then upgrades of that failed release): nothing to go back to,
        # so the release is tried again, as for install retries exhausted.
        done = reset(ctx)
        return Done(f"nothing was ever deployed to roll back to; {done.summary}", done.awaiting)
    if origin and origin[0] == KUSTOMIZATION.kind:
        raise PermanentError(f"no revision of {ObjectRef(*origin)}'s source is recorded where this release was Ready")
    if not deployed or not wanted or deployed == wanted:
        raise PermanentError(
            f"nothing to roll back to: the deployed chart version is {deployed or 'unknown'} and the spec asks for "
            f"{wanted or 'the latest'}"
        )
    patch = reconcile_request(force=True, reset=True)
    token = patch["metadata"]["annotations"]["reconcile.fluxcd.io/requestedAt"]
    patch["metadata"]["annotations"][ROLLED_BACK_FROM] = str(wanted)
    patch["spec"] = {"chart": {"spec": {"version": deployed}}}
    ref = ctx.ref
    ctx.kube.merge_patch(HELM_RELEASE.api_version, ref.kind, ref.name, ref.namespace, patch)
    return Done(f"set chart version back from {wanted} to the deployed {deployed}", {"token": token})


def _rollback_source(ctx: Context, owner_ref: ObjectRef) -> Outcome:
    ks = ctx.kube.get(KUSTOMIZATION.api_version, owner_ref.kind, owner_ref.name, owner_ref.namespace)
    if ks is None:
        raise PermanentError(f"{owner_ref}, which applied this HelmRelease, does not exist")
    good = str(ctx.state.last_successful_source_revision)
    current = (ks.get("status") or {}).get("lastAttemptedRevision")
    if good == current:
        raise PermanentError(f"{owner_ref} is already at {good}, where this HelmRelease was last Ready")
    source = source_of(ks)
    revision = pin(ctx, source, good, str(current or ""))
    generation = int((ctx.obj.get("metadata") or {}).get("generation") or 0)
    return Done(
        f"pinned {source} to {revision}, where this HelmRelease was last Ready ({owner_ref} was at {current})",
        {"generation": generation},
    )
