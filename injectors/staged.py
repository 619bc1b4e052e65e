"""Staged faults: the same change reaching a three-stage app (validation -> canary -> production) with and without
a StagedKustomization in front of it, so the report shows what the gates change.

Every run sets up the same objects: per stage a namespace, a GitRepository and a Flux Kustomization of one path
(targetNamespace per stage; production is the run's own namespace, with its user data). Under `none` Flux alone
applies each commit to every stage at once; under `staged` a StagedKustomization (the design's example, plus a
canary stage) holds the stages and the stage controller moves revisions. The `reached` figure counts, per stage,
the objects that ever carried the bad revision; the SLO file budgets production at 0 under `staged`. The app serves
once production's workload runs a good release; the stages' reporting is each fault's own (held at the last good
revision under `staged`, at the head otherwise).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

from assertions.reached import ReachedTracker, StageWatch
from assertions.steady import Check, Reader, Revision, deployment_available, kustomization_ready
from assertions.watch import Target
from fluxmodel.annotations import PINNED_BY, reconcile_request
from fluxmodel.conditions import artifact_revision, condition
from fluxmodel.kinds import GIT_REPOSITORY, KUSTOMIZATION, STAGED_KUSTOMIZATION, ObjectRef
from fluxmodel.signatures import HEALTH_CHECK_FAILED, SELECTOR_IMMUTABLE
from fluxmodel.staged import COMPATIBILITY_CHECK, POD_READY, head_name, short
from foundation.errors import HarnessError
from foundation.waiting import wait_until
from injectors import apps
from injectors.base import Fault, FaultContext, NextCommit, serves_image, serves_spec

STAGED_MODE = "staged"
CANARY_TIMEOUT = "30s"  # pod-ready in the canary; Flux's own health check (KS_DEFAULTS) times out after 20 s


@dataclass(frozen=True)
class StageSetup:
    """One stage of a run: its name, Flux Kustomization and GitRepository (same name), namespace."""

    name: str
    kustomization: str
    namespace: str


def stages(ctx: FaultContext) -> list[StageSetup]:
    return [
        StageSetup("validation", f"{ctx.app}-validation", f"{ctx.app}-validation"),
        StageSetup("canary", f"{ctx.app}-canary", f"{ctx.app}-canary"),
        StageSetup("production", ctx.app, ctx.namespace),
    ]


def staged_object(ctx: FaultContext) -> dict[str, Any]:
    """The design's StagedKustomization (validation checks, pod-ready) with a canary stage between."""
    validation, canary, production = stages(ctx)
    return {
        "apiVersion": STAGED_KUSTOMIZATION.api_version,
        "kind": STAGED_KUSTOMIZATION.kind,
        "metadata": {"name": ctx.app, "namespace": ctx.flux_namespace},
        "spec": {
            "stages": [
                {
                    "name": validation.name,
                    "kustomizationRef": {"name": validation.kustomization},
                    "validationChecks": [{"type": "build-success"}, {"type": "compatibility-check"}],
                },
                {
                    "name": canary.name,
                    "kustomizationRef": {"name": canary.kustomization},
                    "dependsOn": [validation.name],
                    "healthChecks": [{"type": "pod-ready", "timeout": CANARY_TIMEOUT}],
                },
                {
                    "name": production.name,
                    "kustomizationRef": {"name": production.kustomization},
                    "dependsOn": [canary.name],
                    "healthChecks": [{"type": "kustomization-ready", "timeout": "60s"}],
                },
            ]
        },
    }


def web(**kwargs: Any) -> dict[str, Any]:
    """The app's Deployment as Git holds it: no namespace (each stage's Kustomization sets its own)."""
    return apps.deployment("web", "", **kwargs)


def never_ready(obj: dict[str, Any]) -> bool:
    """A Deployment of the never-ready release (the bad change of the rollout faults)."""
    return obj.get("kind") == "Deployment" and apps.NEVER_READY_IMAGE in apps.images(obj)


def staged_status(reader: Reader, ctx: FaultContext) -> dict[str, Any]:
    obj = reader.get(STAGED_KUSTOMIZATION.api_version, STAGED_KUSTOMIZATION.kind, ctx.app, ctx.flux_namespace)
    return dict((obj or {}).get("status") or {})


def stage_phase(reader: Reader, ctx: FaultContext, stage: str) -> tuple[str, str]:
    st: dict[str, Any] = next((s for s in staged_status(reader, ctx).get("stages") or [] if s.get("name") == stage), {})
    return str(st.get("phase") or ""), str(st.get("revision") or "")


class StagedFault(Fault):
    family = "staged"
    bad_change: ClassVar[dict[str, Any]] = {}
    # The release production must run once recovered (None: any good one, the last good or a later).
    good_image: ClassVar[str | None] = None

    def runs_under(self, mode: str) -> bool:
        """With stages and without: Flux alone (`none`), the stage controller, or a user's own (Flux's tuned modes
        have no stage knob: `none` is their comparison)."""
        return mode not in ("operator", "flux-native", "flux-tuned")

    def staged(self, ctx: FaultContext) -> bool:
        return ctx.mode == STAGED_MODE

    # -- setup ---------------------------------------------------------------------------------------------
    def setup(self, ctx: FaultContext) -> None:
        ctx.create_namespace()
        for obj in apps.user_data(ctx.namespace):
            ctx.apply(obj)
        for stage in stages(ctx)[:-1]:
            ctx.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": stage.namespace}})
        files = {
            f"{ctx.path}/deployment.yaml": apps.dump(web()),
            f"{ctx.path}/kustomization.yaml": apps.dump(apps.kustomization_file(["deployment.yaml"])),
        }
        ctx.setup_revision = ctx.commit(f"Add app {ctx.app} (three stages)", write=files)
        for stage in stages(ctx):
            source = ctx.source()
            source["metadata"]["name"] = stage.kustomization
            ctx.apply(source)
            ks = ctx.kustomization(
                stage.kustomization,
                ctx.path,
                sourceRef={"kind": GIT_REPOSITORY.kind, "name": stage.kustomization},
                targetNamespace=stage.namespace,
                wait=stage.name != "validation",  # the validation stage only proves the revision applies
            )
            ctx.apply(ks)
        if self.staged(ctx):
            ctx.apply(ctx.decorate(staged_object(ctx)))

    def steady(self, ctx: FaultContext, revision: Revision) -> Check:
        check = self._stages_at(ctx, revision)
        if self.staged(ctx):
            check = check & self._pipeline_holds(ctx)
        return check

    def _stages_at(self, ctx: FaultContext, revision: Revision, which: tuple[str, ...] | None = None) -> Check:
        checks = [
            kustomization_ready(ctx.flux_namespace, s.kustomization, revision)
            & deployment_available(s.namespace, "web")
            for s in stages(ctx)
            if which is None or s.name in which
        ]
        out = checks[0]
        for check in checks[1:]:
            out = out & check
        return out

    def _pipeline_holds(self, ctx: FaultContext) -> Check:
        """Every stage passed the revision its Kustomization applied, and its source is held there."""
        label = f"StagedKustomization {ctx.app} Ready, every stage source held by it"

        def check(reader: Reader) -> tuple[bool, str]:
            ready = condition({"status": staged_status(reader, ctx)}, "Ready")
            if ready is None or not ready.true:
                return False, f"StagedKustomization {ctx.app} not Ready: {ready.message if ready else 'no status'}"
            for stage in stages(ctx):
                src = reader.get(
                    GIT_REPOSITORY.api_version, GIT_REPOSITORY.kind, stage.kustomization, ctx.flux_namespace
                )
                holder = ((src or {}).get("metadata") or {}).get("annotations", {}).get(PINNED_BY)
                if holder != f"{STAGED_KUSTOMIZATION.kind}/{ctx.flux_namespace}/{ctx.app}":
                    return False, f"GitRepository {stage.kustomization} not held by the StagedKustomization ({holder})"
            return True, label

        return Check(label, check)

    # -- injecting -----------------------------------------------------------------------------------------
    def push(self, ctx: FaultContext, message: str, dep: dict[str, Any], bad: bool) -> str:
        revision = ctx.commit(message, write={f"{ctx.path}/deployment.yaml": apps.dump(dep)})
        if bad and "bad" not in ctx.state:
            ctx.state["bad"] = revision
        self.fetch(ctx)
        return revision

    def fetch(self, ctx: FaultContext) -> None:
        """Nothing waits for an interval: the head (staged) or every stage's source and Kustomization (Flux alone)."""
        kube = ctx.kube
        if self.staged(ctx):
            name = head_name(ctx.app)
            kube.merge_patch(
                GIT_REPOSITORY.api_version, GIT_REPOSITORY.kind, name, ctx.flux_namespace, reconcile_request()
            )
            return
        for stage in stages(ctx):
            for kind in (GIT_REPOSITORY, KUSTOMIZATION):
                kube.merge_patch(
                    kind.api_version, kind.kind, stage.kustomization, ctx.flux_namespace, reconcile_request()
                )

    # -- what the run measures -------------------------------------------------------------------------------
    def serving(self, ctx: FaultContext) -> Check:
        """Production's workload available at a good release."""
        if self.good_image is not None:
            return serves_image(ctx.namespace, self.good_image)
        return serves_spec(ctx.namespace, "web", "at a good release", lambda obj: not never_ready(obj))

    def announce(self, ctx: FaultContext) -> None:
        self.fetch(ctx)

    def next_commit_web(self, ctx: FaultContext) -> dict[str, Any] | None:
        """The Deployment the next commit rolls forward to; None when Git's head is good (a harmless file will do)."""
        return None

    def next_commit(self, ctx: FaultContext) -> NextCommit:
        """Taken once production's Kustomization is Ready at it."""
        commit = super().next_commit(ctx)
        dep = self.next_commit_web(ctx)
        if dep is None:
            return commit
        write = {f"{ctx.path}/deployment.yaml": apps.dump(dep)}
        return dataclasses.replace(commit, message="Roll forward to app 2.0.1", write=write)

    def target(self, ctx: FaultContext) -> ObjectRef:
        return ctx.kustomization_ref()

    def targets(self, ctx: FaultContext) -> list[Target]:
        extra = [Target("apps/v1", "Deployment", s.namespace) for s in stages(ctx)[:-1]]
        extra.append(Target(STAGED_KUSTOMIZATION.api_version, STAGED_KUSTOMIZATION.kind, ctx.flux_namespace))
        return [*super().targets(ctx), *extra]

    def watched_refs(self, ctx: FaultContext) -> set[str]:
        refs = {str(ObjectRef(KUSTOMIZATION.kind, ctx.flux_namespace, s.kustomization)) for s in stages(ctx)}
        return refs | {str(ObjectRef(STAGED_KUSTOMIZATION.kind, ctx.flux_namespace, ctx.app))}

    def bad_object(self, obj: dict[str, Any]) -> bool:
        """A workload carrying the bad change (the fault's own mark in its pod template or selector)."""
        return False

    def reached(self, ctx: FaultContext) -> ReachedTracker | None:
        watches = [
            StageWatch(s.name, ObjectRef(KUSTOMIZATION.kind, ctx.flux_namespace, s.kustomization), s.namespace)
            for s in stages(ctx)
        ]
        return ReachedTracker(watches, lambda: ctx.state.get("bad"), self.bad_object)

    def failed_in(self, ctx: FaultContext, stage: str, check_type: str) -> Check:
        """Proof under stages: the StagedKustomization marked the bad revision failed by `check_type` in `stage`."""
        label = f"StagedKustomization {ctx.app}: the bad revision failed {check_type} in {stage}"

        def check(reader: Reader) -> tuple[bool, str]:
            bad = ctx.state.get("bad")
            for failure in staged_status(reader, ctx).get("failedRevisions") or []:
                if failure.get("revision") == bad and failure.get("stage") == stage:
                    ok = failure.get("check") == check_type
                    return ok, label if ok else f"{short(bad)} failed {failure.get('check')}, not {check_type}"
            return False, f"{short(bad)} not marked failed yet"

        return Check(label, check)

    def held_at_last_good(self, ctx: FaultContext, failed_stage: str, check_type: str) -> Check:
        """Recovered under stages: the stage that failed the bad revision and every stage after it Ready at the last
        good revision, the bad one marked failed (stages before keep it: it passed there)."""
        names = [s.name for s in stages(ctx)]
        later = tuple(names[names.index(failed_stage) :])
        return self._stages_at(ctx, ctx.setup_revision, later) & self.failed_in(ctx, failed_stage, check_type)


class StagedSelectorChange(StagedFault):
    name = "staged-selector-change"
    summary = "a Deployment's selector changes in Git; with stages it is held at validation (compatibility-check)"
    signature = SELECTOR_IMMUTABLE
    desired_state_valid = False  # recovered (under stages) means held at the last good revision

    def inject(self, ctx: FaultContext) -> None:
        changed = apps.deployment("web", ctx.namespace, {"app": "web", "track": "stable"})
        ctx.prove(ctx.refused(changed, "spec.selector", "field is immutable"), "an immutable selector change")
        self.push(ctx, "Select only stable pods", web(labels={"app": "web", "track": "stable"}), bad=True)

    def bad_object(self, obj: dict[str, Any]) -> bool:
        selector = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        return obj.get("kind") == "Deployment" and selector.get("track") == "stable"

    def visible(self, ctx: FaultContext) -> Check:
        return self.failed_in(ctx, "validation", COMPATIBILITY_CHECK) if self.staged(ctx) else super().visible(ctx)

    def reporting(self, ctx: FaultContext) -> Check:
        if self.staged(ctx):
            return self.held_at_last_good(ctx, "validation", COMPATIBILITY_CHECK)
        return self._stages_at(ctx, ctx.head, ("production",))  # Flux alone: the new selector live

    def next_commit_web(self, ctx: FaultContext) -> dict[str, Any] | None:
        """Under stages Git's head holds the refused selector: the next good commit keeps the live one. Without them
        recovered means the new selector is live, and the head is good."""
        return web(image=apps.FIXED_IMAGE) if self.staged(ctx) else None


class StagedUnhealthyRollout(StagedFault):
    name = "staged-unhealthy-rollout"
    summary = "a commit whose pods never become Ready; with stages the canary fails pod-ready and rolls back"
    signature = HEALTH_CHECK_FAILED
    desired_state_valid = False

    def inject(self, ctx: FaultContext) -> None:
        self.push(ctx, "Roll out app 2.0.0-rc1", web(image=apps.NEVER_READY_IMAGE, behavior="never-ready"), bad=True)

    def bad_object(self, obj: dict[str, Any]) -> bool:
        return never_ready(obj)

    def visible(self, ctx: FaultContext) -> Check:
        return self.failed_in(ctx, "canary", POD_READY) if self.staged(ctx) else super().visible(ctx)

    def reporting(self, ctx: FaultContext) -> Check:
        if self.staged(ctx):
            return self.held_at_last_good(ctx, "canary", POD_READY)
        return self._stages_at(ctx, None, ("production",))  # Flux alone: healthy at any revision

    def next_commit_web(self, ctx: FaultContext) -> dict[str, Any] | None:
        return web(image=apps.FIXED_IMAGE)  # a roll forward past the bad release


class StagedGoodChange(StagedFault):
    name = "staged-good-change"
    summary = "a good change flows through every stage: commit to production Ready, with and without the gates"
    desired_state_valid = True
    good_image = apps.NEW_IMAGE

    def inject(self, ctx: FaultContext) -> None:
        revision = self.push(ctx, "Roll out app 2.0.0", web(image=apps.NEW_IMAGE), bad=False)
        ctx.state["proof"] = f"committed a good change at {revision}"

    def reporting(self, ctx: FaultContext) -> Check:
        check = self._stages_at(ctx, ctx.head, ("production",))
        return check & self._pipeline_holds(ctx) if self.staged(ctx) else check

    def reached(self, ctx: FaultContext) -> ReachedTracker | None:
        return None  # nothing bad to follow


class StagedControllerKill(StagedFault):
    name = "staged-controller-kill"
    summary = "the stage controller killed (-9) mid-promotion: it resumes, skips no stage, applies nothing twice"
    desired_state_valid = True
    good_image = apps.NEW_IMAGE

    def runs_under(self, mode: str) -> bool:
        return mode == STAGED_MODE

    def inject(self, ctx: FaultContext) -> None:
        if ctx.recovery is None or not self.staged(ctx):
            raise HarnessError("staged-controller-kill needs the stage controller running (--recovery staged)")
        kube = ctx.kube
        ctx.state["generations"] = {
            s.kustomization: int(
                kube.get(GIT_REPOSITORY.api_version, GIT_REPOSITORY.kind, s.kustomization, ctx.flux_namespace)[
                    "metadata"
                ]["generation"]
            )
            for s in stages(ctx)
        }
        revision = self.push(ctx, "Roll out app 2.0.0", web(image=apps.NEW_IMAGE), bad=False)
        wait_until(
            lambda: stage_phase(kube, ctx, "canary") == ("Progressing", revision),
            90,
            f"the canary stage to apply {revision}",
            interval=0.05,
        )
        pid = ctx.recovery.crash()
        ctx.state["proof"] = f"killed the stage controller (pid {pid}) while the canary stage applied {revision}"

    def reporting(self, ctx: FaultContext) -> Check:
        label = "every stage passed the head once, each source pinned to it once"

        def once(reader: Reader) -> tuple[bool, str]:
            head = ctx.head()
            status = staged_status(reader, ctx)
            for stage in stages(ctx):
                moves = [
                    h["result"]
                    for h in status.get("history") or []
                    if h.get("stage") == stage.name and h.get("revision") == head
                ]
                if moves != ["Applying", "Passed"]:
                    return False, f"stage {stage.name} history for {short(head)}: {moves}"
                src = reader.get(
                    GIT_REPOSITORY.api_version, GIT_REPOSITORY.kind, stage.kustomization, ctx.flux_namespace
                )
                generation = int(((src or {}).get("metadata") or {}).get("generation") or 0)
                before = int(ctx.state["generations"][stage.kustomization])
                if generation != before + 1:
                    return False, f"GitRepository {stage.kustomization} changed {generation - before} time(s), not once"
            return True, label

        return self._stages_at(ctx, ctx.head) & self._pipeline_holds(ctx) & Check(label, once)

    def reached(self, ctx: FaultContext) -> ReachedTracker | None:
        return None


class StagedQuickCommits(StagedFault):
    name = "staged-quick-commits"
    summary = "two commits in quick succession, the first bad: production ends on the second, never the first"
    desired_state_valid = True
    good_image = apps.NEW_IMAGE

    def inject(self, ctx: FaultContext) -> None:
        rc1 = web(image=apps.NEVER_READY_IMAGE, behavior="never-ready")
        bad = self.push(ctx, "Roll out app 2.0.0-rc1", rc1, bad=True)
        kube = ctx.kube

        def entered() -> bool:
            """The first commit really entered: the head (stages) or production's source (Flux alone) fetched it."""
            if self.staged(ctx):
                return bad in (staged_status(kube, ctx).get("seenRevisions") or [])
            src = kube.get(GIT_REPOSITORY.api_version, GIT_REPOSITORY.kind, ctx.app, ctx.flux_namespace)
            return artifact_revision(src or {}) == bad

        wait_until(entered, 60, f"{short(bad)} to be fetched", interval=0.05)
        good = self.push(ctx, "Roll out app 2.0.0 (fixes rc1)", web(image=apps.NEW_IMAGE), bad=False)
        ctx.state["proof"] = f"{short(bad)} (pods never Ready) was fetched, then {short(good)} pushed at once"

    def bad_object(self, obj: dict[str, Any]) -> bool:
        return never_ready(obj)

    def visible(self, ctx: FaultContext) -> Check:
        """Under stages the canary's failed pod-ready on the first commit; Flux alone shows nothing reliably (the
        second commit may overtake the first), so the proof is that the first was fetched before the second."""
        return self.failed_in(ctx, "canary", POD_READY) if self.staged(ctx) else super().visible(ctx)

    def reporting(self, ctx: FaultContext) -> Check:
        check = self._stages_at(ctx, ctx.head, ("production",))
        return check & self._pipeline_holds(ctx) if self.staged(ctx) else check
