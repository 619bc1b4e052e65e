"""The cluster's GitOps repository: a bare repository served to source-controller, written through a worktree.

Faults are commits, so everything a scenario changes in Git goes through `GitOpsRepo.commit`, which returns
the new revision in Flux's `<branch>@sha1:<sha>` form for comparing with lastAppliedRevision. The working
tree is a `git worktree` of the bare repository, so a commit lands in what is served with no push (a local push
costs twice the commit's CPU, which counts at the load's two commits a second).
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
    """A bare repository (what the git server serves) and the worktree the harness commits from."""

    bare: Path
    work: Path
    url: str  # as source-controller reaches it

    @classmethod
    def create(cls, directory: Path, url: str, initial: Mapping[str, str]) -> GitOpsRepo:
        """Initialise the bare repository with one commit holding `initial` (path -> content), made from a
        scratch tree, and check its branch out as the worktree."""
        bare, work, seed = directory / "gitops.git", directory / "work", directory / "seed"
        bare.mkdir(parents=True)
        _git(["init", "--quiet", "--bare", f"--initial-branch={BRANCH}", str(bare)], directory)
        _write(seed, initial, [])
        tree = ["--git-dir", str(bare), "--work-tree", str(seed)]
        _git([*tree, "add", "--all"], directory)
        _git([*tree, "commit", "--quiet", "-m", "Initial GitOps content"], directory)
        shutil.rmtree(seed)
        (bare / "index").unlink()  # the scratch tree's; a bare repository has none
        _git(["--git-dir", str(bare), "worktree", "add", "--quiet", str(work), BRANCH], directory)
        return cls(bare, work, url)

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
        """Write and delete files and commit; returns Flux's revision string `main@sha1:<sha>`."""
        with self._locked():
            _write(self.work, write or {}, delete or [])
            _git(["add", "--all"], self.work)
            _git(["commit", "--quiet", "--allow-empty", "-m", message], self.work)
            return self._publish()

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
            return self._publish()

    def _publish(self) -> str:
        """The new head's revision; a clone of its own (a repository made before worktrees) pushes it first."""
        if (self.work / ".git").is_dir():
            _git(["push", "--quiet", "origin", f"HEAD:refs/heads/{BRANCH}"], self.work)
        return self.revision()

    def _path(self, rel: str) -> Path:
        return _inside(self.work, rel)


def _inside(root: Path, rel: str) -> Path:
    path = (root / rel).resolve()
    if root.resolve() not in path.parents:
        raise UserError(f"{rel}: path escapes the GitOps repository")
    return path


def _write(root: Path, write: Mapping[str, str], delete: list[str]) -> None:
    for rel, content in write.items():
        path = _inside(root, rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    for rel in delete:
        path = _inside(root, rel)
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
