"""Simulated teams: each owns an app (its Kustomization and path in the GitOps repository) and delivers to it.

Two groups: `same-source` teams share the faulted app's GitRepository (the usual monorepo: a dependsOn cycle
there stops kustomize-controller from enqueuing any of them, kustomize-controller#1712), `other-source` teams
have a GitRepository of their own on the same repository. A team's app is one ConfigMap; a delivery is a commit
of a new token into it, done when the Kustomization is Ready at that revision (or a later one holding it) and
the ConfigMap in the cluster holds the token.

The teams of a run are set up through the run's FaultContext, so its revert record removes them (and
`resilience revert` does after a crash); their Flux objects carry the run's recovery mode like the fault's own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from assertions.load_criterion import GROUPS, SAME_SOURCE
from assertions.load_profiles import LoadProfile
from assertions.steady import AtLeast, Check, kustomization_ready
from fluxmodel.annotations import reconcile_request
from fluxmodel.conditions import is_ready, is_stalled, last_applied_revision
from fluxmodel.kinds import GIT_REPOSITORY
from injectors import apps
from injectors.base import FaultContext
from kubeapi import Kube


class Repository(Protocol):
    """Where teams commit: clusters.gitops.GitOpsRepo, or the load process's loadgen.committer.Committer."""

    def commit(self, message: str, write: dict[str, str] | None = None) -> str: ...

    def includes(self, revision: str, commit: str) -> bool: ...


TOKEN_KEY = "delivery"  # noqa: S105 - the ConfigMap key a delivery writes, not a secret
SHORT = {SAME_SOURCE: "same", "other-source": "other"}


@dataclass(frozen=True)
class Team:
    """One team's app: names in Git and in the cluster."""

    name: str  # e.g. same-2: what reports and the blast radius name
    group: str
    kustomization: str  # the Flux Kustomization, in the Flux namespace
    source: str  # its GitRepository (the faulted app's for same-source teams)
    path: str  # its directory in the GitOps repository
    namespace: str  # where its ConfigMap lives

    @property
    def configmap(self) -> str:
        return f"team-{self.name}"

    def files(self, token: str) -> dict[str, str]:
        """The team's directory with `token` in its ConfigMap."""
        configmap = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": self.configmap, "namespace": self.namespace},
            "data": {TOKEN_KEY: token},
        }
        return {
            f"{self.path}/configmap.yaml": apps.dump(configmap),
            f"{self.path}/kustomization.yaml": apps.dump(apps.kustomization_file(["configmap.yaml"])),
        }

    def to_json(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Team:
        return cls(**{k: str(raw[k]) for k in ("name", "group", "kustomization", "source", "path", "namespace")})


def load_namespace(app: str) -> str:
    return f"{app}-load"


def plan(app: str, profile: LoadProfile) -> list[Team]:
    """The teams of one run of app `app`, named after it (so the run's isolation check covers their objects)."""
    namespace = load_namespace(app)
    teams = []
    for group in GROUPS:
        for index in range(1, profile.teams.get(group, 0) + 1):
            name = f"{SHORT[group]}-{index}"
            kustomization = f"{app}-load-{name}"
            source = app if group == SAME_SOURCE else kustomization
            teams.append(Team(name, group, kustomization, source, f"apps/{namespace}/{name}", namespace))
    return teams


def set_up(ctx: FaultContext, teams: list[Team]) -> str:
    """Namespace, one commit with every team's app, other-source teams' GitRepositories, the Kustomizations
    (decorated by the run's recovery mode); all recorded for the revert. Returns the revision to be Ready at."""
    for namespace in sorted({t.namespace for t in teams}):
        ctx.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    files: dict[str, str] = {}
    for team in teams:
        files.update(team.files("0"))
    revision = ctx.commit(f"Load: {len(teams)} teams beside {ctx.app}", write=files)
    for team in teams:
        if team.source != ctx.app:
            own = ctx.source()
            own["metadata"]["name"] = team.source
            ctx.apply(own)
        spec = {"sourceRef": {"kind": GIT_REPOSITORY.kind, "name": team.source}}
        ctx.apply(ctx.kustomization(team.kustomization, team.path, **spec))
    for source in sorted({t.source for t in teams}):
        ctx.kube.merge_patch(
            GIT_REPOSITORY.api_version, GIT_REPOSITORY.kind, source, ctx.flux_namespace, reconcile_request()
        )
    return revision


def ready(ctx: FaultContext, teams: list[Team], revision: str) -> Check:
    """Every team's Kustomization Ready at `revision` or later."""
    check: Check | None = None
    for team in teams:
        one = kustomization_ready(ctx.flux_namespace, team.kustomization, AtLeast(revision, ctx.cluster.git.includes))
        check = one if check is None else check & one
    assert check is not None, "a load profile has at least one team"
    return check


def token(sequence: int, salt: str) -> str:
    """What a delivery writes: its sequence number (a later delivery of the team supersedes it), made unique."""
    return f"{sequence}-{salt}"


def sequence_of(configmap: dict[str, Any] | None) -> int:
    """The sequence number of the delivery a team's ConfigMap in the cluster holds (0: the set-up's, or none)."""
    value = str(((configmap or {}).get("data") or {}).get(TOKEN_KEY) or "0")
    head = value.split("-", 1)[0]
    return int(head) if head.isdigit() else 0


def commit(team: Team, git: Repository, kube: Kube, flux_namespace: str, token: str) -> str:
    """One delivery's commit, then a reconcile request on the team's source (what a webhook receiver does)."""
    revision = git.commit(f"{team.name}: deliver {token}", write=team.files(token))
    kube.merge_patch(GIT_REPOSITORY.api_version, GIT_REPOSITORY.kind, team.source, flux_namespace, reconcile_request())
    return revision


def delivered(
    ks: dict[str, Any] | None, configmap: dict[str, Any] | None, sequence: int, revision: str, git: Repository
) -> bool:
    """Delivery number `sequence` (committed as `revision`) is done: the ConfigMap in the cluster holds it or a
    later one of the team (Flux applies the newest revision it fetched), and the Kustomization is Ready at that
    revision or a later one holding it."""
    if configmap is None or sequence_of(configmap) < sequence:
        return False
    if ks is None or not is_ready(ks) or is_stalled(ks):
        return False
    applied = last_applied_revision(ks)
    return applied is not None and (applied == revision or git.includes(applied, revision))
