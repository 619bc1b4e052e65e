"""An unhealthy rollout: a commit whose Deployment never becomes Ready, so the health check fails.

Git now holds a bad desired state; recovery means the workload is healthy at a good revision (any but the bad one)
and the Kustomization Ready again at some revision, which only a rollback to the last good revision (or a fix in
Git) achieves. The next commit after it is that fix: a good release rolled forward.
"""

from __future__ import annotations

import dataclasses

from assertions.steady import Check
from fluxmodel.signatures import HEALTH_CHECK_FAILED
from injectors import apps
from injectors.base import WEB_PODS, Fault, FaultContext, NextCommit, serves_spec, standard_setup, web_app


class UnhealthyRollout(Fault):
    name = "unhealthy-rollout"
    family = "rollout"
    summary = "a commit whose Deployment never becomes Ready (health check fails); rollback expected"
    signature = HEALTH_CHECK_FAILED
    desired_state_valid = False
    serves = WEB_PODS

    def setup(self, ctx: FaultContext) -> None:
        standard_setup(ctx, web_app(ctx))

    def inject(self, ctx: FaultContext) -> None:
        bad = apps.deployment("web", ctx.namespace, image=apps.NEVER_READY_IMAGE, behavior="never-ready")
        ctx.commit("Roll out app 2.0.0-rc1", write={f"{ctx.path}/deployment.yaml": apps.dump(bad)})
        ctx.reconcile(ctx.kustomization_ref())

    def serving(self, ctx: FaultContext) -> Check:
        return serves_spec(
            ctx.namespace, "web", "at a good release", lambda obj: apps.NEVER_READY_IMAGE not in apps.images(obj)
        )

    def next_commit(self, ctx: FaultContext) -> NextCommit:
        good = apps.deployment("web", ctx.namespace, image=apps.FIXED_IMAGE)
        write = {f"{ctx.path}/deployment.yaml": apps.dump(good)}
        return dataclasses.replace(super().next_commit(ctx), message="Roll forward to app 2.0.1", write=write)
