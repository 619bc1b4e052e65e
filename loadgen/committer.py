"""The load's commits, made by a small helper process: from the gevent-patched load process every git command
would fork the whole process (gevent's subprocess forks; plain Python's uses vfork), four times per delivery.

    python -m loadgen.committer BARE WORK URL

reads one JSON request per line on stdin and answers one line on stdout:

    {"commit": "message", "write": {"path": "text"}}   ->  {"revision": "main@sha1:..."}
    {"includes": ["main@sha1:later", "main@sha1:mine"]} ->  {"includes": true}
    anything that fails                                 ->  {"error": "..."}

Commits go through clusters.gitops.GitOpsRepo (its file lock serialises them with the harness's own).
`Committer` is the load process's end: one request at a time, and ancestry answered without asking when both
revisions are commits it made itself (their order is known).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

from clusters.gitops import GitOpsRepo
from foundation.errors import HarnessError


def answer(repo: GitOpsRepo, request: dict[str, Any]) -> dict[str, Any]:
    try:
        if "commit" in request:
            return {"revision": repo.commit(str(request["commit"]), write=request.get("write") or {})}
        if "includes" in request:
            revision, commit = request["includes"]
            return {"includes": repo.includes(str(revision), str(commit))}
        return {"error": f"unknown request {sorted(request)}"}
    except Exception as e:  # the caller records it as a failed delivery
        return {"error": f"{type(e).__name__}: {e}"}


def serve(repo: GitOpsRepo, requests: IO[str], answers: IO[str]) -> None:
    for line in requests:
        if line.strip():
            answers.write(json.dumps(answer(repo, json.loads(line))) + "\n")
            answers.flush()


class Committer:
    """The helper process, and the order of the commits it made (to answer ancestry among them at once)."""

    def __init__(self, git: dict[str, str]):
        argv = [sys.executable, "-m", "loadgen.committer", git["bare"], git["work"], git["url"]]
        # A session of its own: the SIGTERM that stops the load process's group must not cut a commit in half.
        # It ends when its stdin does (the load process closed it, or died).
        self.process = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1, start_new_session=True
        )
        self._lock = threading.Lock()
        self._order: dict[str, int] = {}
        self._includes: dict[tuple[str, str], bool] = {}

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        with self._lock:
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
            line = self.process.stdout.readline()
        if not line:
            raise HarnessError(f"the committer exited with {self.process.poll()}")
        reply: dict[str, Any] = json.loads(line)
        if "error" in reply:
            raise HarnessError(str(reply["error"]))
        return reply

    def commit(self, message: str, write: dict[str, str] | None = None) -> str:
        revision = str(self._ask({"commit": message, "write": write or {}})["revision"])
        self._order.setdefault(revision, len(self._order))
        return revision

    def includes(self, revision: str, commit: str) -> bool:
        """GitOpsRepo.includes, answered locally for two commits of this process (the history is linear)."""
        if revision == commit:
            return True
        if revision in self._order and commit in self._order:
            return self._order[revision] >= self._order[commit]
        key = (revision, commit)
        if key not in self._includes:
            self._includes[key] = bool(self._ask({"includes": [revision, commit]})["includes"])
        return self._includes[key]

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


def main(argv: list[str] | None = None) -> int:
    bare, work, url = argv or sys.argv[1:]
    serve(GitOpsRepo(Path(bare), Path(work), url), sys.stdin, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
