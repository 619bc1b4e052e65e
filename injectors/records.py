"""Revert records: what it takes to undo a fault, on disk before the fault lands.

Every change a scenario makes (a Git commit, an object created, a component held down) first appends a step
to its record file, so `resilience revert RUN` can undo an interrupted or crashed run from the files alone.
Steps are undone last-first, each idempotently, and undoing never raises: a failed step is reported and the
next one still runs. Likewise a record that cannot be read or a step of the wrong shape is reported and every
other record and step is still undone.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clusters.gitops import GitOpsRepo
from clusters.local.layout import ClusterLayout
from clusters.local.lifecycle import LocalControl
from clusters.model import Cluster
from fluxmodel.annotations import reconcile_request
from foundation.errors import HarnessError, ResilienceError, UserError
from kubeapi import ApiError, Kube, connect

log = logging.getLogger(__name__)
RUNS_DIR = Path("runs")

# The record format: what each undo step needs besides `op`. "files" maps a path to its previous content (null:
# the file did not exist), "object" is a whole Kubernetes object; every other field is a non-empty string.
STEP_FIELDS: dict[str, tuple[str, ...]] = {
    "git-restore": ("files",),
    "delete": ("apiVersion", "kind", "name"),
    "apply": ("object",),
    "reconcile": ("apiVersion", "kind", "name", "namespace"),
    "release": ("component",),
}


def cluster_locator(cluster: Cluster) -> dict[str, Any]:
    """Enough to reach the cluster again from a record alone (after the harness process is gone)."""
    return {
        "name": cluster.name,
        "provider": cluster.provider,
        "kubeconfig": str(cluster.kubeconfig),
        "context": cluster.context,
        "git": {"bare": str(cluster.git.bare), "work": str(cluster.git.work), "url": cluster.git.url},
        "local_root": str(cluster.kubeconfig.parent) if cluster.provider == "local" else None,
    }


@dataclass
class RevertRecord:
    """The undo log of one scenario run, persisted after every change."""

    path: Path
    fault: str
    cluster: dict[str, Any]
    steps: list[dict[str, Any]] = field(default_factory=list)
    reverted: bool = False
    created: float = field(default_factory=time.time)

    def add(self, op: str, **fields: Any) -> None:
        """Record an undo step; call BEFORE making the change it undoes."""
        self.steps.append({"op": op, **fields})
        self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = {
            "fault": self.fault,
            "cluster": self.cluster,
            "steps": self.steps,
            "reverted": self.reverted,
            "created": self.created,
        }
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(body, indent=2) + "\n")
        tmp.replace(self.path)

    @classmethod
    def load(cls, path: Path) -> RevertRecord:
        """The record at path; UserError naming the file when it is unreadable or not shaped like a record
        (steps are checked one by one when undone, so one bad step does not keep the others from running)."""
        try:
            body = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise UserError(f"{path}: not a readable revert record ({e})") from e
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("fault"), str)
            or not isinstance(body.get("cluster"), dict)
        ):
            raise UserError(f"{path}: not a revert record (expected an object with `fault` and `cluster`)")
        problem = _record_problem(body)
        if problem:
            raise UserError(f"{path}: not a usable revert record ({problem})")
        return cls(
            path,
            body["fault"],
            body["cluster"],
            list(body.get("steps") or []),
            bool(body.get("reverted", False)),
            float(body.get("created") or time.time()),
        )


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def _record_problem(body: dict[str, Any]) -> str | None:
    """What in a record's body, beyond its steps, keeps it from being undone (None when nothing)."""
    cluster, git = body["cluster"], body["cluster"].get("git")
    if not _is_text(cluster.get("kubeconfig")):
        return "cluster.kubeconfig: expected a path"
    if not isinstance(git, dict) or not all(_is_text(git.get(k)) for k in ("bare", "work", "url")):
        return "cluster.git: expected an object with bare, work and url"
    for key in ("context", "local_root"):
        if cluster.get(key) is not None and not _is_text(cluster[key]):
            return f"cluster.{key}: expected a string or null"
    if body.get("steps") is not None and not isinstance(body["steps"], list):
        return "steps: expected a list"
    if not isinstance(body.get("reverted", False), bool):
        return "reverted: expected true or false"
    created = body.get("created")
    if created is not None and not (isinstance(created, int | float) and math.isfinite(created)):
        return "created: expected a time in seconds"
    return None


def step_problem(step: Any) -> str | None:
    """What keeps a step from being undone as written (None when it is well-formed)."""
    if not isinstance(step, dict):
        return f"expected an object, got {type(step).__name__}"
    op = step.get("op")
    if not _is_text(op):
        return "no `op` saying what to undo"
    if op not in STEP_FIELDS:
        return f"unknown revert op {op!r}"
    for name in STEP_FIELDS[op]:
        if name not in step:
            return f"missing field {name!r}"
        value = step[name]
        if name == "files":
            if not isinstance(value, dict) or not all(isinstance(c, str | None) for c in value.values()):
                return "files: expected an object of path -> previous content (or null)"
        elif name == "object":
            if not isinstance(value, dict):
                return "object: expected a Kubernetes object"
        elif not _is_text(value):
            return f"{name}: expected a non-empty string, got {value!r}"
    for name in ("namespace", "message"):
        if step.get(name) is not None and not isinstance(step[name], str):
            return f"{name}: expected a string, got {step[name]!r}"
    return None


def _step_label(step: Any, index: int) -> str:
    """How a step is named in problems: its op, else its position (1 = the first recorded)."""
    op = step.get("op") if isinstance(step, dict) else None
    return str(op) if _is_text(op) else f"step {index + 1}"


class Reverter:
    """Executes a record's steps against the cluster it names."""

    def __init__(self, record: RevertRecord, kube: Kube | None = None, git: GitOpsRepo | None = None):
        locator = record.cluster
        self.record = record
        self.kube = kube or connect(locator["kubeconfig"], locator.get("context"))
        g = locator["git"]
        self.git = git or GitOpsRepo(Path(g["bare"]), Path(g["work"]), g["url"])
        root = locator.get("local_root")
        self.control = LocalControl(ClusterLayout(Path(root))) if root else None

    def run(self) -> list[str]:
        """Undo every step, last first; returns the problems (empty when all went well)."""
        problems = []
        for index, step in reversed(list(enumerate(self.record.steps))):
            if isinstance(step, dict) and step.get("done"):
                continue
            problem = step_problem(step)
            if problem is None:
                try:
                    self._undo(step)
                    step["done"] = True
                except (ApiError, ResilienceError, OSError, KeyError) as e:
                    problem = str(e)
            if problem is not None:
                label = _step_label(step, index)
                problems.append(f"{label}: {problem}")
                log.warning("revert step %s of %s failed: %s", label, self.record.fault, problem)
            self.record.save()
        self.record.reverted = not problems
        self.record.save()
        return problems

    def _undo(self, step: dict[str, Any]) -> None:
        op = step["op"]
        if op == "git-restore":
            write = {p: c for p, c in step["files"].items() if c is not None}
            delete = [p for p, c in step["files"].items() if c is None]
            self.git.commit(step.get("message", "Revert"), write=write, delete=delete)
        elif op == "delete":
            self.kube.delete(step["apiVersion"], step["kind"], step["name"], step.get("namespace"))
        elif op == "apply":
            self.kube.apply(step["object"])
        elif op == "reconcile":
            self.kube.merge_patch(
                step["apiVersion"], step["kind"], step["name"], step["namespace"], reconcile_request()
            )
        elif op == "release":
            if self.control is None:
                raise HarnessError(f"cannot release {step['component']}: the cluster has no local supervisor")
            self.control.release(step["component"])
        else:
            raise HarnessError(f"unknown revert op {op!r}")


def run_dir(run: str) -> Path:
    """The directory of a run: a path, else an id under runs/."""
    if run.strip():
        for path in (Path(run), RUNS_DIR / run):
            if path.is_dir():
                return path
    raise UserError(f"no run {run!r}: pass a run directory or an id under {RUNS_DIR}/")


def pending_records(run: str) -> list[Path]:
    """Record files of a run (a run id under runs/, or a path), oldest first."""
    # lstat: a dangling link is still listed, and reported as unreadable when loaded.
    return sorted((run_dir(run) / "revert").glob("*.json"), key=lambda p: p.lstat().st_mtime)


def revert_run(run: str) -> tuple[int, list[str]]:
    """Revert every record of a run not yet reverted, each even when another cannot be read; returns (records
    worked on, problems). A run without any record is a UserError: nothing was checked, so nothing may pass."""
    paths = pending_records(run)
    if not paths:
        where = run_dir(run) / "revert"
        raise UserError(f"nothing to revert: no revert records in {where}; pass the run directory a chaos run printed")
    count, problems = 0, []
    for path in paths:
        try:
            record = RevertRecord.load(path)
        except UserError as e:
            problems.append(str(e))
            continue
        if record.reverted:
            continue
        try:
            found = Reverter(record).run()
        except ValueError as e:  # the kubeconfig is gone: the cluster went with it
            found = [f"cluster unreachable ({e})"]
        problems += [f"{path.name}: {p}" for p in found]
        count += 1
    return count, problems
