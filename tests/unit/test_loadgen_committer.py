"""The load's commits go through a helper process (no gevent there, so git is spawned cheaply): commits land in the
repository in order, ancestry among its own commits is answered at once, others' by git, failures as errors."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from clusters.gitops import GitOpsRepo
from foundation.errors import HarnessError
from loadgen.committer import Committer, answer, serve


@pytest.fixture
def repo(tmp_path: Path) -> GitOpsRepo:
    return GitOpsRepo.create(tmp_path / "git", "http://git.invalid/gitops.git", {"README.md": "x\n"})


def paths(repo: GitOpsRepo) -> dict[str, str]:
    return {"bare": str(repo.bare), "work": str(repo.work), "url": repo.url}


@pytest.mark.process
def test_the_helper_answers_one_line_per_request(repo: GitOpsRepo) -> None:
    requests = io.StringIO(
        json.dumps({"commit": "a: deliver 1", "write": {"apps/a/x.yaml": "x: 1\n"}})
        + "\n\n"
        + json.dumps({"includes": ["main@sha1:0000", "main@sha1:0000"]})
        + "\n"
        + json.dumps({"push": 1})
        + "\n"
    )
    answers = io.StringIO()
    serve(repo, requests, answers)
    first, second, third = (json.loads(line) for line in answers.getvalue().splitlines())
    assert first == {"revision": repo.revision()} and repo.read("apps/a/x.yaml") == "x: 1\n"
    assert second == {"includes": True}
    assert third == {"error": "unknown request ['push']"}
    assert "error" in answer(repo, {"commit": "escape", "write": {"../outside.yaml": "x"}})


@pytest.mark.process
def test_commits_through_the_helper_and_ancestry_among_them_and_others(repo: GitOpsRepo) -> None:
    committer = Committer(paths(repo))
    try:
        first = committer.commit("a: deliver 1", write={"apps/a/x.yaml": "x: 1\n"})
        second = committer.commit("b: deliver 1", write={"apps/b/x.yaml": "x: 1\n"})
        assert repo.revision() == second and repo.includes(second, first)
        assert committer.includes(second, first) and not committer.includes(first, second)
        outside = repo.commit("the harness's own commit", write={"apps/c/x.yaml": "x: 1\n"})
        assert committer.includes(outside, first) and not committer.includes(first, outside)
        with pytest.raises(HarnessError, match="escapes the GitOps repository"):
            committer.commit("escape", write={"../outside.yaml": "x"})
    finally:
        committer.close()
    assert committer.process.returncode == 0
