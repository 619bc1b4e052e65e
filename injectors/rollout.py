"""An unhealthy rollout: a commit whose Deployment never becomes Ready, so the health check fails.

Git now holds a bad desired state; recovery means the workload is healthy and the Kustomization Ready
again at some revision, which only a rollback to the last good revision (or a fix in Git) achieves.
"""

from __future__ import annotations

from fluxmodel.signatures import HEALTH_CHECK_FAILED
from injectors import apps
from injectors.base import WEB_PODS, Fault, FaultContext, standard_setup, web_app


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
        bad = apps.deployment("web", ctx.namespace, image="registry.local/app:2.0.0-rc1", behavior="never-ready")
        ctx.commit("Roll out app 2.0.0-rc1", write={f"{ctx.path}/deployment.yaml": apps.dump(bad)})
        ctx.reconcile(ctx.kustomization_ref())
