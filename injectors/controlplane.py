"""Control-plane faults: a Flux controller killed mid-reconcile (kubelet-style restart follows), and the git
server unreachable for a while with a commit waiting behind it.

These need the local provider's supervisor (process control); on other providers they are skipped. Each hits
the whole cluster (every run's reconciliations, every run's source), so each runs alone on a shared cluster.
Each waits on a good commit, so the app serves once that commit's workload is live.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from assertions.steady import Check
from fluxmodel.conditions import condition, last_applied_revision
from fluxmodel.kinds import GIT_REPOSITORY, KUSTOMIZATION, ObjectRef
from fluxmodel.signatures import SOURCE_FETCH_FAILED
from foundation.errors import HarnessError
from foundation.waiting import wait_until
from injectors import apps
from injectors.base import WEB_PODS, Fault, FaultContext, serves_image, standard_setup, web_app
from injectors.helm import RELEASE, HelmUpgradeBroken

CRASH_SIGNAL = 9


def _control(ctx: FaultContext) -> Any:
    if ctx.cluster.control is None:
        raise HarnessError(
            f"{ctx.cluster.provider} clusters have no process supervisor: this fault needs --provider local"
        )
    return ctx.cluster.control


def restarted(ctx: FaultContext, component: str) -> Check:
    """Proof of a crash: the supervisor recorded the restart of the process the fault killed (the run's own
    controller: the shard's under a sharded recovery mode)."""
    component = ctx.controller(component)
    label = f"{component} killed (SIGKILL) and restarted"

    def check(_reader: Any) -> tuple[bool, str]:
        pid = ctx.state.get("killed_pid")
        events = _control(ctx).restarts()
        ok = any(e["component"] == component and e["pid"] == pid and e["signal"] == "SIGKILL" for e in events)
        return ok, label if ok else f"no restart of {component} pid {pid} recorded yet"

    return Check(label, check)


class KustomizeControllerCrash(Fault):
    name = "controller-crash-kustomize"
    family = "control-plane"
    summary = "kill -9 of kustomize-controller while it reconciles a new revision"
    component: ClassVar[str] = "kustomize-controller"
    serves = WEB_PODS
    touches_cluster = True

    def setup(self, ctx: FaultContext) -> None:
        _control(ctx)
        standard_setup(ctx, web_app(ctx))

    def inject(self, ctx: FaultContext) -> None:
        control = _control(ctx)
        dep = apps.deployment("web", ctx.namespace, image=apps.NEW_IMAGE)
        head = ctx.commit("Roll out app 2.0.0", write={f"{ctx.path}/deployment.yaml": apps.dump(dep)})
        ctx.reconcile(ctx.kustomization_ref())

        def reconciling() -> bool:
            ks = ctx.kube.get(KUSTOMIZATION.api_version, KUSTOMIZATION.kind, ctx.app, ctx.flux_namespace) or {}
            busy = condition(ks, "Reconciling")
            return bool(busy and busy.true) and last_applied_revision(ks) != head

        wait_until(reconciling, 30, f"kustomize-controller to start reconciling {head}", interval=0.02)
        killed = ctx.state["killed"] = ctx.controller(self.component)
        ctx.state["killed_pid"] = control.kill(killed, CRASH_SIGNAL)
        ctx.state["proof"] = f"killed {killed} pid {ctx.state['killed_pid']} while Reconciling {head}"

    def serving(self, ctx: FaultContext) -> Check:
        return serves_image(ctx.namespace, apps.NEW_IMAGE)

    def visible(self, ctx: FaultContext) -> Check:
        return restarted(ctx, self.component)


class HelmControllerCrash(HelmUpgradeBroken):
    """kill -9 of helm-controller in the middle of a Helm upgrade whose pods take seconds to become Ready."""

    name = "controller-crash-helm"
    family = "control-plane"
    summary = "kill -9 of helm-controller in the middle of a Helm upgrade"
    signature = None
    desired_state_valid = True
    version = "1.4.0"
    component: ClassVar[str] = "helm-controller"
    touches_cluster = True
    # Room for a rolling upgrade of pods that take seconds to become Ready, before and after the crash.
    release_spec: ClassVar[dict[str, Any]] = {"timeout": "60s"}

    def setup(self, ctx: FaultContext) -> None:
        _control(ctx)
        super().setup(ctx)

    def inject(self, ctx: FaultContext) -> None:
        control = _control(ctx)
        super().inject(ctx)

        def upgrading() -> bool:
            # Helm records the new release as pending-upgrade before it applies anything.
            selector = f"owner=helm,name={RELEASE},status=pending-upgrade"
            return bool(ctx.kube.list("v1", "Secret", ctx.namespace, label_selector=selector))

        wait_until(upgrading, 60, f"helm-controller to start upgrading to {self.version}", interval=0.02)
        time.sleep(1.0)  # into the upgrade's wait for Ready pods
        killed = ctx.state["killed"] = ctx.controller(self.component)
        ctx.state["killed_pid"] = control.kill(killed, CRASH_SIGNAL)
        ctx.state["proof"] = f"killed {killed} pid {ctx.state['killed_pid']} during the upgrade to {self.version}"

    def visible(self, ctx: FaultContext) -> Check:
        return restarted(ctx, self.component)


class SourceOutage(Fault):
    name = "source-outage"
    family = "control-plane"
    summary = "the git server is unreachable for 20 s while a commit waits behind it"
    signature = SOURCE_FETCH_FAILED
    outage: ClassVar[float] = 20.0
    serves = WEB_PODS
    touches_cluster = True

    def setup(self, ctx: FaultContext) -> None:
        _control(ctx)
        standard_setup(ctx, web_app(ctx))

    def target(self, ctx: FaultContext) -> ObjectRef:
        return ObjectRef(GIT_REPOSITORY.kind, ctx.flux_namespace, ctx.app)

    def serving(self, ctx: FaultContext) -> Check:
        return serves_image(ctx.namespace, apps.NEW_IMAGE)

    def inject(self, ctx: FaultContext) -> None:
        control = _control(ctx)
        ctx.record.add("release", component="gitserver")
        control.hold("gitserver", self.outage)
        dep = apps.deployment("web", ctx.namespace, image=apps.NEW_IMAGE)
        ctx.commit("Roll out app 2.0.0 (behind the outage)", write={f"{ctx.path}/deployment.yaml": apps.dump(dep)})
        ctx.reconcile(ctx.kustomization_ref())
