"""reconcile_dependents: an object held back by dependsOn is reconciled as soon as its dependencies are Ready.

Flux re-checks a blocked object only every --requeue-dependency (30 s by default), level by level, so a
3-deep chain takes minutes after its root recovers. The engine runs this action only when every dependency
is Ready by Flux's own rule; the dependency resolver does the same for each dependent when a root recovers.
"""

from __future__ import annotations

from recovery.actions.base import Context, Done, Outcome, request_reconcile


def plan() -> list[str]:
    return [
        "wait until every dependsOn dependency is Ready (Ready=True, current generation, at its source's revision)",
        "then request a reconcile at once instead of waiting for --requeue-dependency; dependents follow in order",
    ]


def run(ctx: Context) -> Outcome:
    token = request_reconcile(ctx.kube, ctx.obj)
    return Done("dependencies are Ready: requested a reconcile now", {"token": token})
