"""Revert records: what it takes to undo a fault, on disk before the fault lands.

Every change a scenario makes (a Git commit, an object created, a component held down) first appends a step
to its record file, so `resilience revert RUN` can undo an interrupted or crashed run from the files alone.
Steps are undone last-first, each idempotently, and undoing never raises: a failed step is reported and the
next one still runs.
"""

from __future__ import annotations

import json
import logging
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
        return cls(
            path,
            body["fault"],
            body["cluster"],
            list(body.get("steps") or []),
            bool(body.get("reverted", False)),
            float(body.get("created") or time.time()),
        )


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
        for step in reversed(self.record.steps):
            if step.get("done"):
                continue
            try:
                self._undo(step)
                step["done"] = True
            except (ApiError, ResilienceError, OSError, KeyError) as e:
                problems.append(f"{step['op']}: {e}")
                log.warning("revert step %s of %s failed: %s", step["op"], self.record.fault, e)
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


def pending_records(run: str) -> list[Path]:
    """Record files of a run (a run id under runs/, or a path), oldest first."""
    path = Path(run)
    if not path.exists():
        path = RUNS_DIR / run
    if not path.is_dir():
        raise UserError(f"no run {run!r}: pass a run directory or an id under {RUNS_DIR}/")
    return sorted((path / "revert").glob("*.json"), key=lambda p: p.stat().st_mtime)


def revert_run(run: str) -> tuple[int, list[str]]:
    """Revert every record of a run not yet reverted; returns (records reverted, problems)."""
    count, problems = 0, []
    for path in pending_records(run):
        record = RevertRecord.load(path)
        if record.reverted:
            continue
        try:
            found = Reverter(record).run()
        except ValueError as e:  # the kubeconfig is gone: the cluster went with it
            found = [f"cluster unreachable ({e})"]
        problems += [f"{path.name}: {p}" for p in found]
        count += 1
    return count, problems
