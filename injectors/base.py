"""What a fault is: set up a workload, inject, prove it took effect, know when it is recovered, undo it.

Recovered means the same under every recovery mode: the app serves a good revision (`serving`, its workload only)
and Flux's status tells the truth about what runs (`reporting`), at once; after that the pipeline must take one
more good commit (`next_commit`).

Each scenario run gets its own app (name, namespace, path in Git, Flux objects), so runs never see each
other's objects. Every change goes through FaultContext, which writes the undo step to the revert record
before making the change.
"""

from __future__ import annotations

import secrets
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from assertions.steady import (
    AtLeast,
    Check,
    Revision,
    always,
    deployment_available,
    kustomization_ready,
    spec_matches,
)
from assertions.watch import Target
from clusters.model import Cluster
from fluxmodel.annotations import reconcile_request
from fluxmodel.kinds import GIT_REPOSITORY, HELM_RELEASE, KUSTOMIZATION, ObjectRef, flux_kind
from fluxmodel.signatures import Signature
from foundation.errors import HarnessError
from foundation.waiting import poll
from injectors import apps
from injectors.records import RevertRecord
from kubeapi import Forbidden, Invalid

Decorate = Callable[[dict[str, Any]], dict[str, Any]]


class RecoveryProcess(Protocol):
    """The recovery under test as a fault may touch it: faults of its own process (the stage controller killed)."""

    name: str

    def crash(self) -> int:
        """kill -9 its process and start it again, as a Deployment would; returns the killed pid."""
        ...

    def controller(self, component: str) -> str:
        """The process of Flux controller `component` that reconciles this mode's runs (its shard's, if it has one)."""
        ...

    def after_push(self, ctx: FaultContext) -> None:
        """Called after each commit of the run (a mode's push webhook)."""
        ...


# The pods of the common workload (web_app), which the app's Service would select.
WEB_PODS: Mapping[str, str] = {"app": "web"}

# Scenario Kustomizations: health-checked, with Flux's retry cadence short enough to measure but not instant.
KS_DEFAULTS: dict[str, Any] = {"interval": "5m", "retryInterval": "30s", "timeout": "20s", "wait": True}


@dataclass
class FaultContext:
    """One scenario run: the cluster, the run's own app, the revert record, the recovery mode's decorator."""

    cluster: Cluster
    record: RevertRecord
    app: str
    decorate: Decorate = field(default=lambda obj: obj)
    setup_revision: str | None = None
    state: dict[str, Any] = field(default_factory=dict)
    mode: str = "none"  # the recovery mode's name: a fault may set up what that mode needs (stages)
    recovery: RecoveryProcess | None = None

    @classmethod
    def new(
        cls,
        cluster: Cluster,
        record: RevertRecord,
        prefix: str,
        decorate: Decorate | None = None,
        mode: str = "none",
        recovery: RecoveryProcess | None = None,
    ) -> FaultContext:
        app = f"{prefix[:40]}-{secrets.token_hex(3)}"
        return cls(cluster, record, app, decorate or (lambda obj: obj), mode=mode, recovery=recovery)

    @property
    def namespace(self) -> str:
        """The app's namespace (created by the harness, outside Git, so pruning never takes user data)."""
        return self.app

    @property
    def flux_namespace(self) -> str:
        return self.cluster.bootstrap.flux_namespace

    @property
    def path(self) -> str:
        return f"apps/{self.app}"

    @property
    def kube(self) -> Any:
        return self.cluster.kube

    # -- changes, each recorded before it is made ---------------------------------------------------------
    def commit(self, message: str, write: Mapping[str, str] | None = None, delete: list[str] | None = None) -> str:
        """Commit to the GitOps repository; the record keeps every touched file's previous content."""
        touched = [*(write or {}), *(delete or [])]
        previous = {p: self.cluster.git.read(p) for p in touched}
        self.record.add("git-restore", files=previous, message=f"Revert: {message}")
        revision = self.cluster.git.commit(message, write=write, delete=delete)
        self.state["head"] = revision
        if self.recovery is not None:
            self.recovery.after_push(self)
        return revision

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create an object outside Git; the record deletes it on revert."""
        meta = obj["metadata"]
        self.record.add(
            "delete", apiVersion=obj["apiVersion"], kind=obj["kind"], name=meta["name"], namespace=meta.get("namespace")
        )
        return dict(self.kube.apply(obj))

    def create_namespace(self) -> None:
        self.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}})

    def source(self) -> dict[str, Any]:
        """The run's own GitRepository (same repository URL): pinning or breaking it touches no other run."""
        obj = self.cluster.bootstrap.git_repository(self.cluster.git.url)
        obj["metadata"]["name"] = self.app
        return self.decorate(obj)

    def kustomization(self, name: str, path: str, **spec: Any) -> dict[str, Any]:
        """A Flux Kustomization of the run's source, decorated by the recovery mode (not applied)."""
        body = {**KS_DEFAULTS, "sourceRef": {"kind": GIT_REPOSITORY.kind, "name": self.app}, **spec}
        wait = bool(body.pop("wait"))
        return self.decorate(self.cluster.bootstrap.kustomization(name, path, wait=wait, **body))

    def flux_kustomization(self, name: str, path: str, **spec: Any) -> dict[str, Any]:
        """Create a Flux Kustomization of the run's source outside Git (recorded for deletion)."""
        return self.apply(self.kustomization(name, path, **spec))

    def reconcile(self, ref: ObjectRef | None = None) -> None:
        """Ask Flux to act now: the run's GitRepository (so a new commit is fetched), then the object."""
        patch = reconcile_request()
        self.kube.merge_patch(GIT_REPOSITORY.api_version, GIT_REPOSITORY.kind, self.app, self.flux_namespace, patch)
        if ref is not None:
            kind = KUSTOMIZATION if ref.kind == KUSTOMIZATION.kind else HELM_RELEASE
            self.kube.merge_patch(kind.api_version, kind.kind, ref.name, ref.namespace, patch)

    def refused(self, obj: dict[str, Any], *fragments: str) -> str | None:
        """Server-side dry-run of `obj`: the API server's refusal (containing every fragment), or None."""
        try:
            self.kube.apply(obj, dry_run=True)
        except (Invalid, Forbidden) as e:
            if all(f in e.message for f in fragments):
                return f"{e.status} {e.reason}: {e.message}"
        return None

    def wait_refused(self, obj: dict[str, Any], *fragments: str, timeout: float = 15.0) -> str | None:
        """`refused`, retried while controllers catch up (e.g. a new ResourceQuota's usage being counted)."""
        return poll(lambda: self.refused(obj, *fragments), timeout)

    def prove(self, evidence: str | None, what: str) -> None:
        """Keep independent evidence that the fault is real (checked before it lands); HarnessError if none."""
        if evidence is None:
            raise HarnessError(f"the API server accepted what should be {what}: the fault would not be real")
        self.state["proof"] = evidence

    def controller(self, component: str) -> str:
        """The process of Flux controller `component` that reconciles this run (the recovery mode's shard, if any)."""
        return self.recovery.controller(component) if self.recovery is not None else component

    def kustomization_ref(self, name: str | None = None) -> ObjectRef:
        return ObjectRef(KUSTOMIZATION.kind, self.flux_namespace, name or self.app)

    def head(self) -> str:
        """The revision of the run's last commit (Flux's `main@sha1:...`)."""
        return str(self.state.get("head") or self.cluster.git.revision())


@dataclass(frozen=True)
class NextCommit:
    """One more good commit once recovered (files to write), and the check that says the pipeline took it."""

    message: str
    write: Mapping[str, str]
    taken: Check


def serves_spec(namespace: str, name: str, what: str, good: Callable[[dict[str, Any]], bool]) -> Check:
    """The Deployment `name` available with the spec of a good revision (`good`; `what` says which, as "at ...")."""
    return deployment_available(namespace, name) & spec_matches("apps/v1", "Deployment", namespace, name, what, good)


def serves_image(namespace: str, image: str, name: str = "web") -> Check:
    """The Deployment `name` available, running `image` (the revision Git holds)."""
    return serves_spec(namespace, name, f"at image {image}", lambda obj: apps.images(obj) == [image])


class Fault(ABC):
    """A fault of the catalog. Subclasses set the class attributes and implement setup/steady/inject."""

    name: ClassVar[str]
    family: ClassVar[str]
    summary: ClassVar[str]
    signature: ClassVar[Signature | None] = None
    # False when the fault leaves a bad desired state in Git: then any Ready revision (a rollback) recovers it,
    # and recovery only counts after Flux has shown the fault (before that, the old revision is still Ready).
    desired_state_valid: ClassVar[bool] = True
    # Seconds to wait for the fault's signature before calling the run invalid.
    prove_within: ClassVar[float] = 90.0
    # Labels of the pods that serve the app (under load, a Service selects them and its Ready endpoints are
    # counted); None when the app serves nothing (ConfigMaps only).
    serves: ClassVar[Mapping[str, str] | None] = None

    def runs_under(self, mode: str) -> bool:
        """Whether the fault means something under recovery `mode` (the stage controller only changes the faults
        written for stages, so the others are not run under it)."""
        return mode != "staged"

    def reached(self, ctx: FaultContext) -> Any | None:
        """An observer of the run's watch events whose `figure()` is the `reached` measurement (None: not measured;
        see assertions.reached)."""
        return None

    # True when the fault hits the cluster as a whole (a Flux controller, the source, the API server), not only
    # its own app: on a cluster shared by several workers it runs alone (clusters.faultlock, exclusive).
    touches_cluster: ClassVar[bool] = False

    @abstractmethod
    def setup(self, ctx: FaultContext) -> None:
        """Create the workload and its Flux objects (recorded for cleanup); steady() must then hold."""

    @abstractmethod
    def inject(self, ctx: FaultContext) -> None:
        """Make the fault happen (recording how to undo it first)."""

    def steady(self, ctx: FaultContext, revision: Revision) -> Check:
        """Steady state of this fault's workload; `revision` pins the Kustomization's applied revision."""
        return kustomization_ready(ctx.flux_namespace, ctx.app, revision) & deployment_available(ctx.namespace, "web")

    def target(self, ctx: FaultContext) -> ObjectRef:
        """The Flux object on which the signature shows."""
        return ctx.kustomization_ref()

    def visible(self, ctx: FaultContext) -> Check:
        """Proof of fault: the signature on the target, as the real controller reported it."""
        signature = self.signature
        if signature is None:
            return always()
        ref = self.target(ctx)
        api_version = flux_kind(ref.kind).api_version
        label = f"{ref} shows {signature.name}"

        def check(reader: Any) -> tuple[bool, str]:
            obj = reader.get(api_version, ref.kind, ref.name, ref.namespace)
            return (obj is not None and signature.matches(obj)), label

        return Check(label, check)

    def recovery_revision(self, ctx: FaultContext) -> Revision:
        """What Flux must report once recovered: the run's Git head (read at each check) or a later revision holding
        it (other teams commit on top under load); any revision when Git holds a bad desired state."""
        return AtLeast(ctx.head, ctx.cluster.git.includes) if self.desired_state_valid else None

    def serving(self, ctx: FaultContext) -> Check:
        """The app serves a good revision, its workload only: by default the Deployment `web` available. Faults whose
        change shows in a workload's spec check that spec: the one Git holds, or the last good one (any good one)
        when Git holds a bad desired state."""
        return deployment_available(ctx.namespace, "web")

    def reporting(self, ctx: FaultContext) -> Check:
        """Flux's status tells the truth about what runs: the run's Kustomization Ready=True at the recovery
        revision (a Kustomization has no remediation that could say otherwise honestly)."""
        return kustomization_ready(ctx.flux_namespace, ctx.app, self.recovery_revision(ctx))

    def recovered(self, ctx: FaultContext) -> Check:
        """Recovered (the TTR): serving and reporting at once; not overridden, so it means the same for every fault
        and every recovery mode."""
        return self.serving(ctx) & self.reporting(ctx)

    def next_commit(self, ctx: FaultContext) -> NextCommit:
        """One more good commit once recovered: a file no kustomization lists (nothing in the cluster changes), taken
        when the run's Kustomization is Ready at it or at a later revision holding it."""
        return NextCommit(
            f"Next commit after recovering {ctx.app}",
            {f"{ctx.path}/NEXT_COMMIT": f"{ctx.app}: the commit after recovery\n"},
            kustomization_ready(ctx.flux_namespace, ctx.app, AtLeast(ctx.head, ctx.cluster.git.includes)),
        )

    def announce(self, ctx: FaultContext) -> None:
        """Tell Flux a commit waits, as a webhook receiver would: the run's source only (Flux does the rest)."""
        ctx.reconcile()

    def after_proof(self, ctx: FaultContext) -> None:  # noqa: B027 - an optional hook
        """Called once the fault is proven: faults whose cause goes away (or is fixed in Git) do it here."""

    def targets(self, ctx: FaultContext) -> list[Target]:
        """What the timeline watches: Flux objects, the app's workloads, and Events."""
        return [
            Target(KUSTOMIZATION.api_version, KUSTOMIZATION.kind, ctx.flux_namespace),
            Target(GIT_REPOSITORY.api_version, GIT_REPOSITORY.kind, ctx.flux_namespace),
            Target(HELM_RELEASE.api_version, HELM_RELEASE.kind, ctx.namespace),
            Target("apps/v1", "Deployment", ctx.namespace),
            Target("v1", "Event", ctx.flux_namespace),
            Target("v1", "Event", ctx.namespace),
        ]

    def watched_refs(self, ctx: FaultContext) -> set[str]:
        return {str(self.target(ctx))}


def web_app(ctx: FaultContext, deployment: dict[str, Any] | None = None, **kustomize: Any) -> dict[str, str]:
    """Git files of the common workload: a Deployment `web` (app=web) under the run's path."""
    dep = deployment or apps.deployment("web", ctx.namespace, {"app": "web"})
    return {
        f"{ctx.path}/deployment.yaml": apps.dump(dep),
        f"{ctx.path}/kustomization.yaml": apps.dump(apps.kustomization_file(["deployment.yaml"], **kustomize)),
    }


def standard_setup(ctx: FaultContext, files: Mapping[str, str], path: str | None = None, **kustomization: Any) -> None:
    """Namespace and user data outside Git, the app in Git, its source and Kustomization (of `path`)."""
    ctx.create_namespace()
    for obj in apps.user_data(ctx.namespace):
        ctx.apply(obj)
    ctx.setup_revision = ctx.commit(f"Add app {ctx.app}", write=files)
    ctx.apply(ctx.source())
    ctx.flux_kustomization(ctx.app, path or ctx.path, **kustomization)
