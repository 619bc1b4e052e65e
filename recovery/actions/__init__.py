"""The recovery actions by name: how each runs (a resumable step machine) and how `explain` describes it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from recovery import lifecycle
from recovery.actions import dependents, helm, sources, workloads
from recovery.actions.base import Context, Done, Outcome, Requeue
from recovery.patterns import Match


@dataclass(frozen=True)
class Action:
    name: str
    run: Callable[[Context], Outcome]
    plan: Callable[[Match], list[str]]
    mutates: bool = True


def _escalate(ctx: Context) -> Outcome:
    return Done("escalated")


ACTIONS: dict[str, Action] = {
    a.name: a
    for a in (
        Action(
            "recreate_resource",
            lambda ctx: workloads.run(ctx, lifecycle.RECREATE),
            lambda m: workloads.plan(m.targets, lifecycle.RECREATE),
        ),
        Action(
            "recreate_deployment",
            lambda ctx: workloads.run(ctx, lifecycle.BLUE_GREEN),
            lambda m: workloads.plan(m.targets, lifecycle.BLUE_GREEN),
        ),
        Action("rollback_helm_release", helm.rollback, lambda m: helm.plan_rollback()),
        Action("reset_helm_release", helm.reset, lambda m: helm.plan_reset()),
        Action("reconcile_dependents", dependents.run, lambda m: dependents.plan()),
        Action("rollback_to_last_good_revision", sources.run, lambda m: sources.plan()),
        Action(
            "escalate",
            _escalate,
            lambda m: ["record a RecoveryEscalated Event, annotate the object, count it, and stop"],
            mutates=False,
        ),
    )
}

__all__ = ["ACTIONS", "Action", "Context", "Done", "Outcome", "Requeue"]
