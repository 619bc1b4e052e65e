"""Revert records on disk and the Reverter that undoes them last-first, with fake kube objects and a real
GitOps repository in a tmp directory; runs looked up by id or path. Undoing reports problems, never raises."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from clusters.gitops import GitOpsRepo
from clusters.model import Cluster
from fluxmodel.annotations import REQUESTED_AT
from foundation.errors import HarnessError, UserError
from injectors.records import Reverter, RevertRecord, cluster_locator, pending_records, revert_run
from kubeapi import NotFound, TemporaryApiError

DEPLOYMENT = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop"}}


class FakeKube:
    """Records delete/apply/merge_patch calls; `failing` maps an op to the exception it raises."""

    def __init__(self, failing: dict[str, BaseException] | None = None) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.failing = failing or {}

    def _call(self, op: str, *args: Any) -> None:
        self.calls.append((op, *args))
        if op in self.failing:
            raise self.failing[op]

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> bool:
        self._call("delete", api_version, kind, name, namespace)
        return True

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        self._call("apply", obj)
        return obj

    def merge_patch(
        self, api_version: str, kind: str, name: str, namespace: str | None, patch: dict[str, Any]
    ) -> dict[str, Any]:
        self._call("merge_patch", api_version, kind, name, namespace, patch)
        return {}


class FakeGit:
    def __init__(self, error: Exception | None = None) -> None:
        self.commits: list[tuple[str, dict[str, str], list[str]]] = []
        self.error = error

    def commit(self, message: str, write: dict[str, str] | None = None, delete: list[str] | None = None) -> str:
        self.commits.append((message, dict(write or {}), list(delete or [])))
        if self.error is not None:
            raise self.error
        return "main@sha1:" + "0" * 40


def locator(tmp_path: Path, local_root: str | None = None) -> dict[str, Any]:
    return {
        "name": "dev",
        "provider": "local" if local_root else "kind",
        "kubeconfig": str(tmp_path / "kubeconfig"),
        "context": None,
        "git": {"bare": str(tmp_path / "git" / "gitops.git"), "work": str(tmp_path / "git" / "work"), "url": "x"},
        "local_root": local_root,
    }


def record(tmp_path: Path, *steps: dict[str, Any], local_root: str | None = None) -> RevertRecord:
    rec = RevertRecord(
        tmp_path / "run" / "revert" / "selector-change.json", "selector-change", locator(tmp_path, local_root)
    )
    for step in steps:
        rec.add(**step)
    return rec


def on_disk(rec: RevertRecord) -> dict[str, Any]:
    return dict(json.loads(rec.path.read_text()))


# -- the record file -------------------------------------------------------------------------------------


def test_add_persists_every_step_before_the_change(tmp_path: Path) -> None:
    rec = record(tmp_path)
    assert not rec.path.exists()
    rec.add("git-restore", files={"apps/web.yaml": "old\n"}, message="Revert selector-change")
    assert on_disk(rec)["steps"] == [
        {"op": "git-restore", "files": {"apps/web.yaml": "old\n"}, "message": "Revert selector-change"}
    ]
    rec.add("delete", apiVersion="v1", kind="Namespace", name="shop")
    assert [s["op"] for s in on_disk(rec)["steps"]] == ["git-restore", "delete"]
    assert sorted(p.name for p in rec.path.parent.iterdir()) == ["selector-change.json"]  # no temporary left


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    rec = record(tmp_path, {"op": "release", "component": "gitserver"})
    rec.reverted = True
    rec.save()
    loaded = RevertRecord.load(rec.path)
    assert (loaded.path, loaded.fault, loaded.cluster, loaded.steps, loaded.reverted) == (
        rec.path,
        "selector-change",
        rec.cluster,
        [{"op": "release", "component": "gitserver"}],
        True,
    )


def test_load_keeps_the_creation_time(tmp_path: Path) -> None:
    rec = record(tmp_path)
    rec.created = 1_000_000.0
    rec.save()
    assert RevertRecord.load(rec.path).created == 1_000_000.0


@pytest.mark.parametrize("content", ["{half", ""])
def test_an_unreadable_record_is_a_user_error_naming_it(tmp_path: Path, content: str) -> None:
    path = tmp_path / "broken.json"
    path.write_text(content)
    with pytest.raises(UserError, match=rf"^{path}: not a readable revert record \("):
        RevertRecord.load(path)
    with pytest.raises(UserError, match=rf"^{tmp_path / 'missing.json'}: not a readable revert record"):
        RevertRecord.load(tmp_path / "missing.json")


@pytest.mark.parametrize("content", ["{}", "[]", '{"fault": "x"}'])
def test_a_record_of_the_wrong_shape_is_a_user_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "odd.json"
    path.write_text(content)
    with pytest.raises(UserError) as info:
        RevertRecord.load(path)
    assert str(info.value) == f"{path}: not a revert record (expected an object with `fault` and `cluster`)"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"cluster": {}}, "cluster.kubeconfig: expected a path"),
        ({"cluster": {"kubeconfig": "k", "git": "repo"}}, "cluster.git: expected an object with bare, work and url"),
        (
            {"cluster": {"kubeconfig": "k", "git": {"bare": "b", "work": "w"}}},
            "cluster.git: expected an object with bare, work and url",
        ),
        ({"steps": {"op": "delete"}}, "steps: expected a list"),
        ({"reverted": "false"}, "reverted: expected true or false"),
        ({"created": "yesterday"}, "created: expected a time in seconds"),
    ],
)
def test_a_record_that_cannot_be_undone_is_a_user_error_naming_it(
    tmp_path: Path, change: dict[str, Any], problem: str
) -> None:
    rec = record(tmp_path, {"op": "apply", "object": DEPLOYMENT})
    rec.path.write_text(json.dumps({**on_disk(rec), **change}))
    with pytest.raises(UserError) as info:
        RevertRecord.load(rec.path)
    assert str(info.value) == f"{rec.path}: not a usable revert record ({problem})"


def test_cluster_locator_reaches_the_cluster_again(tmp_path: Path) -> None:
    git = GitOpsRepo(tmp_path / "gitops.git", tmp_path / "work", "http://127.0.0.1:1/gitops.git")
    local = Cluster("dev", "local", tmp_path / "clusters" / "dev" / "kubeconfig", git, context="dev")
    found = cluster_locator(local)
    assert found["git"] == {"bare": str(git.bare), "work": str(git.work), "url": git.url}
    assert found["local_root"] == str(tmp_path / "clusters" / "dev")
    assert (found["kubeconfig"], found["context"], found["provider"]) == (str(local.kubeconfig), "dev", "local")
    assert cluster_locator(Cluster("k", "kind", tmp_path / "kubeconfig", git))["local_root"] is None


# -- the Reverter ----------------------------------------------------------------------------------------


def test_steps_are_undone_last_first(tmp_path: Path) -> None:
    kube, git = FakeKube(), FakeGit()
    rec = record(
        tmp_path,
        {"op": "git-restore", "files": {"apps/web.yaml": "old\n", "apps/new.yaml": None}, "message": "Revert it"},
        {"op": "apply", "object": DEPLOYMENT},
        {"op": "delete", "apiVersion": "v1", "kind": "Namespace", "name": "shop"},
        {"op": "reconcile", "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization"}
        | {"name": "app", "namespace": "flux-system"},
    )
    assert Reverter(rec, kube=kube, git=git).run() == []  # type: ignore[arg-type]
    assert [c[0] for c in kube.calls] == ["merge_patch", "delete", "apply"]
    patch = kube.calls[0]
    assert patch[1:5] == ("kustomize.toolkit.fluxcd.io/v1", "Kustomization", "app", "flux-system")
    assert set(patch[5]["metadata"]["annotations"]) == {REQUESTED_AT}
    assert kube.calls[1] == ("delete", "v1", "Namespace", "shop", None)
    assert kube.calls[2] == ("apply", DEPLOYMENT)
    assert git.commits == [("Revert it", {"apps/web.yaml": "old\n"}, ["apps/new.yaml"])]
    assert rec.reverted
    saved = on_disk(rec)
    assert saved["reverted"] is True and all(s["done"] for s in saved["steps"])


@pytest.mark.process
def test_git_restore_writes_back_previous_contents_and_deletes_new_files(tmp_path: Path) -> None:
    repo = GitOpsRepo.create(tmp_path / "git", "http://127.0.0.1:1/gitops.git", {"apps/web.yaml": "good\n"})
    rec = record(
        tmp_path,
        {"op": "git-restore", "files": {"apps/web.yaml": "good\n", "apps/fault.yaml": None}, "message": "Revert x"},
    )
    repo.commit("Fault", write={"apps/web.yaml": "broken\n", "apps/fault.yaml": "kind: Job\n"})
    assert Reverter(rec, kube=FakeKube(), git=repo).run() == []  # type: ignore[arg-type]
    assert repo.read("apps/web.yaml") == "good\n" and repo.read("apps/fault.yaml") is None
    assert rec.reverted


def test_a_failing_step_is_reported_and_the_others_still_run(tmp_path: Path) -> None:
    kube = FakeKube({"delete": TemporaryApiError(503, "ServiceUnavailable", "etcd is down")})
    git = FakeGit()
    rec = record(
        tmp_path,
        {"op": "git-restore", "files": {"a.yaml": "a\n"}},
        {"op": "delete", "apiVersion": "v1", "kind": "Namespace", "name": "shop"},
        {"op": "apply", "object": DEPLOYMENT},
    )
    problems = Reverter(rec, kube=kube, git=git).run()  # type: ignore[arg-type]
    assert problems == ["delete: 503 ServiceUnavailable: etcd is down"]
    assert [c[0] for c in kube.calls] == ["apply", "delete"] and git.commits[0][0] == "Revert"
    assert not rec.reverted
    assert [s.get("done", False) for s in on_disk(rec)["steps"]] == [True, False, True]
    assert on_disk(rec)["reverted"] is False

    # A second run (from the file, as `resilience revert` does) retries only what is left.
    again, kube2, git2 = RevertRecord.load(rec.path), FakeKube(), FakeGit()
    assert Reverter(again, kube=kube2, git=git2).run() == []  # type: ignore[arg-type]
    assert kube2.calls == [("delete", "v1", "Namespace", "shop", None)] and git2.commits == []
    assert again.reverted and on_disk(again)["reverted"] is True


def test_progress_is_saved_after_every_step_so_an_interrupted_revert_resumes(tmp_path: Path) -> None:
    kube = FakeKube({"apply": KeyboardInterrupt()})  # Ctrl-C while the second undo runs
    rec = record(
        tmp_path,
        {"op": "apply", "object": DEPLOYMENT},
        {"op": "delete", "apiVersion": "v1", "kind": "Namespace", "name": "shop"},
    )
    with pytest.raises(KeyboardInterrupt):
        Reverter(rec, kube=kube, git=FakeGit()).run()  # type: ignore[arg-type]
    assert [s.get("done", False) for s in on_disk(rec)["steps"]] == [False, True]


@pytest.mark.parametrize(
    ("step", "problem"),
    [
        (
            {"op": "release", "component": "gitserver"},
            "release: cannot release gitserver: the cluster has no local supervisor",
        ),
        ({"op": "teleport"}, "teleport: unknown revert op 'teleport'"),
        ({"op": "delete", "apiVersion": "v1", "kind": "Namespace"}, "delete: missing field 'name'"),
        ({"op": "git-restore"}, "git-restore: missing field 'files'"),
        ({"op": "git-restore", "files": ["a.yaml"]}, "git-restore: files: expected an object of path -> previous"),
        ({"op": "git-restore", "files": {"a.yaml": 1}}, "git-restore: files: expected an object of path -> previous"),
        ({"op": "delete", "apiVersion": "v1", "kind": "Namespace", "name": 5}, "delete: name: expected a non-empty"),
        ({"op": "delete", "apiVersion": "v1", "kind": "Pod", "name": "p", "namespace": 3}, "delete: namespace: "),
        ({"op": "apply", "object": "kind: Pod"}, "apply: object: expected a Kubernetes object"),
        ({"op": ["delete"]}, "step 1: no `op` saying what to undo"),
        ({"files": {}}, "step 1: no `op` saying what to undo"),
    ],
)
def test_steps_that_cannot_be_undone_are_problems_not_exceptions(
    tmp_path: Path, step: dict[str, Any], problem: str
) -> None:
    rec = record(tmp_path, {"op": "apply", "object": DEPLOYMENT})
    rec.steps.insert(0, step)
    kube = FakeKube()
    (found,) = Reverter(rec, kube=kube, git=FakeGit()).run()  # type: ignore[arg-type]
    assert found.startswith(problem)
    assert [c[0] for c in kube.calls] == ["apply"]
    assert not rec.reverted


@pytest.mark.parametrize("step", ["git-restore", 7, None, ["op", "delete"]])
def test_a_step_that_is_not_an_object_is_a_problem_and_the_others_still_run(tmp_path: Path, step: Any) -> None:
    rec = record(tmp_path, {"op": "apply", "object": DEPLOYMENT})
    rec.steps.insert(0, step)
    rec.steps.append({"op": "delete", "apiVersion": "v1", "kind": "Namespace", "name": "shop"})
    kube = FakeKube()
    problems = Reverter(rec, kube=kube, git=FakeGit()).run()  # type: ignore[arg-type]
    assert problems == [f"step 1: expected an object, got {type(step).__name__}"]
    assert [c[0] for c in kube.calls] == ["delete", "apply"]
    assert on_disk(rec)["steps"][0] == step and not on_disk(rec)["reverted"]


def test_release_through_an_unreachable_supervisor_is_a_problem(tmp_path: Path) -> None:
    root = tmp_path / "clusters" / "gone"
    rec = record(tmp_path, {"op": "release", "component": "gitserver"}, local_root=str(root))
    (problem,) = Reverter(rec, kube=FakeKube(), git=FakeGit()).run()  # type: ignore[arg-type]
    assert problem.startswith("release: cluster supervisor not reachable (")


def test_a_deleted_object_that_is_already_gone_and_other_api_errors(tmp_path: Path) -> None:
    kube = FakeKube({"merge_patch": NotFound(404, "NotFound", 'kustomizations "app" not found')})
    rec = record(tmp_path, {"op": "reconcile", "apiVersion": "v", "kind": "K", "name": "app", "namespace": "f"})
    assert Reverter(rec, kube=kube, git=FakeGit()).run() == ['reconcile: 404 NotFound: kustomizations "app" not found']  # type: ignore[arg-type]


def test_a_git_failure_is_a_problem(tmp_path: Path) -> None:
    git = FakeGit(HarnessError("git push --quiet origin HEAD:refs/heads/main failed in /x: rejected"))
    rec = record(tmp_path, {"op": "git-restore", "files": {"a": "b"}})
    assert Reverter(rec, kube=FakeKube(), git=git).run() == [  # type: ignore[arg-type]
        "git-restore: git push --quiet origin HEAD:refs/heads/main failed in /x: rejected"
    ]


def test_a_user_error_from_git_is_a_problem_too(tmp_path: Path) -> None:
    git = FakeGit(UserError("../x: path escapes the GitOps repository"))
    rec = record(tmp_path, {"op": "git-restore", "files": {"../x": "b"}}, {"op": "apply", "object": DEPLOYMENT})
    kube = FakeKube()
    problems = Reverter(rec, kube=kube, git=git).run()  # type: ignore[arg-type]
    assert problems == ["git-restore: ../x: path escapes the GitOps repository"]
    assert kube.calls == [("apply", DEPLOYMENT)]


# -- runs ------------------------------------------------------------------------------------------------


def test_an_unknown_run_is_a_user_error_naming_where_runs_are(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError) as info:
        pending_records("20260101-000000-1")
    assert str(info.value) == "no run '20260101-000000-1': pass a run directory or an id under runs/"
    (tmp_path / "a-file").write_text("")
    with pytest.raises(UserError, match=r"^no run 'a-file'"):
        revert_run("a-file")


def test_pending_records_by_id_or_path_oldest_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    revert = tmp_path / "runs" / "r1" / "revert"
    revert.mkdir(parents=True)
    for age, name in ((30, "b.json"), (10, "c.json"), (20, "a.json")):
        (revert / name).write_text("{}")
        os.utime(revert / name, (1_000_000 - age, 1_000_000 - age))
    (revert / "notes.txt").write_text("")
    assert [p.name for p in pending_records("r1")] == ["b.json", "a.json", "c.json"]
    by_path = pending_records(str(tmp_path / "runs" / "r1"))
    assert [p.resolve() for p in by_path] == [p.resolve() for p in pending_records("r1")]
    (tmp_path / "runs" / "empty").mkdir()
    assert pending_records("empty") == []
    with pytest.raises(UserError, match=r"^no run ''"):
        pending_records("")


def test_a_run_without_records_is_nothing_to_revert_not_a_success(tmp_path: Path) -> None:
    (tmp_path / "run" / "revert").mkdir(parents=True)
    with pytest.raises(UserError) as info:
        revert_run(str(tmp_path / "run"))
    assert str(info.value) == (
        f"nothing to revert: no revert records in {tmp_path / 'run' / 'revert'}; "
        "pass the run directory a chaos run printed"
    )


def kubeconfig(path: Path) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1", "insecure-skip-tls-verify": True}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "c",
    }
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.process
def test_revert_run_reverts_each_pending_record_once(tmp_path: Path) -> None:
    repo = GitOpsRepo.create(tmp_path / "git", "http://127.0.0.1:1/gitops.git", {"apps/web.yaml": "good\n"})
    repo.commit("Fault", write={"apps/web.yaml": "broken\n"})
    kubeconfig(tmp_path / "kubeconfig")
    run_dir = tmp_path / "run"
    rec = record(tmp_path, {"op": "git-restore", "files": {"apps/web.yaml": "good\n"}, "message": "Revert"})
    done = RevertRecord(run_dir / "revert" / "done.json", "x", locator(tmp_path), reverted=True)
    done.save()
    assert revert_run(str(run_dir)) == (1, [])
    assert repo.read("apps/web.yaml") == "good\n"
    assert RevertRecord.load(rec.path).reverted
    assert revert_run(str(run_dir)) == (0, [])


def test_revert_run_reports_an_unreachable_cluster_naming_the_record_once(tmp_path: Path) -> None:
    rec = record(tmp_path, {"op": "apply", "object": DEPLOYMENT})  # its kubeconfig does not exist
    count, problems = revert_run(str(tmp_path / "run"))
    assert count == 1
    (problem,) = problems
    assert problem.startswith("selector-change.json: cluster unreachable (")
    assert problem.count("selector-change.json") == 1
    assert str(tmp_path / "kubeconfig") in problem
    assert not RevertRecord.load(rec.path).reverted


@pytest.mark.process
def test_a_corrupt_record_does_not_keep_the_others_from_being_reverted(tmp_path: Path) -> None:
    repo = GitOpsRepo.create(tmp_path / "git", "http://127.0.0.1:1/gitops.git", {"apps/web.yaml": "good\n"})
    repo.commit("Fault", write={"apps/web.yaml": "broken\n"})
    kubeconfig(tmp_path / "kubeconfig")
    revert = tmp_path / "run" / "revert"
    rec = record(tmp_path, {"op": "git-restore", "files": {"apps/web.yaml": "good\n"}, "message": "Revert"})
    corrupt, dangling, odd = revert / "a-corrupt.json", revert / "b-dangling.json", revert / "c-odd.json"
    corrupt.write_text('{"fault": "controller-crash", "clus')
    dangling.symlink_to(tmp_path / "gone.json")
    odd.write_text(json.dumps({"fault": "x", "cluster": {"kubeconfig": "k"}}))
    for age, path in enumerate((rec.path, corrupt, dangling, odd)):  # the good record is the oldest
        os.utime(path, (1_000_000 + age, 1_000_000 + age), follow_symlinks=False)
    count, problems = revert_run(str(tmp_path / "run"))
    assert count == 1
    assert repo.read("apps/web.yaml") == "good\n" and RevertRecord.load(rec.path).reverted
    assert [p.split(": ")[0] for p in problems] == [str(corrupt), str(dangling), str(odd)]
    assert problems[0].startswith(f"{corrupt}: not a readable revert record (")
    assert problems[2] == f"{odd}: not a usable revert record (cluster.git: expected an object with bare, work and url)"


def test_revert_command_exit_codes(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """0: all reverted (or were already); 2: no run, or nothing to revert; 3: a record or step left a problem."""
    from resilience.cli import main

    run_dir = tmp_path / "run"
    (run_dir / "revert").mkdir(parents=True)
    assert main(["revert", str(run_dir)]) == 2
    assert capsys.readouterr().err == (
        f"resilience: error: nothing to revert: no revert records in {run_dir / 'revert'}; "
        "pass the run directory a chaos run printed\n"
    )
    RevertRecord(run_dir / "revert" / "done.json", "x", locator(tmp_path), reverted=True).save()
    assert main(["revert", str(run_dir)]) == 0
    assert capsys.readouterr().out == f"nothing left to revert in {run_dir}: every record was reverted already\n"
    (run_dir / "revert" / "torn.json").write_text("{")
    assert main(["revert", str(run_dir)]) == 3
    out, err = capsys.readouterr()
    assert out == f"reverted 0 record(s) of {run_dir}, 1 problem(s)\n"
    first, last = err.splitlines()
    assert first.startswith(f"resilience: revert: {run_dir / 'revert' / 'torn.json'}: not a readable revert record")
    assert last == (
        f"resilience: error: 1 problem(s) left; the records keep what failed: fix the cause and run "
        f"`resilience revert {run_dir}` again"
    )
    assert main(["revert", ""]) == 2
    assert capsys.readouterr().err == "resilience: error: no run '': pass a run directory or an id under runs/\n"
