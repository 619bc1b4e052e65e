"""The files of one local cluster under the state directory, named in one place.

Everything a cluster creates lives under its directory, so `cluster down` and the sweeper remove a cluster by
stopping the processes its pid files name and deleting one tree.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clusters.paths import clusters_root
from foundation.errors import UserError

_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$")


def check_name(name: str) -> str:
    """Cluster names become directory names and kubeconfig contexts: DNS-label style, <= 40 chars."""
    if not _NAME.fullmatch(name):
        raise UserError(
            f"bad cluster name {name!r}: use lower-case letters, digits and '-', at most 40 characters, "
            "starting and ending with a letter or digit"
        )
    return name


@dataclass(frozen=True)
class ClusterLayout:
    """Paths of one local cluster's files."""

    root: Path

    @classmethod
    def named(cls, name: str) -> ClusterLayout:
        return cls(clusters_root() / check_name(name))

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def spec_file(self) -> Path:
        """Written by `up` before anything starts: ports, binaries, owner."""
        return self.root / "cluster.json"

    @property
    def status_file(self) -> Path:
        """Written by the supervisor: phase, phase timings, components, error."""
        return self.root / "status.json"

    @property
    def restarts_file(self) -> Path:
        """One JSON line per restart of a supervised component."""
        return self.root / "restarts.jsonl"

    @property
    def supervisor_pid_file(self) -> Path:
        return self.root / "supervisor.pid"

    @property
    def pki_dir(self) -> Path:
        return self.root / "pki"

    @property
    def kubeconfig(self) -> Path:
        """The admin kubeconfig handed to users and tests."""
        return self.root / "kubeconfig"

    def component_kubeconfig(self, component: str) -> Path:
        return self.root / "kubeconfigs" / f"{component}.yaml"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    def log(self, component: str) -> Path:
        return self.logs_dir / f"{component}.log"

    @property
    def pids_dir(self) -> Path:
        return self.root / "pids"

    def pid_file(self, component: str) -> Path:
        return self.pids_dir / f"{component}.pid"

    @property
    def etcd_dir(self) -> Path:
        return self.root / "etcd"

    @property
    def storage_dir(self) -> Path:
        """source-controller's artifact storage."""
        return self.root / "storage"

    @property
    def git_dir(self) -> Path:
        return self.root / "git"

    @property
    def charts_dir(self) -> Path:
        """Served by the chart repository: packaged charts and index.yaml."""
        return self.root / "charts"

    @property
    def config_dir(self) -> Path:
        return self.root / "config"

    @property
    def monitoring_dir(self) -> Path:
        """Prometheus and Alertmanager configuration and data, scrape targets, received notifications."""
        return self.root / "monitoring"

    @property
    def control_socket(self) -> str:
        """An abstract Unix socket (no file to go stale), unique per cluster directory: its name and a digest of its
        path, as a socket address holds at most 107 bytes and a state directory can be deeper than that."""
        path = hashlib.sha256(str(self.root.resolve()).encode()).hexdigest()[:24]
        return f"\0gitops-resilience:{self.root.name[:48]}:{path}"

    def read_spec(self) -> dict[str, Any]:
        return _read_json(self.spec_file)

    def read_status(self) -> dict[str, Any]:
        return _read_json(self.status_file)

    def write_status(self, status: dict[str, Any]) -> None:
        _write_json(self.status_file, status)

    def write_spec(self, spec: dict[str, Any]) -> None:
        _write_json(self.spec_file, spec)


def all_layouts() -> list[ClusterLayout]:
    root = clusters_root()
    if not root.is_dir():
        return []
    return [ClusterLayout(p) for p in sorted(root.iterdir()) if p.is_dir()]


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Write through a temporary file so readers never see half a document."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
