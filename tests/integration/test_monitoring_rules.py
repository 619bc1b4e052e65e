"""The harness's reading of each shipped alert (monitoring.facts.rules.PROMISES) proven against the real rule
evaluator: with the series its condition produces from time 0, the alert is not firing shortly before the promise's
threshold + `for`, and is firing shortly after. A changed threshold or `for` in the rules fails this test until the
promise is updated, so the blind-spot check of every run keeps judging by the rules as shipped."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from clusters.build import require
from monitoring.facts.rules import (
    BLOCKING,
    CYCLE,
    ESCALATED,
    NOT_READY,
    PROMISES,
    ROLLED_BACK,
    Promise,
    rule_groups,
    shipped_rules,
)

STEP = 10  # seconds between samples and between evaluations
SERIES_PREFIX = {"Kustomization": "flux_kustomization", "HelmRelease": "flux_helmrelease"}
COUNTED = (ESCALATED, ROLLED_BACK)  # conditions a counter's increase shows: they land one step in


def series(promise: Promise, kind: str, samples: int) -> list[dict[str, str]]:
    """What the operator (or the stage controller) exports for one object once the promised condition holds from
    time 0."""
    obj = '{namespace="ns",name="app"}'
    prefix = SERIES_PREFIX.get(kind, "")
    if promise.condition == ROLLED_BACK:
        labels = '{namespace="ns",name="app",stage="canary",check="pod-ready"}'
        # Exported at 0 from the moment the StagedKustomization is seen; the rollback happens one step in.
        return [{"series": f"flux_staged_rollbacks_total{labels}", "values": f"0 1x{samples}"}]
    if promise.condition == NOT_READY:
        return [
            {"series": f"{prefix}_ready{obj}", "values": f"0x{samples}"},
            {"series": f"{prefix}_suspended{obj}", "values": f"0x{samples}"},
            {"series": f"{prefix}_last_applied_revision_timestamp{obj}", "values": f"0x{samples}"},
        ]
    if promise.condition == BLOCKING:
        return [
            {
                "series": f'flux_dependency_blocked_dependents{{kind="{kind}",namespace="ns",name="app"}}',
                "values": f"2x{samples}",
            },
            {"series": f"{prefix}_stuck_seconds{obj}", "values": f"0+{STEP}x{samples}"},
        ]
    if promise.condition == CYCLE:
        labels = f'{{kind="{kind}",namespace="ns",name="app",cycle="a -> b -> a"}}'
        return [{"series": f"flux_dependency_cycle{labels}", "values": f"1x{samples}"}]
    assert promise.condition == ESCALATED
    labels = f'{{kind="{kind}",action="recreate_deployment",why="retries"}}'
    # The counter exists at 0 (the operator exports it so) and the escalation happens at time 0 + one step.
    return [{"series": f"flux_recovery_escalations_total{labels}", "values": f"0 1x{samples}"}]


def firing(promise: Promise, at: float, expected: int) -> dict[str, Any]:
    query = f'count(ALERTS{{alertname="{promise.alert}",alertstate="firing"}})'
    return {
        "expr": query,
        "eval_time": f"{int(at)}s",
        "exp_samples": [{"labels": "{}", "value": expected}] if expected else [],
    }


@pytest.mark.parametrize("promise", PROMISES, ids=[p.alert for p in PROMISES])
def test_each_promise_holds_for_the_shipped_rule(promise: Promise, tmp_path: Path) -> None:
    promtool = require("prometheus").binary("promtool")
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": rule_groups(shipped_rules())}))
    start = STEP if promise.condition in COUNTED else 0
    due = start + promise.holds_for
    samples = int(due / STEP) + 10
    kind = promise.kinds[0]
    tests = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": f"{STEP}s",
        "tests": [
            {
                "interval": f"{STEP}s",
                "input_series": series(promise, kind, samples),
                "promql_expr_test": [
                    *([firing(promise, due - 2 * STEP, 0)] if due >= 2 * STEP else []),
                    firing(promise, due + 2 * STEP, 1),
                ],
            }
        ],
    }
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests, sort_keys=False))
    proc = subprocess.run([str(promtool), "test", "rules", "tests.yaml"], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
