"""Helpers for the reports and criteria tests: hand-made run results, load measurements, summary files, SLO files,
and a pytest run in a subprocess (a helper module: test modules import it, never each other)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import yaml

from assertions.slo import Budget, Limit
from assertions.timeline import Timeline
from assertions.verdict import RunResult


def make_result(
    fault: str,
    recovery: str,
    marks: dict[str, float],
    *,
    family: str = "workload",
    ttr_max: float = 60.0,
    ttr_p95: float | None = None,
    wait: float | None = None,
    invalid: str | None = None,
    repeat: int = 1,
    **evidence: Any,
) -> RunResult:
    """A judged RunResult of a proven fault whose timeline has the given phase marks (seconds)."""
    timeline = Timeline()
    for phase, at in marks.items():
        timeline.mark(phase, at)
    budget = Budget(ttr=Limit(ttr_max, ttr_p95), wait=wait)
    result = RunResult(fault, family, recovery, budget, timeline, repeat=repeat, proven=True, **evidence)
    if invalid:
        result.invalid.append(invalid)
    result.judge()
    return result


def recovered(ttr: float) -> dict[str, float]:
    return {"injected": 0.0, "visible": min(2.0, ttr / 2), "recovered": ttr}


NOT_RECOVERED = {"injected": 0.0, "visible": 2.0}


def entry(fault: str, recovery: str, marks: dict[str, float], **kw: Any) -> dict[str, Any]:
    return make_result(
        fault, recovery, marks, test=f"scenarios/test_{fault}.py::test_{fault}[{recovery}]", **kw
    ).summary_entry()


def stats(done: int = 3, failed: int = 0, p95: float | None = 1.0) -> dict[str, Any]:
    return {"done": done, "failed": failed, "p50": p95, "p95": p95, "p99": p95, "max": p95}


def load(
    same_during: float | None = 1.5,
    failed: int = 0,
    radius: list[str] | None = None,
    downtime: float | None = 0.0,
) -> dict[str, Any]:
    """A load measurement: baselines of 1 s, same-source p95 `same_during` during the fault."""
    same = {"baseline": stats(), "during": stats(p95=same_during, failed=failed), "after": stats()}
    other = {"baseline": stats(), "during": stats(), "after": stats()}
    return {
        "profile": "light",
        "groups": {"same-source": same, "other-source": other},
        "blast_radius": radius or [],
        "downtime_seconds": downtime,
    }


def write_json(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))
    return path


def write_slo(path: Path, data: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data))
    return path


# A chaos suite in miniature: the hookspecs as the scenarios plugin declares them, and scenario tests that call
# the hooks with hand-made RunResults, the way the scenario runner does.
CONFTEST = """
import pytest

from scenarios import hooks


def pytest_addhooks(pluginmanager):
    pluginmanager.add_hookspecs(hooks)


@pytest.fixture(scope="session", autouse=True)
def environment(pytestconfig):
    pytestconfig.hook.pytest_resilience_environment(
        environment={"kubernetes": "v1.36.3", "flux.kustomize-controller": "v1.9.4", "provider": "local"}
    )
"""

SCENARIOS = """
from contextlib import ExitStack

import pytest

from assertions.slo import Budget, Limit
from assertions.diagnostics import Diagnostics
from assertions.timeline import Timeline
from assertions.verdict import RunResult, Verdict
from foundation.errors import HarnessError

READY = {"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded", "message": "Applied revision"}
FAILED = {"type": "Ready", "status": "False", "reason": "ReconciliationFailed", "message": "dry-run failed: immutable"}


def flux(cond):
    return [{"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
             "metadata": {"name": "apps", "namespace": "flux-system", "generation": 3},
             "spec": {"path": "./apps"}, "status": {"observedGeneration": 3, "conditions": [cond]}}]


DIAGNOSTICS = {
    "flux_before": flux(READY),
    "flux_after": flux(FAILED),
    "events": [{"type": "Warning", "reason": "ReconciliationFailed", "count": 3, "message": "dry-run failed",
                "involvedObject": {"kind": "Kustomization", "namespace": "flux-system", "name": "apps"}},
               {"at": 2.25, "reason": "Recreated", "type": "Normal", "component": "resilience-operator",
                "object": "Deployment/demo/web", "message": "deleted and re-applied"}],
    "logs": {"kustomize-controller": "level=error msg=\\"Reconciliation failed\\" name=apps"},
}

CASES = {
    "selector-none": ("selector-change", "workload", "none", {"injected": 0, "visible": 2.1}, 120, None),
    "selector-flux": ("selector-change", "workload", "flux-native",
                      {"injected": 0, "visible": 2, "recovered": 75.2}, 60, None),
    "selector-operator": ("selector-change", "workload", "operator",
                          {"injected": 0, "visible": 1.9, "detected": 2.4, "acted": 3.1, "recovered": 14.8}, 60, None),
    "helm-operator": ("helm-upgrade-failed", "helm", "operator",
                      {"injected": 0, "visible": 3.8, "detected": 4.5, "acted": 6, "recovered": 28.3}, 60, None),
    "outage-operator": ("source-outage", "source", "operator", {"injected": 0}, 60,
                        "proof of fault missing: GitRepository never showed the outage signature"),
}


def run(request, case, repeat=1):
    fault, family, recovery, marks, ttr, invalid = CASES[case]
    timeline = Timeline()
    for phase, at in marks.items():
        timeline.mark(phase, at)
    result = RunResult(fault, family, recovery, Budget(ttr=Limit(ttr)), timeline, repeat=repeat, provider="local",
                       signature="immutable-field", test=request.node.nodeid, diagnostics=Diagnostics(**DIAGNOSTICS),
                       proven=True)
    if invalid:
        result.invalid.append(invalid)
    result.judge()
    with ExitStack() as steps:  # what the scenario runner does with each phase
        for step in request.config.hook.pytest_resilience_step(run=None, name="inject"):
            steps.enter_context(step)
    request.config.hook.pytest_resilience_run_result(result=result, item=request.node)
    return result


@pytest.mark.parametrize("case", sorted(CASES))
def test_scenario(case, request):
    result = run(request, case)
    assert result.verdict is Verdict.PASS, f"{result.verdict}: {result.reason}"


def test_repeated(request):
    for repeat in (1, 2):
        run(request, "helm-operator", repeat=repeat)


def test_product_failure(request):
    run(request, "selector-operator")
    assert False, "steady state: Deployment demo not Available after recovery"


def test_harness_error():
    raise HarnessError("kube-apiserver exited (signal 9) during injection")
"""


def make_suite(root: Path, scenarios: str = SCENARIOS, conftest: str = CONFTEST) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "conftest.py").write_text(textwrap.dedent(conftest))
    (root / "test_scenarios.py").write_text(textwrap.dedent(scenarios))
    (root / "pytest.ini").write_text("[pytest]\n")
    return root


def run_pytest(
    root: Path, *args: str, env: dict[str, str] | None = None, reports: bool = True
) -> subprocess.CompletedProcess[str]:
    """pytest with the reports plugin (unless `reports` is false) in a fresh process (allure-pytest keeps global
    state)."""
    plugin = ["-p", "reports.plugin"] if reports else []
    return subprocess.run(
        [sys.executable, "-m", "pytest", *plugin, "-p", "no:cacheprovider", "-q", *args],
        cwd=root,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


def allure_results(results: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(results.glob("*-result.json"))]


def labels(result: dict[str, Any], name: str) -> list[str]:
    return [label["value"] for label in result.get("labels", []) if label["name"] == name]


def all_attachments(node: dict[str, Any]) -> list[dict[str, Any]]:
    """Attachments of a result and of all its steps."""
    out = list(node.get("attachments", []))
    for step in node.get("steps", []):
        out += all_attachments(step)
    return out
