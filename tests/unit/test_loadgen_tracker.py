"""A delivery is done at the watch event that completed it: the ConfigMap holds the token and the Kustomization is
Ready at its revision or at a later one holding it (other teams commit on top). FakeKube plays Flux; the
repository's ancestry is a real one (GitOpsRepo.includes)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assertions.load_profiles import LoadProfile
from assertions.steady import AtLeast, kustomization_ready
from clusters.gitops import GitOpsRepo
from fluxmodel.conditions import is_ready
from fluxmodel.kinds import KUSTOMIZATION
from foundation.waiting import wait_until
from loadgen import teams
from loadgen.tracker import DeliveryTracker
from testsupport.fakekube import FakeKube

FLUX = "flux-system"
PROFILE = LoadProfile("light", {"same-source": 1, "other-source": 1})


@pytest.fixture
def repo(tmp_path: Path) -> GitOpsRepo:
    return GitOpsRepo.create(tmp_path / "git", "http://git.invalid/gitops.git", {"README.md": "x\n"})


def apply_token(kube: FakeKube, team: teams.Team, token: str) -> None:
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": team.configmap, "namespace": team.namespace},
            "data": {teams.TOKEN_KEY: token},
        }
    )


def report(kube: FakeKube, team: teams.Team, revision: str, ready: str = "True") -> None:
    condition = {"type": "Ready", "status": ready, "reason": "ReconciliationSucceeded", "message": ""}
    kube.merge_patch(
        KUSTOMIZATION.api_version,
        KUSTOMIZATION.kind,
        team.kustomization,
        FLUX,
        {"status": {"observedGeneration": 1, "lastAppliedRevision": revision, "conditions": [condition]}},
    )


def flux_applies(kube: FakeKube, team: teams.Team, token: str, revision: str) -> None:
    """What kustomize-controller does: apply the ConfigMap, then report the Kustomization Ready at the revision."""
    apply_token(kube, team, token)
    report(kube, team, revision)


@pytest.fixture
def world(repo: GitOpsRepo) -> Iterator[tuple[FakeKube, list[teams.Team], DeliveryTracker]]:
    kube = FakeKube()
    planned = teams.plan("web-1a2b3c", PROFILE)
    for team in planned:
        kube.add(
            {
                "apiVersion": KUSTOMIZATION.api_version,
                "kind": KUSTOMIZATION.kind,
                "metadata": {"name": team.kustomization, "namespace": FLUX},
            }
        )
    tracker = DeliveryTracker(kube, repo, planned, FLUX).start()  # type: ignore[arg-type]
    yield kube, planned, tracker
    tracker.stop()


def test_teams_are_named_after_the_run_and_same_source_teams_share_its_source() -> None:
    same, other = teams.plan("web-1a2b3c", PROFILE)
    assert (same.name, same.kustomization, same.source) == ("same-1", "web-1a2b3c-load-same-1", "web-1a2b3c")
    assert (other.name, other.source) == ("other-1", "web-1a2b3c-load-other-1")
    assert same.path == "apps/web-1a2b3c-load/same-1" and same.namespace == "web-1a2b3c-load"
    assert teams.Team.from_json(same.to_json()) == same


@pytest.mark.process
def test_a_delivery_is_done_when_the_token_is_applied_and_flux_is_ready_at_its_revision(
    repo: GitOpsRepo, world: Any
) -> None:
    kube, (same, _other), tracker = world
    setup = repo.commit("setup", write=same.files("0"))
    flux_applies(kube, same, "0", setup)
    revision = repo.commit("same-1: deliver 1", write=same.files("1"))
    pending = tracker.expect(same, 1, revision)
    report(kube, same, revision, ready="False")  # reconciling the revision
    wait_until(
        lambda: (
            not is_ready(
                tracker.cache.get(KUSTOMIZATION.api_version, KUSTOMIZATION.kind, same.kustomization, FLUX) or {}
            )
        ),
        5.0,
        "the tracker to see the Kustomization not Ready",
    )
    apply_token(kube, same, "1")  # the token in the cluster, not Ready yet: not delivered
    assert not pending.done.wait(0.3)
    before = time.monotonic()
    report(kube, same, revision)
    done_at = tracker.wait(pending, 5.0)
    assert done_at is not None and done_at >= before


@pytest.mark.process
def test_a_later_revision_holding_the_commit_delivers_it_an_older_one_does_not(repo: GitOpsRepo, world: Any) -> None:
    kube, (same, other), tracker = world
    older = repo.commit("other-1: deliver 1", write=other.files("1"))
    mine = repo.commit("same-1: deliver 1", write=same.files("1"))
    later = repo.commit("other-1: deliver 2", write=other.files("2"))
    pending = tracker.expect(same, 1, mine)
    flux_applies(kube, same, "1", older)  # the token is there, yet Flux reports a revision before the commit
    assert not pending.done.wait(0.3)
    flux_applies(kube, same, "1", later)
    assert tracker.wait(pending, 5.0) is not None
    assert repo.includes(later, mine) and not repo.includes(older, mine) and repo.includes(mine, mine)


@pytest.mark.process
def test_a_delivery_not_done_within_the_deadline_is_not_done(repo: GitOpsRepo, world: Any) -> None:
    _kube, (same, _other), tracker = world
    revision = repo.commit("same-1: deliver 1", write=same.files("1"))
    started = time.monotonic()
    assert tracker.wait(tracker.expect(same, 1, revision), 0.5) is None
    assert time.monotonic() - started >= 0.5


@pytest.mark.process
@pytest.mark.slow
def test_concurrent_events_complete_a_delivery_once(repo: GitOpsRepo, world: Any) -> None:
    kube, (same, _other), tracker = world
    revision = repo.commit("same-1: deliver 1", write=same.files("1"))
    pending = tracker.expect(same, 1, revision)
    flux_applies(kube, same, "1", revision)
    first = tracker.wait(pending, 5.0)
    threads = [threading.Thread(target=flux_applies, args=(kube, same, "1", revision)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    time.sleep(0.3)
    assert pending.done_at == first


@pytest.mark.process
def test_recovered_at_the_head_accepts_a_later_revision_holding_it(repo: GitOpsRepo) -> None:
    kube = FakeKube()
    head = repo.commit("the fault's fix", write={"apps/web/a.yaml": "a: 1\n"})
    later = repo.commit("a team's delivery on top", write={"apps/team/a.yaml": "a: 2\n"})
    kube.add(
        {
            "apiVersion": KUSTOMIZATION.api_version,
            "kind": KUSTOMIZATION.kind,
            "metadata": {"name": "web", "namespace": FLUX},
            "status": {
                "observedGeneration": 1,
                "lastAppliedRevision": later,
                "conditions": [{"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded"}],
            },
        }
    )
    assert kustomization_ready(FLUX, "web", AtLeast(head, repo.includes))(kube)[0]
    assert not kustomization_ready(FLUX, "web", head)(kube)[0]  # an exact revision stays exact
    newest = repo.commit("after what Flux applied", write={"apps/team/a.yaml": "a: 3\n"})
    ok, detail = kustomization_ready(FLUX, "web", AtLeast(lambda: newest, repo.includes))(kube)
    assert not ok and detail.endswith(f"at {later}, want {newest} or later")


@pytest.mark.process
def test_a_later_delivery_applied_first_completes_the_earlier_ones_too(repo: GitOpsRepo, world: Any) -> None:
    kube, (same, _other), tracker = world
    first = repo.commit("same-1: deliver 1", write=same.files(teams.token(1, "a")))
    second = repo.commit("same-1: deliver 2", write=same.files(teams.token(2, "b")))
    one, two = tracker.expect(same, 1, first), tracker.expect(same, 2, second)
    flux_applies(kube, same, teams.token(1, "a"), first)
    assert tracker.wait(one, 5.0) is not None and not two.done.wait(0.3)
    three = tracker.expect(same, 3, repo.commit("same-1: deliver 3", write=same.files(teams.token(3, "c"))))
    flux_applies(kube, same, teams.token(3, "c"), repo.revision())  # Flux fetched the newest: 2 and 3 at once
    assert tracker.wait(two, 5.0) is not None and tracker.wait(three, 5.0) == two.done_at
    assert teams.sequence_of({"data": {teams.TOKEN_KEY: "12-ab"}}) == 12 and teams.sequence_of(None) == 0
