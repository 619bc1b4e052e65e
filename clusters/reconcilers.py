"""Which Flux controller process reconciled a run's objects, and whether any of them stopped, from their own logs.

A sharded mode (flux-tuned) is only measured if its runs were reconciled by its shard alone, and the other modes'
runs by the default controllers alone: the isolation check of the judge needs that proof. The controllers log
each reconcile as JSON with its reconcileID and the object's kind, namespace and name; the local supervisor marks
every (re)start in the same file (clusters.local.supervisor.start_mark). Reading starts where the file ended when
the run began, so a run reads only its own lines however long the session.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from clusters.local.supervisor import started_at
from fluxmodel.kinds import HELM_RELEASE, KUSTOMIZATION

Owns = Callable[[str, str | None, str | None], bool]
# The controller-runtime controller name each reconcile line carries (its first lines also name the kind).
RECONCILED_KINDS = {"kustomization": KUSTOMIZATION.kind, "helmrelease": HELM_RELEASE.kind}


@dataclass
class ControllerLogs:
    """The named controllers' log files, read from where each ended when `mark` was called."""

    paths: dict[str, Path]
    offsets: dict[str, int] = field(default_factory=dict)
    read: dict[str, list[str]] = field(default_factory=dict)  # each log read once, when first asked

    @classmethod
    def mark(cls, logs: Mapping[str, Path], controllers: Iterable[str]) -> ControllerLogs:
        paths = {name: logs[name] for name in controllers if name in logs}
        return cls(paths, {name: _size(path) for name, path in paths.items()})

    def lines(self, name: str) -> list[str]:
        """The lines `name` logged since the mark (all of them if its log was rotated away meanwhile)."""
        if name not in self.read:
            self.read[name] = self._since_mark(name)
        return self.read[name]

    def _since_mark(self, name: str) -> list[str]:
        path = self.paths[name]
        try:
            with path.open("rb") as fh:
                offset = self.offsets.get(name, 0)
                fh.seek(offset if offset <= _size(path) else 0)
                return fh.read().decode(errors="replace").splitlines()
        except OSError:
            return []

    def reconciles(self, owns: Owns) -> dict[str, int]:
        """Per controller: how many reconciles of the run's Kustomizations and HelmReleases it logged (by
        reconcileID); controllers that logged none are left out."""
        out = {}
        for name in self.paths:
            ids = {rid for line in self.lines(name) if (rid := _reconcile_of(line, owns))}
            if ids:
                out[name] = len(ids)
        return out

    def starts(self, name: str) -> list[float]:
        """When `name` was (re)started since the mark: each start but a first one means its process had stopped."""
        return [at for line in self.lines(name) if (at := started_at(line)) is not None]


def _reconcile_of(line: str, owns: Owns) -> str | None:
    if not line.startswith("{") or '"reconcileID"' not in line:
        return None
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    kind = RECONCILED_KINDS.get(str(entry.get("controller"))) if isinstance(entry, dict) else None
    if kind is None or not owns(kind, entry.get("namespace"), entry.get("name")):
        return None
    return str(entry.get("reconcileID") or "") or None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
