"""The default provider: Kubernetes, kwok and Flux from the build cache, run as local processes.

`up` validates everything it can before anything starts (name, binaries, ports, git), prepares the cluster
directory, starts the supervisor daemon and waits for it to report Ready. Any failure or Ctrl-C on the way
tears the cluster down again, so a failed `up` leaves no process and no directory behind (its logs are kept
under failed-logs/ for the post-mortem).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from clusters import build
from clusters.bootstrap import initial_content
from clusters.charts import BASE_CHARTS, ChartRepo
from clusters.gitops import GitOpsRepo
from clusters.local import control
from clusters.local.components import component_specs
from clusters.local.layout import ClusterLayout, all_layouts
from clusters.local.pki import Identity, write_kubeconfig, write_pki
from clusters.local.ports import allocate, allocation_lock
from clusters.local.procs import ProcessRecord, process_start_time, terminate
from clusters.local.supervisor import read_restarts
from clusters.model import Cluster
from clusters.paths import state_root
from clusters.pins import COMPONENTS
from resilience.errors import HarnessError, UserError

BINARIES = {
    "etcd": "etcd",
    "kube-apiserver": "kubernetes",
    "kube-controller-manager": "kubernetes",
    "kube-scheduler": "kubernetes",
    "kwok": "kwok",
    "source-controller": "source-controller",
    "kustomize-controller": "kustomize-controller",
    "helm-controller": "helm-controller",
    "helm": "helm",
}
FLUX_COMPONENTS = ("source-controller", "kustomize-controller", "helm-controller")
IDENTITIES = [
    Identity("admin", "system:masters"),
    Identity("system:kube-controller-manager"),
    Identity("system:kube-scheduler"),
    Identity("kwok", "system:masters"),
    Identity("flux", "system:masters"),
]
# Which identity each component's kubeconfig carries.
COMPONENT_USERS = {
    "kube-controller-manager": "system:kube-controller-manager",
    "kube-scheduler": "system:kube-scheduler",
    "kwok": "kwok",
    "flux": "flux",
}


@dataclass(frozen=True)
class LocalControl:
    """ComponentControl through the supervisor's control socket."""

    layout: ClusterLayout

    def kill(self, component: str, signal: int = 9) -> int:
        return int(control.request(self.layout.control_socket, "kill", component=component, signal=signal)["pid"])

    def hold(self, component: str, seconds: float | None = None) -> None:
        control.request(self.layout.control_socket, "hold", component=component, seconds=seconds)

    def release(self, component: str) -> None:
        control.request(self.layout.control_socket, "release", component=component)

    def restarts(self) -> list[dict[str, Any]]:
        return read_restarts(self.layout.restarts_file)

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = control.request(self.layout.control_socket, "status")
        return result


def versions() -> dict[str, str]:
    names = {c.name: c.version for c in COMPONENTS}
    return {binary: names[component] for binary, component in BINARIES.items()}


def _supervisor(layout: ClusterLayout) -> ProcessRecord | None:
    record = ProcessRecord.read(layout.supervisor_pid_file)
    return record if record is not None and record.alive() else None


def _reap(layout: ClusterLayout) -> None:
    """Stop every process the cluster's pid files name, then delete the cluster directory."""
    supervisor = ProcessRecord.read(layout.supervisor_pid_file)
    if supervisor is not None:
        terminate(supervisor, grace=4.0)
    if layout.pids_dir.is_dir():
        for pid_file in layout.pids_dir.glob("*.pid"):
            record = ProcessRecord.read(pid_file)
            if record is not None:
                terminate(record, grace=1.0)
    shutil.rmtree(layout.root, ignore_errors=True)


def sweep_stale() -> list[str]:
    """Remove clusters whose supervisor is gone (a crashed run, a reboot); returns their names."""
    swept = []
    for layout in all_layouts():
        if _supervisor(layout) is None and _age(layout) > 5.0:
            _reap(layout)
            swept.append(layout.name)
    return swept


def _age(layout: ClusterLayout) -> float:
    try:
        return time.time() - layout.root.stat().st_mtime
    except OSError:
        return 0.0


def _keep_failed_logs(layout: ClusterLayout) -> Path:
    target = state_root() / "failed-logs" / layout.name
    shutil.rmtree(target, ignore_errors=True)
    if layout.logs_dir.is_dir():
        shutil.copytree(layout.logs_dir, target)
    return target


class LocalProvider:
    name = "local"

    def up(
        self,
        name: str,
        *,
        owner_pid: int | None = None,
        api_port: int | None = None,
        nodes: int = 2,
        timeout: float = 180.0,
    ) -> Cluster:
        layout = ClusterLayout.named(name)
        sweep_stale()
        if layout.root.exists():
            if _supervisor(layout) is not None:
                raise UserError(
                    f"a local cluster named {name!r} is already running: reuse it, or run "
                    f"`resilience cluster down --name {name}` first"
                )
            _reap(layout)
        if nodes < 1:
            raise UserError(f"--nodes {nodes}: a cluster needs at least 1 node")
        binaries = {binary: build.require(comp).binary(binary) for binary, comp in BINARIES.items()}
        crds = [str(p) for comp in FLUX_COMPONENTS for p in build.require(comp).crds]
        if shutil.which("git") is None:
            raise UserError("git not found on PATH: install git (the GitOps repository is served from it)")
        with allocation_lock():
            reserved = [p for other in all_layouts() for p in (other.read_spec().get("ports") or {}).values()]
            ports = allocate({"kube-apiserver": api_port} if api_port else {}, reserved)
            layout.root.mkdir(parents=True)
            layout.write_spec({"name": name, "ports": ports, "phase": "preparing"})
        try:
            return self._start(layout, ports, binaries, crds, owner_pid, nodes, timeout)
        except BaseException:
            _reap(layout)
            raise

    def _start(
        self,
        layout: ClusterLayout,
        ports: dict[str, int],
        binaries: dict[str, Path],
        crds: list[str],
        owner_pid: int | None,
        nodes: int,
        timeout: float,
    ) -> Cluster:
        started = time.monotonic()
        pki = write_pki(layout.pki_dir, IDENTITIES)
        server = f"https://127.0.0.1:{ports['kube-apiserver']}"
        write_kubeconfig(layout.kubeconfig, pki, server, "admin", f"resilience-{layout.name}")
        for component, user in COMPONENT_USERS.items():
            path = layout.component_kubeconfig(component)
            path.parent.mkdir(parents=True, exist_ok=True)
            write_kubeconfig(path, pki, server, user, f"resilience-{layout.name}")
        layout.config_dir.mkdir()
        layout.storage_dir.mkdir()
        kwok_config = resources.files("clusters.local") / "kwok.yaml"
        (layout.config_dir / "kwok.yaml").write_text(kwok_config.read_text())
        git_url = f"http://127.0.0.1:{ports['gitserver']}/gitops.git"
        chart_url = f"http://127.0.0.1:{ports['chartserver']}"
        repo = GitOpsRepo.create(layout.git_dir, git_url, initial_content())
        charts = ChartRepo(layout.charts_dir, chart_url, binaries["helm"])
        for chart in BASE_CHARTS:
            charts.publish(chart, "1.0.0")
        spec: dict[str, Any] = {
            "name": layout.name,
            "ports": ports,
            "binaries": {k: str(v) for k, v in binaries.items()},
            "crds": crds,
            "git_url": git_url,
            "chart_url": chart_url,
            "git_revision": repo.revision(),
            "nodes": nodes,
            "versions": versions(),
            "created": time.time(),
        }
        if owner_pid:
            spec["owner"] = {"pid": owner_pid, "start_time": process_start_time(owner_pid)}
        layout.write_spec(spec)
        prepare_seconds = round(time.monotonic() - started, 3)

        layout.logs_dir.mkdir(exist_ok=True)
        with layout.log("supervisor").open("ab") as log:
            daemon = subprocess.Popen(
                [sys.executable, "-m", "clusters.local.daemon", str(layout.root)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=layout.root,
                env={**os.environ, "PYTHONPATH": _project_root()},
            )
        status = self._wait(layout, daemon, timeout)
        phases = {"prepare": prepare_seconds, **status.get("phases", {})}
        phases["total"] = round(time.monotonic() - started, 3)
        return self._handle(layout, spec, repo, charts, phases)

    def _wait(self, layout: ClusterLayout, daemon: subprocess.Popen[bytes], timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            status = layout.read_status()
            if status.get("phase") == "ready":
                return status
            if status.get("phase") == "failed" or daemon.poll() is not None:
                daemon.wait(timeout=15)
                logs = _keep_failed_logs(layout)
                error = status.get("error") or f"supervisor exited with {daemon.returncode}"
                raise HarnessError(f"cluster {layout.name} failed to start: {error} (logs kept in {logs})")
            if time.monotonic() > deadline:
                logs = _keep_failed_logs(layout)
                raise HarnessError(
                    f"cluster {layout.name} not Ready after {timeout:.0f}s "
                    f"(phases so far: {status.get('phases')}; logs kept in {logs})"
                )
            time.sleep(0.05)

    def _handle(
        self,
        layout: ClusterLayout,
        spec: dict[str, Any],
        repo: GitOpsRepo,
        charts: ChartRepo,
        phases: dict[str, float],
    ) -> Cluster:
        names = list(component_specs(layout, spec["ports"], {k: Path(v) for k, v in spec["binaries"].items()}))
        return Cluster(
            name=layout.name,
            provider=self.name,
            kubeconfig=layout.kubeconfig,
            git=repo,
            charts=charts,
            versions=spec["versions"],
            ports=spec["ports"],
            logs={n: layout.log(n) for n in ["supervisor", *names]},
            phases=phases,
            control=LocalControl(layout),
        )

    def attach(self, name: str) -> Cluster:
        """A handle on a running local cluster (for `status`, and for tests reusing a cluster)."""
        layout = ClusterLayout.named(name)
        if _supervisor(layout) is None or layout.read_status().get("phase") != "ready":
            raise UserError(f"no running local cluster named {name!r}: `resilience cluster list` shows what runs")
        spec = layout.read_spec()
        repo = GitOpsRepo(layout.git_dir / "gitops.git", layout.git_dir / "work", spec["git_url"])
        charts = ChartRepo(layout.charts_dir, spec["chart_url"], Path(spec["binaries"]["helm"]))
        return self._handle(layout, spec, repo, charts, layout.read_status().get("phases", {}))

    def down(self, name: str) -> None:
        layout = ClusterLayout.named(name)
        if not layout.root.exists():
            raise UserError(f"no local cluster named {name!r}: `resilience cluster list` shows what exists")
        _reap(layout)

    def down_all(self) -> list[str]:
        names = [layout.name for layout in all_layouts()]
        for layout in all_layouts():
            _reap(layout)
        return names

    def list(self) -> list[dict[str, Any]]:
        rows = []
        for layout in all_layouts():
            spec, status = layout.read_spec(), layout.read_status()
            running = _supervisor(layout) is not None
            rows.append(
                {
                    "name": layout.name,
                    "provider": self.name,
                    "phase": status.get("phase", "preparing") if running else "dead",
                    "api": f"https://127.0.0.1:{spec['ports']['kube-apiserver']}" if spec.get("ports") else None,
                    "kubeconfig": str(layout.kubeconfig),
                    "owner_pid": (spec.get("owner") or {}).get("pid"),
                    "age_seconds": round(time.time() - float(spec.get("created", time.time()))),
                }
            )
        return rows

    def status(self, name: str) -> dict[str, Any]:
        layout = ClusterLayout.named(name)
        if not layout.root.exists():
            raise UserError(f"no local cluster named {name!r}: `resilience cluster list` shows what exists")
        status = layout.read_status()
        live: dict[str, Any] = {}
        if _supervisor(layout) is not None:
            try:
                live = LocalControl(layout).status()
            except HarnessError:
                live = {}
        return {
            "name": name,
            "phase": status.get("phase") if _supervisor(layout) else "dead",
            "phases_seconds": status.get("phases", {}),
            "error": status.get("error"),
            "components": live,
            "restarts": read_restarts(layout.restarts_file),
            "kubeconfig": str(layout.kubeconfig),
        }


def _project_root() -> str:
    """Where the project's packages are importable from, for the daemon's interpreter."""
    import clusters

    here = Path(clusters.__file__).resolve().parent.parent
    existing = os.environ.get("PYTHONPATH")
    return f"{here}{os.pathsep}{existing}" if existing else str(here)
