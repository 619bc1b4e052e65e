"""`cluster up --monitoring` with bad input, against the real promtool and Go: a rule file that does not load, a busy
port, a build that fails. Each is one line on stderr, and nothing is left running or on disk. No cluster starts."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from clusters.build import cached, component_dir
from clusters.local.provider import BINARIES
from clusters.pins import component
from monitoring.stack import local as monitoring


def up(state: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "resilience.cli", "cluster", "up", "--name", "bad-mon", "--monitoring", *args]
    full = {**os.environ, "RESILIENCE_STATE": str(state), **(env or {})}
    return subprocess.run(argv, capture_output=True, text=True, env=full, timeout=300)


def one_line_error(proc: subprocess.CompletedProcess[str], code: int) -> str:
    assert proc.returncode == code, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("resilience: error: ")]
    assert len(errors) == 1 and proc.stderr.strip().splitlines()[-1] == errors[0], proc.stderr
    return errors[0].removeprefix("resilience: error: ")


def nothing_left(state: Path) -> None:
    assert not (state / "clusters" / "bad-mon").exists()
    running = subprocess.run(["pgrep", "-af", str(state)], capture_output=True, text=True).stdout
    assert [line for line in running.splitlines() if "pgrep" not in line] == []


def test_rules_prometheus_would_refuse_stop_cluster_up_before_anything_runs(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    broken = {"alert": "Broken", "expr": "flux_kustomization_ready ==="}
    rules.write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [broken]}]}))
    message = one_line_error(up(tmp_path / "state", "--alert-rules", str(rules)), 2)
    assert message.startswith(f"{rules}: the alert rules do not load: ")
    assert "parse error" in message and message.endswith("; fix the rules (promtool check rules)")
    nothing_left(tmp_path / "state")


def test_a_busy_prometheus_port_is_refused_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        message = one_line_error(up(tmp_path / "state", "--prometheus-port", str(port)), 2)
    assert message.startswith(f"port {port} for prometheus is already in use on 127.0.0.1")
    nothing_left(tmp_path / "state")


def test_a_monitoring_build_that_fails_is_one_line_and_starts_nothing(tmp_path: Path) -> None:
    """A cache holding the cluster's components but not Prometheus, and no way to fetch its modules."""
    cache = tmp_path / "cache"
    (cache / "upstream").mkdir(parents=True)
    needed = {*BINARIES.values(), "prometheus", "alertmanager"}
    for name in needed:
        built = cached(component(name))
        if built is None:
            pytest.fail(f"{name} is not built: run `resilience build --for test` first")
        (cache / "upstream" / built.directory.name).symlink_to(built.directory)
    env = {"RESILIENCE_CACHE": str(cache), "GOPROXY": "off", "GOMODCACHE": str(tmp_path / "gomod"), "GOFLAGS": ""}
    message = one_line_error(up(tmp_path / "state", env=env), 3)
    server = component(monitoring.BINARIES["prometheus"])
    assert message.startswith(f"{server.name} {server.version}: build failed: ")
    assert "GOPROXY=off" in message and f"(full log: {cache / 'logs' / server.name}.log)" in message
    assert not (cache / "upstream" / component_dir(server).name).exists()
    nothing_left(tmp_path / "state")
