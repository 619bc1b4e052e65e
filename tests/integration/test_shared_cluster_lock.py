"""Two xdist workers share one real cluster (`--reuse-cluster`): an app fault and a cluster-wide fault (the git
server held down) start together; the cluster's fault lock makes one wait for the other, the outage runs alone
and its reason says so, and both runs are judged as usual, each operator acting only on its own session's runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from clusters.model import Cluster

ROOT = Path(__file__).resolve().parents[2]
# A nested chaos run of up to 15 minutes on the session's cluster, after that cluster's start.
pytestmark = pytest.mark.timeout(1800)


def test_a_cluster_wide_fault_runs_alone_on_a_shared_cluster(cluster: Cluster, tmp_path: Path) -> None:
    pytest.importorskip("xdist")
    if cluster.provider != "local":
        pytest.skip("the outage needs the local provider's supervisor")
    summary = tmp_path / "summary.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESILIENCE_") or k in ("RESILIENCE_STATE",)}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "scenarios", "-p", "no:cacheprovider", "-q", "-n", "2",
         "-k", "selector-change or source-outage", "--recovery", "operator", "--reuse-cluster", cluster.name,
         "--resilience-summary", str(summary), "--run-dir", str(tmp_path / "runs")],
        cwd=ROOT, capture_output=True, text=True, timeout=900, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    entries = {e["fault"]: e for e in json.loads(summary.read_text())}
    outage, app = entries["source-outage"], entries["selector-change"]
    assert outage["cluster_lock"]["mode"] == "exclusive" and app["cluster_lock"]["mode"] == "shared"
    # They started together on two workers: one of them waited for the other.
    assert outage["cluster_lock"]["others"] + app["cluster_lock"]["others"] >= 1, (outage, app)
    assert f"ran alone on cluster {cluster.name} (exclusive fault lock" in outage["reason"]
    assert {outage["verdict"], app["verdict"]} == {"pass"}, (outage["reason"], app["reason"])
    assert outage["foreign_activity"] == [] and app["foreign_activity"] == []
    assert {outage["host"]["workers"], app["host"]["workers"]} == {2}
