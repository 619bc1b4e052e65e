"""Every shipped alert has a runbook a person can follow, and the operator's explanations and Events lead to it."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitoring.facts.rules import rules
from recovery import events, runbooks
from recovery.defaults import default_patterns
from recovery.explain import explain, text

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = (
    "## What it means",
    "## Confirm it",
    "## What the operator already did",
    "## Manual fix",
    "## Hand control back",
)


@pytest.mark.parametrize("alert", sorted(rules()))
def test_each_rule_links_a_runbook_with_every_section(alert: str) -> None:
    url = rules()[alert].runbook_url
    assert url == f"docs/runbooks/{alert}.md" and runbooks.for_alert(alert) == url
    body = (ROOT / url).read_text()
    assert body.startswith(f"# {alert}\n")
    assert [s for s in SECTIONS if s not in body] == []
    for link in [part.split(")")[0] for part in body.split("](")[1:]]:
        assert (ROOT / url).parent.joinpath(link).is_file(), f"{url} links {link}, which does not exist"


def test_no_runbook_without_its_alert() -> None:
    assert sorted(p.stem for p in (ROOT / "docs" / "runbooks").glob("*.md")) == sorted(rules())


@pytest.mark.parametrize(
    ("kind", "message", "runbook"),
    [
        (
            "Kustomization",
            'Deployment/app/web dry-run failed (Invalid): Deployment.apps "web" is invalid: spec.selector: '
            "Invalid value: {}: field is immutable",
            "docs/runbooks/FluxKustomizationStuck.md",
        ),
        ("Kustomization", "dependency 'flux-system/root' is not ready", "docs/runbooks/FluxDependencyDeadlock.md"),
        ("HelmRelease", "dependency 'app/db' is not ready", "docs/runbooks/FluxHelmReleaseDependencyDeadlock.md"),
        (
            "HelmRelease",
            "Helm upgrade failed for release app/web with chart web@2.0.0: boom",
            "docs/runbooks/FluxHelmReleaseStuck.md",
        ),
        ("Kustomization", "something nobody matches", "docs/runbooks/FluxKustomizationStuck.md"),
    ],
)
def test_explain_names_the_runbook_of_the_failure(kind: str, message: str, runbook: str) -> None:
    out = explain(kind, message, default_patterns())
    assert out["runbook"] == runbook
    assert f"Runbook: {runbook} " in text(out)


def test_escalation_and_cycle_events_name_their_runbook_even_when_the_message_is_cut() -> None:
    obj = {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization", "metadata": {"name": "a"}}
    body = events.event_body(obj, events.ESCALATED, "x" * 5000, warning=True, instance="test")
    assert (
        body["message"].endswith("... Runbook: docs/runbooks/FluxRecoveryEscalated.md") and len(body["message"]) <= 1024
    )
    cycle = events.event_body(obj, events.CYCLE, "a -> b -> a", warning=True, instance="test")
    assert cycle["message"] == "a -> b -> a Runbook: docs/runbooks/FluxDependencyCycle.md"
    action = events.event_body(obj, events.ACTION, "recreated", warning=False, instance="test")
    assert action["message"] == "recreated"
