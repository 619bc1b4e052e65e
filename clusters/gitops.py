"""The cluster's GitOps repository: a bare repository served to source-controller, written through a clone.

Faults are commits, so everything a scenario changes in Git goes through `GitOpsRepo.commit`, which returns
the new revision in Flux's `<branch>@sha1:<sha>` form for comparing with lastAppliedRevision.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from foundation.errors import HarnessError, UserError

BRANCH = "main"
_GIT_ENV = {
    "GIT_AUTHOR_NAME": "gitops-resilience",
    "GIT_AUTHOR_EMAIL": "harness@gitops-resilience.invalid",
    "GIT_COMMITTER_NAME": "gitops-resilience",
    "GIT_COMMITTER_EMAIL": "harness@gitops-resilience.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_TERMINAL_PROMPT": "0",
}


# (bare repository, ancestor, descendant) -> whether it is one; commits never change, so neither do answers.
_ANCESTRY: dict[tuple[str, str, str], bool] = {}


def _git(args: list[str], cwd: Path) -> str:
    git = shutil.which("git")
    if git is None:
        raise UserError("git not found on PATH: install git (the GitOps repository is managed with it)")
    env = {**os.environ, **_GIT_ENV, "HOME": str(cwd)}
    proc = subprocess.run([git, *args], cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise HarnessError(f"git {' '.join(args)} failed in {cwd}: {proc.stderr.strip()}")
    return proc.stdout.strip()


@dataclass(frozen=True)
class GitOpsRepo:
    """A bare repository (what the git server serves) and the working clone the harness commits from."""

    bare: Path
    work: Path
    url: str  # as source-controller reaches it

    @classmethod
    def create(cls, directory: Path, url: str, initial: Mapping[str, str]) -> GitOpsRepo:
        """Initialise the bare repository with one commit holding `initial` (path -> content)."""
        bare, work = directory / "gitops.git", directory / "work"
        bare.mkdir(parents=True)
        _git(["init", "--quiet", "--bare", f"--initial-branch={BRANCH}", str(bare)], directory)
        work.mkdir()
        _git(["init", "--quiet", f"--initial-branch={BRANCH}"], work)
        _git(["remote", "add", "origin", str(bare)], work)
        repo = cls(bare, work, url)
        repo.commit("Initial GitOps content", write=initial)
        return repo

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with (self.work.parent / ".gitops.lock").open("w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def commit(
        self,
        message: str,
        write: Mapping[str, str] | None = None,
        delete: list[str] | None = None,
    ) -> str:
        """Write and delete files, commit, push; returns Flux's revision string `main@sha1:<sha>`."""
        with self._locked():
            for rel, content in (write or {}).items():
                path = self._path(rel)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(content)
            for rel in delete or []:
                path = self._path(rel)
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink(missing_ok=True)
            _git(["add", "--all"], self.work)
            _git(["commit", "--quiet", "--allow-empty", "-m", message], self.work)
            _git(["push", "--quiet", "origin", f"HEAD:refs/heads/{BRANCH}"], self.work)
            return self.revision()

    def includes(self, revision: str, commit: str) -> bool:
        """Whether Flux revision `revision` has `commit` in its history (both `main@sha1:<sha>`): a later
        commit on the branch, another team's under load, still delivers it. Answers are kept (history is fixed)."""
        ancestor, head = commit.rpartition(":")[2], revision.rpartition(":")[2]
        if ancestor == head:
            return True
        key = (str(self.bare), ancestor, head)
        if key not in _ANCESTRY:
            git = shutil.which("git") or "git"
            proc = subprocess.run(
                [git, "merge-base", "--is-ancestor", ancestor, head], cwd=self.bare, capture_output=True
            )
            if proc.returncode not in (0, 1):  # an unknown commit: say no, and ask again next time
                return False
            _ANCESTRY[key] = proc.returncode == 0
        return _ANCESTRY[key]

    def read(self, rel: str) -> str | None:
        path = self._path(rel)
        return path.read_text() if path.is_file() else None

    def sha(self) -> str:
        return _git(["rev-parse", "HEAD"], self.work)

    def revision(self) -> str:
        """The head as Flux prints it in lastAppliedRevision."""
        return f"{BRANCH}@sha1:{self.sha()}"

    def restore(self, sha: str, message: str) -> str:
        """Commit the tree of an earlier revision on top of the branch (a revert that keeps history)."""
        with self._locked():
            _git(["read-tree", "-u", "--reset", sha], self.work)
            _git(["commit", "--quiet", "--allow-empty", "-m", message], self.work)
            _git(["push", "--quiet", "origin", f"HEAD:refs/heads/{BRANCH}"], self.work)
            return self.revision()

    def _path(self, rel: str) -> Path:
        path = (self.work / rel).resolve()
        if self.work.resolve() not in path.parents:
            raise UserError(f"{rel}: path escapes the GitOps repository")
        return path
