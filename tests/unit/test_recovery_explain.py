"""`resilience explain`: acts now, acts later (a Helm failure once helm-controller gives up), or never; as the operator
decides, in JSON or text, and bad input refused in one line."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from foundation.errors import UserError
from recovery import engine
from recovery.cli import register, run_explain
from recovery.defaults import default_patterns
from recovery.explain import ACTS_LATER, ACTS_NOW, NO_MATCH, explain
from recovery.health import observe
from recovery.state import ObjectState

UPGRADE = "Helm upgrade failed for release shop/web with chart web@1.2.3: context deadline exceeded"
INSTALL = 'Helm install failed for release shop/web with chart web@1.2.3: services "web" already exists'


def release(*conditions: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": "web", "namespace": "shop", "generation": 2},
        "status": {"observedGeneration": 2, "conditions": [{**c, "observedGeneration": 2} for c in conditions]},
    }


def decide(obj: dict[str, Any]) -> engine.Decision:
    health = observe(obj, None, 1000.0)
    return engine.decide(health, default_patterns(), ObjectState(health.ref), 1000.0)


def test_the_first_helm_upgrade_message_acts_later_exactly_as_the_operator_decides() -> None:
    out = explain("HelmRelease", UPGRADE, default_patterns())
    assert out["verdict"] == ACTS_LATER and out["matched"] is False
    later = out["later"]
    assert later["failure"] == {
        "condition": "Stalled",
        "status": "True",
        "reason": "RetriesExceeded",
        "message": "Failed to upgrade after N attempt(s)",
    }
    assert "spec.upgrade.remediation.retries" in later["when"] and "rolls back" in later["meanwhile"]
    assert later["action"]["name"] == "rollback_helm_release"
    ready = {"type": "Ready", "status": "False", "reason": "UpgradeFailed", "message": UPGRADE}
    # Meanwhile the operator does not act on the release ...
    assert decide(release(ready)).verdict == engine.NONE
    # ... and once helm-controller stalls it, it acts with the pattern explain named.
    stalled = {
        "type": "Stalled",
        "status": "True",
        "reason": "RetriesExceeded",
        "message": "Failed to upgrade after 1 attempt(s)",
    }
    decision = decide(release(ready, stalled))
    assert decision.verdict == engine.ACT and decision.pattern == later["pattern"]["name"]


def test_an_install_failure_acts_later_with_the_install_pattern() -> None:
    out = explain("HelmRelease", INSTALL, default_patterns(), reason="InstallFailed", condition="Released")
    assert out["verdict"] == ACTS_LATER
    assert out["later"]["pattern"]["name"] == "helm-install-retries-exhausted"
    assert "Failed to install after N attempt(s)" in out["later"]["when"] and "uninstalls" in out["later"]["meanwhile"]


def test_later_follows_the_patterns_in_use(tmp_path: Path) -> None:
    from recovery.patterns import parse

    only_kustomizations = parse("patterns: [{error_pattern: 'dry-run failed', recovery_action: escalate}]", "t")
    assert explain("HelmRelease", UPGRADE, only_kustomizations)["verdict"] == NO_MATCH
    assert explain("Kustomization", UPGRADE, default_patterns())["verdict"] == NO_MATCH  # a Helm message, wrong kind


def explain_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    return parser.parse_args(["explain", *argv])


def test_exit_0_for_now_and_later_3_only_when_nothing_ever_acts(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_explain(explain_args("--kind", "HelmRelease", "--message", UPGRADE)) == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == ACTS_LATER  # JSON stays the default
    assert run_explain(explain_args("--kind", "Kustomization", "--message", "something new")) == 3
    assert json.loads(capsys.readouterr().out)["verdict"] == NO_MATCH
    stalled = ["--condition", "Stalled", "--reason", "RetriesExceeded"]
    args = explain_args("--kind", "HelmRelease", "--message", "Failed to upgrade after 2 attempt(s)", *stalled)
    assert run_explain(args) == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == ACTS_NOW


def test_text_says_what_acts_when_and_what_happens_meanwhile(capsys: pytest.CaptureFixture[str]) -> None:
    run_explain(explain_args("--kind", "HelmRelease", "--message", UPGRADE, "--format", "text"))
    later = capsys.readouterr().out
    assert "Now: no pattern acts on this message" in later
    assert "Acts later: when helm-controller marks the HelmRelease Stalled=True with reason RetriesExceeded" in later
    assert "Meanwhile: helm-controller handles it alone" in later
    assert "Pattern: helm-upgrade-retries-exhausted" in later and "Action: rollback_helm_release" in later
    run_explain(explain_args("--kind", "Kustomization", "--message", "something new", "--format", "text"))
    assert "No pattern acts on this failure" in capsys.readouterr().out
    message = "dependency 'flux-system/db' is not ready"
    run_explain(explain_args("--kind", "Kustomization", "--message", message, "--format", "text"))
    now = capsys.readouterr().out
    assert "Acts now: " in now and "once every dependsOn dependency is Ready" in now


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--message", "  "], "--message is empty"),
        (
            ["--message", "x", "--condition", "ready"],
            "--condition 'ready': use one of Ready, .* \\(did you mean Ready\\?\\)",
        ),
        (["--message", "x", "--condition", "Progressing"], "--condition 'Progressing'"),
        (["--message", "x", "--reason", "Upgrade failed"], "--reason 'Upgrade failed': a condition reason is one word"),
    ],
)
def test_explain_refuses_bad_input_in_one_line(argv: list[str], fragment: str) -> None:
    with pytest.raises(UserError, match=fragment) as err:
        run_explain(explain_args("--kind", "HelmRelease", *argv))
    assert "\n" not in str(err.value)
