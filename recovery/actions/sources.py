"""rollback_to_last_good_revision: pin the GitRepository to the last revision that worked; unpin on a new push.

A pin sets spec.ref.commit (which source-controller prefers over the branch, and which a server-side apply of
the GitRepository from Git does not remove). While pinned, an unpinned probe GitRepository (same URL,
secret and branch) tracks the branch head; when its revision is neither the pinned nor the bad one, someone
pushed something newer, so the pin is lifted and Flux tries the new head. A reconcile request on the pinned
source is forwarded to the probe, so a push followed by `flux reconcile source git` is seen at once.
A pin is lifted again after RETRY_REJECTED_AFTER[n] seconds to try the rejected revision once more, since
a rollout or a release also fails for causes outside Git that go away (a quota, a missing namespace or CRD);
when that fails too, the rollback pins again, and after the last retry the pin stays until a new push.
A pin moves every Kustomization and HelmRelease reading the source, so an instance with --selector pins
only a source whose users all match it (another recovery mode's objects must not be rolled back).

`set_pin` / `clear_pin` are the one pinning mechanism of the system under test: the stage controller
(staging/) holds a stage back with them too, its StagedKustomization named in PINNED_BY. A source held by a
stage is that controller's: a rollback here would fight its promotions, so it escalates instead (the stage
rolls back itself); the stage controller in turn takes over a source the operator pinned.
"""

from __future__ import annotations

import copy
import threading
from typing import Any

from ctlruntime.api import KubeApi
from ctlruntime.scope import Scope
from fluxmodel.annotations import PINNED_BY, PINNED_FROM, REQUESTED_AT, reconcile_request
from fluxmodel.conditions import artifact_revision, revision_commit
from fluxmodel.kinds import GIT_REPOSITORY, HELM_RELEASE, KUSTOMIZATION, STAGED_KUSTOMIZATION, ObjectRef
from recovery.actions.base import Context, Done, Outcome, guarded_delete
from recovery.errors import PermanentError
from recovery.state import ObjectState

PROBE_FOR = "gitops.flux.io/probe-for"
PROBE_INTERVAL = "30s"
RETRY_REJECTED_AFTER = (30.0, 60.0, 120.0)
# Pins are changed from the pinning object's worker and from the source's; they are rare, one lock is enough.
_PIN_LOCK = threading.RLock()


def source_of(flux_obj: dict[str, Any]) -> ObjectRef:
    """The source a Kustomization reads (its spec.sourceRef; namespace defaults to its own)."""
    ref = ObjectRef.of(flux_obj)
    src = (flux_obj.get("spec") or {}).get("sourceRef") or {}
    return ObjectRef(str(src.get("kind") or ""), str(src.get("namespace") or ref.namespace), str(src.get("name") or ""))


def chart_source_of(release: dict[str, Any]) -> ObjectRef:
    """The source a HelmRelease's chart is built from (spec.chart.spec.sourceRef; namespace defaults to its own)."""
    ref = ObjectRef.of(release)
    chart = (((release.get("spec") or {}).get("chart") or {}).get("spec") or {}).get("sourceRef") or {}
    return ObjectRef(
        str(chart.get("kind") or ""), str(chart.get("namespace") or ref.namespace), str(chart.get("name") or "")
    )


def users_outside(kube: KubeApi, source: ObjectRef, scope: Scope) -> list[ObjectRef]:
    """Kustomizations and HelmReleases (any namespace) that read `source` and are not in `scope`."""
    if scope.selector is None:
        return []
    outside = []
    for kind, read in ((KUSTOMIZATION, source_of), (HELM_RELEASE, chart_source_of)):
        for obj in kube.list(kind.api_version, kind.kind):
            if read(obj) == source and not scope.covers(obj):
                outside.append(ObjectRef.of(obj))
    return outside


def pin_holder(src: dict[str, Any]) -> str | None:
    """Who pinned a GitRepository (`Kind/namespace/name` in PINNED_BY); None when no one of ours did."""
    value = ((src.get("metadata") or {}).get("annotations") or {}).get(PINNED_BY)
    return str(value) if value else None


def held_by_stages(src: dict[str, Any]) -> bool:
    """The source is pinned by a StagedKustomization's stage controller."""
    return (pin_holder(src) or "").startswith(f"{STAGED_KUSTOMIZATION.kind}/")


def pinned_commit(src: dict[str, Any]) -> str | None:
    value = ((src.get("spec") or {}).get("ref") or {}).get("commit")
    return str(value) if value else None


def set_pin(kube: KubeApi, source: ObjectRef, commit: str, *, by: str, bad: str = "") -> dict[str, Any]:
    """Pin `source` to `commit` (spec.ref.commit, which a server-side apply from Git leaves alone when Git does
    not set it) with who pinned it, and ask source-controller to fetch it now; returns the source."""
    patch = reconcile_request()
    patch["metadata"]["annotations"].update({PINNED_BY: by, PINNED_FROM: bad or None})
    patch["spec"] = {"ref": {"commit": commit}}
    return kube.merge_patch(GIT_REPOSITORY.api_version, source.kind, source.name, source.namespace, patch)


def clear_pin(kube: KubeApi, source: ObjectRef) -> dict[str, Any]:
    """Lift a pin: the source follows its branch again, fetched now."""
    patch: dict[str, Any] = reconcile_request()
    patch["metadata"]["annotations"].update({PINNED_BY: None, PINNED_FROM: None})
    patch["spec"] = {"ref": {"commit": None}}
    return kube.merge_patch(GIT_REPOSITORY.api_version, source.kind, source.name, source.namespace, patch)


def probe_name(source: ObjectRef) -> str:
    return f"{source.name[:230]}-head-probe"


def plan() -> list[str]:
    return [
        "pin the Kustomization's GitRepository (spec.ref.commit) to its last successful revision from "
        "reconciliation-state (or status.lastAppliedRevision)",
        "create an unpinned probe GitRepository that follows the branch head",
        "Flux applies the pinned revision; the pin is lifted when the probe sees a newer commit, or after 30 s, "
        "60 s, 120 s to try the rejected revision again (a failure rolls back again)",
    ]


def run(ctx: Context) -> Outcome:
    status = ctx.obj.get("status") or {}
    good = ctx.state.last_successful_revision or status.get("lastAppliedRevision")
    bad = status.get("lastAttemptedRevision")
    if not good or not revision_commit(str(good)):
        raise PermanentError("no successful revision recorded to roll back to")
    if good == bad:
        raise PermanentError(f"the failing revision {bad} is the last good one: a rollback cannot help")
    source = source_of(ctx.obj)
    revision = pin(ctx, source, str(good), str(bad or ""))
    return Done(f"pinned {source} to {revision} (was failing at {bad})", {"revision": revision})


def pin(ctx: Context, source: ObjectRef, good: str, bad: str) -> str:
    """Pin `source` to `good` (idempotent), create its probe, record the pin and when to retry `bad`; returns the
    pinned revision."""
    with _PIN_LOCK:
        return _pin(ctx, source, good, bad)


def _pin(ctx: Context, source: ObjectRef, good: str, bad: str) -> str:
    if source.kind != GIT_REPOSITORY.kind:
        raise PermanentError(f"{source.kind} sources cannot be pinned; only GitRepository")
    src = ctx.kube.get(GIT_REPOSITORY.api_version, source.kind, source.name, source.namespace)
    if src is None:
        raise PermanentError(f"source {source} not found")
    commit = revision_commit(good)
    ref = (src.get("spec") or {}).get("ref") or {}
    annotations = (src.get("metadata") or {}).get("annotations") or {}
    state = ctx.states(source)
    if held_by_stages(src):
        raise PermanentError(
            f"{source} is held by {pin_holder(src)} (a stage of a staged rollout): that controller rolls its stage "
            "back itself; not pinning it a second way"
        )
    if ref.get("commit") and ref.get("commit") != commit and not annotations.get(PINNED_BY):
        raise PermanentError(f"{source} is pinned to {ref['commit']} by someone else; not overriding it")
    generation = int((src.get("metadata") or {}).get("generation") or 0)
    requested = annotations.get(REQUESTED_AT)
    if ref.get("commit") != commit:
        outside = users_outside(ctx.kube, source, ctx.scope)
        if outside:
            raise PermanentError(
                f"{source} is also read by {', '.join(map(str, outside[:3]))}"
                + (f" and {len(outside) - 3} more" if len(outside) > 3 else "")
                + f", outside --selector {ctx.scope}: a pin would roll those back too"
            )
        assert commit is not None
        out = set_pin(ctx.kube, source, commit, by=str(ctx.ref), bad=bad)
        requested = ((out.get("metadata") or {}).get("annotations") or {}).get(REQUESTED_AT)
        generation = int((out.get("metadata") or {}).get("generation") or 0)
    probe = _probe(src)
    ctx.kube.apply(probe)
    ctx.kube.merge_patch(
        GIT_REPOSITORY.api_version, source.kind, probe["metadata"]["name"], source.namespace, reconcile_request()
    )
    if state.pin is None or state.pin.get("revision") != good:
        state.pin = {
            "revision": good,
            "bad": bad,
            "by": str(ctx.ref),
            "probe": probe["metadata"]["name"],
            "at": ctx.now(),
            "generation": generation,
            "forwarded": requested,  # requests made before (or by) the pin need no forwarding
        }
        retries = state.retried.get(bad, 0)
        if retries < len(RETRY_REJECTED_AFTER):
            state.pin["retry_at"] = ctx.now() + RETRY_REJECTED_AFTER[retries]
        state.health_status = "pinned"
        ctx.save_state(state)
    return good


def _probe(src: dict[str, Any]) -> dict[str, Any]:
    meta = src.get("metadata") or {}
    spec = copy.deepcopy(src.get("spec") or {})
    spec.setdefault("ref", {}).pop("commit", None)
    spec["interval"] = PROBE_INTERVAL
    spec.pop("suspend", None)
    return {
        "apiVersion": GIT_REPOSITORY.api_version,
        "kind": GIT_REPOSITORY.kind,
        "metadata": {
            "name": probe_name(ObjectRef.of(src)),
            "namespace": meta.get("namespace"),
            "labels": {PROBE_FOR: str(meta.get("name"))},
            # Deleting the source deletes its probe (the garbage collector): none is left polling Git for a
            # source that is gone, whatever became of the operator.
            "ownerReferences": [
                {
                    "apiVersion": GIT_REPOSITORY.api_version,
                    "kind": GIT_REPOSITORY.kind,
                    "name": meta.get("name"),
                    "uid": meta.get("uid"),
                }
            ],
        },
        "spec": spec,
    }


def check_pin(
    kube: KubeApi, state: ObjectState, source: dict[str, Any], probe: dict[str, Any] | None, now: float
) -> str | None:
    """For a pinned source: forward reconcile requests to the probe, unpin when the head moved or a retry is due.

    Mutates `state` (the source's); returns a one-line summary of what was done, or None.
    """
    with _PIN_LOCK:
        return _check_pin(kube, state, source, probe, now)


def _check_pin(
    kube: KubeApi, state: ObjectState, source: dict[str, Any], probe: dict[str, Any] | None, now: float
) -> str | None:
    pin_ = state.pin
    if not pin_:
        return None
    ref = ObjectRef.of(source)
    if int((source.get("metadata") or {}).get("generation") or 0) < int(pin_.get("generation") or 0):
        return None  # an older copy of the source than the one we pinned
    commit = ((source.get("spec") or {}).get("ref") or {}).get("commit")
    if commit != revision_commit(str(pin_.get("revision"))):
        _drop_probe(kube, ref, str(pin_.get("probe")))
        state.pin = None
        state.health_status = "healthy"
        return f"{ref} was re-pointed by someone else (commit {commit or 'none'}): forgetting the pin"
    requested = ((source.get("metadata") or {}).get("annotations") or {}).get(REQUESTED_AT)
    if requested and requested != pin_.get("forwarded"):
        pin_["forwarded"] = requested
        kube.merge_patch(GIT_REPOSITORY.api_version, ref.kind, str(pin_["probe"]), ref.namespace, reconcile_request())
        return f"forwarded a reconcile request on {ref} to its probe"
    head = artifact_revision(probe) if probe else None
    if head and head not in (pin_.get("revision"), pin_.get("bad")):
        _unpin(kube, ref, state)
        return f"unpinned {ref}: the branch moved to {head} (pinned at {pin_.get('revision')}, bad {pin_.get('bad')})"
    retry_at = pin_.get("retry_at")
    if retry_at is None or now < float(retry_at):
        return None
    bad = str(pin_.get("bad"))
    state.retried = {bad: state.retried.get(bad, 0) + 1}
    _unpin(kube, ref, state)
    return (
        f"unpinned {ref} to try {bad} again (retry {state.retried[bad]} of {len(RETRY_REJECTED_AFTER)}): "
        "causes outside Git go away; a new failure rolls back again"
    )


def _unpin(kube: KubeApi, ref: ObjectRef, state: ObjectState) -> None:
    pin_ = state.pin or {}
    clear_pin(kube, ref)
    _drop_probe(kube, ref, str(pin_.get("probe")))
    state.pin = None
    state.health_status = "healthy"


def _drop_probe(kube: KubeApi, source: ObjectRef, name: str) -> None:
    guarded_delete(
        kube,
        GIT_REPOSITORY.api_version,
        GIT_REPOSITORY.kind,
        name,
        source.namespace,
        propagation="Background",
        uid=None,
    )
