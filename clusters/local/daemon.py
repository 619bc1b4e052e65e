"""The per-cluster supervisor process: `python -m clusters.local.daemon CLUSTER_DIR`.

`cluster up` prepares the directory and starts this detached process, which outlives the command. It runs
the start-up sequence, then supervises until `cluster down` (SIGTERM or the `shutdown` op) or, for clusters
owned by a test session, until the owner process is gone; then it stops every child and, for owned
clusters, removes the directory, so a crashed pytest leaves nothing behind.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from clusters.local.components import component_specs
from clusters.local.control import ControlServer
from clusters.local.layout import ClusterLayout
from clusters.local.startup import Phases, start_cluster, start_servers
from clusters.local.supervisor import Backoff, Supervisor
from foundation.processes import ProcessRecord, alive, process_start_time

log = logging.getLogger("supervisor")


def _owner_alive(spec: dict[str, Any]) -> bool:
    owner = spec.get("owner")
    if not owner:
        return True
    return alive(int(owner["pid"]), owner.get("start_time"))


def run(layout: ClusterLayout) -> int:
    spec = layout.read_spec()
    ProcessRecord(os.getpid(), process_start_time(os.getpid()), sys.executable).write(layout.supervisor_pid_file)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: stop.set())

    binaries = {name: Path(path) for name, path in spec.get("binaries", {}).items()}
    specs = component_specs(layout, spec["ports"], binaries, serve_host=spec.get("serve_host", "127.0.0.1"))
    sup = Supervisor(layout, specs, Backoff(**spec.get("backoff", {})))
    status: dict[str, Any] = {"phase": "starting", "phases": {}, "started": time.time()}

    def publish(**changes: Any) -> None:
        status.update(changes)
        layout.write_status(status)

    publish()
    control = ControlServer(layout.control_socket, sup, stop.set)
    control.start()
    code = 0
    try:
        phases = Phases(lambda seconds: publish(phases=seconds))
        started = time.monotonic()
        if spec.get("mode") == "servers":
            start_servers(sup, phases)
        else:
            start_cluster(sup, spec, phases, layout.kubeconfig, [Path(p) for p in spec["crds"]])
        sup.restartable = set(sup.specs)
        publish(phase="ready", ready_seconds=round(time.monotonic() - started, 3))
        log.info("cluster %s ready in %.1fs", layout.name, time.monotonic() - started)
        while not stop.is_set():
            sup.poll()
            if not _owner_alive(spec):
                log.warning("owner process %s is gone: stopping the cluster", spec["owner"]["pid"])
                break
            stop.wait(0.2)
    except Exception as e:
        log.exception("cluster %s failed", layout.name)
        publish(phase="failed", error=str(e))
        code = 1
    finally:
        if status["phase"] != "failed":
            publish(phase="stopping")
        control.close()
        sup.stop_all()
        layout.supervisor_pid_file.unlink(missing_ok=True)
        if not _owner_alive(spec):
            shutil.rmtree(layout.root, ignore_errors=True)
        elif status["phase"] != "failed":
            publish(phase="stopped")
    return code


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    layout = ClusterLayout(Path(args[0]))
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    return run(layout)


if __name__ == "__main__":
    sys.exit(main())
