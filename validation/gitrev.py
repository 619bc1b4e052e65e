"""Git plumbing for validate: the repository, the base revision, changed files, and trees of a revision.

A revision (or the staged index) is written into a temporary directory through a private index file
(`read-tree` + `checkout-index --prefix`), so the user's index, worktrees and refs are never touched and
the directory is removed on every exit path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from foundation.errors import UserError

STAGED = ":staged"


@dataclass(frozen=True)
class Base:
    """The revision to compare with: its commit and how it was chosen (for the summary line)."""

    commit: str
    description: str


def _git(repo: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["git", "-C", str(repo), *args],
            capture_output=True,
            encoding="utf-8",
            errors="surrogateescape",  # file names as os.walk spells them, whatever their bytes
            check=False,
            env={**os.environ, "GIT_LFS_SKIP_SMUDGE": "1", **(env or {})},
        )
    except OSError as e:
        raise UserError(f"git: cannot run ({e}); install git or pass --no-diff") from None


def repo_top(path: Path) -> Path:
    """The top of the git work tree containing `path`; UserError if there is none."""
    top = _toplevel(path)
    if top is None:
        raise UserError(
            f"{path}: not inside a git repository; run validate in a clone, or pass --no-diff to skip "
            "the immutable-field comparison"
        )
    return top


def find_top(path: Path) -> Path | None:
    """The top of the git work tree containing `path`, or None (not in one, or git is not installed)."""
    try:
        return _toplevel(path)
    except UserError:
        return None


def _toplevel(path: Path) -> Path | None:
    proc = _git(path if path.is_dir() else path.parent, "rev-parse", "--show-toplevel")
    return Path(proc.stdout.strip()).resolve() if proc.returncode == 0 else None


def _commit(top: Path, rev: str) -> str | None:
    proc = _git(top, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    return proc.stdout.strip() if proc.returncode == 0 else None


def resolve_base(top: Path, rev: str | None, *, staged: bool) -> Base | None:
    """The commit to compare with: `rev`, else HEAD when staged, else the upstream merge base, else HEAD~1.

    None when the repository has no commit to compare with yet (an unborn branch) and no rev was given.
    """
    if rev:
        commit = _commit(top, rev)
        if commit is None:
            raise UserError(
                f"--base {rev}: unknown revision, or not a commit, in {top}; pass a commit, branch or tag that exists"
            )
        return Base(commit, rev)
    if staged:
        head = _commit(top, "HEAD")
        return Base(head, "HEAD") if head else None
    upstream = _git(top, "rev-parse", "--abbrev-ref", "--symbolic-full-name", "@{upstream}")
    if upstream.returncode == 0:
        merge_base = _git(top, "merge-base", "HEAD", "@{upstream}")
        if merge_base.returncode == 0:
            return Base(merge_base.stdout.strip(), f"merge base with {upstream.stdout.strip()}")
    for candidate in ("HEAD~1", "HEAD"):
        commit = _commit(top, candidate)
        if commit:
            return Base(commit, candidate)
    return None


def changed_files(top: Path, base: Base, *, staged: bool) -> set[str]:
    """Paths (relative to top, posix) that differ between the base and the tree being validated."""
    args = ["diff", "--name-only", "--no-renames", "-z"]
    proc = _git(top, *args, *(["--cached"] if staged else []), base.commit, "--")
    if proc.returncode != 0:
        raise UserError(f"{top}: git diff against {base.description} failed: {proc.stderr.strip()}")
    names = {n for n in proc.stdout.split("\0") if n}
    if not staged:
        untracked = _git(top, "ls-files", "--others", "--exclude-standard", "-z")
        names |= {n for n in untracked.stdout.split("\0") if n}
    return names


@contextmanager
def checkout(top: Path, rev: str) -> Iterator[Path]:
    """A temporary directory holding the tree of `rev` (the index if rev is STAGED); always removed.

    TemporaryDirectory, not mkdtemp: its finalizer still removes it if a signal lands before the `with`.
    """
    with tempfile.TemporaryDirectory(prefix="resilience-validate-", ignore_cleanup_errors=True) as name:
        tmp = Path(name)
        index = tmp / "index"
        env = {"GIT_INDEX_FILE": str(index)}
        if rev == STAGED:
            real = _git(top, "rev-parse", "--git-path", "index").stdout.strip()
            real_path = Path(real) if Path(real).is_absolute() else top / real
            if real_path.exists():
                shutil.copyfile(real_path, index)
        else:
            proc = _git(top, "read-tree", rev, env=env)
            if proc.returncode != 0:
                raise UserError(f"--base {rev}: git read-tree failed: {proc.stderr.strip()}")
        tree = tmp / "tree"
        tree.mkdir()
        proc = _git(top, "checkout-index", "--all", "--force", f"--prefix={tree}/", env=env)
        if proc.returncode != 0:
            raise UserError(f"{top}: git checkout-index failed: {proc.stderr.strip()}")
        yield tree
