"""The alert coverage table: per fault and recovery, what paged and when, blind spots and noise (summary entries)."""

from __future__ import annotations

from typing import Any

from reports_support import entry

from reports import alert_coverage
from reports.matrix import build_cells

STUCK = "FluxKustomizationStuck"


def run(fault: str, recovery: str, alerts: list[dict[str, Any]] | None, notes: tuple[str, ...] = ()) -> dict[str, Any]:
    out = entry(fault, recovery, {"injected": 0.0, "visible": 1.0})
    if alerts is not None:
        out["alerts"] = alerts
    out["notes"] = list(notes)
    return out


def test_the_table_shows_every_fault_and_recovery_with_what_paged_blind_spots_and_noise() -> None:
    entries = [
        run("selector-change", "none", [{"name": STUCK, "fired_after": 431.2, "resolved_after": 560.0,
                                         "due_after": 422}]),
        run("selector-change", "none", [{"name": STUCK, "fired_after": 440.0, "resolved_after": None,
                                         "due_after": 421}]),
        run("selector-change", "operator", []),
        run("dependency-cycle", "none", [{"name": "FluxDependencyCycle", "fired_after": None, "resolved_after": None,
                                          "due_after": 63.0}]),
        run("dependency-cycle", "operator", [{"name": STUCK, "fired_after": 40.0, "resolved_after": 70.0}]),
        run("source-outage", "operator", None),
    ]  # fmt: skip
    text = alert_coverage.render_text(build_cells(entries))
    lines = text.splitlines()
    assert lines[0].split() == ["FAULT", "RECOVERY", "MONITORED", "PAGED", "(runs)", "first", "page,", "resolved",
                                "BLIND", "SPOTS", "NOISE"]  # fmt: skip
    cycle_none, cycle_operator, selector_none, selector_operator, outage = lines[1:6]
    assert "FluxDependencyCycle" in cycle_none and cycle_none.split()[-1] == "0" and "none" in cycle_none
    assert f"{STUCK} (1/1 runs) 40s, resolved 70s" in cycle_operator and cycle_operator.split()[-1] == "1"
    assert f"{STUCK} (2/2 runs) 440s, resolved 560s (1 unresolved)" in selector_none
    assert selector_operator.split() == ["operator", "1/1", "none", "-", "0"]
    assert outage.split() == ["source-outage", "operator", "0/1", "not", "monitored"]
    assert lines[-1].startswith("not checked by any run: FluxRecoveryNoLeader: names no object")
    html = alert_coverage.render_html(build_cells(entries))
    assert html.count("<tr>") == 6 and "background:#ffebee;" in html and "FluxSourcePinned" in html
    assert alert_coverage.has_alerts(build_cells(entries))
    assert not alert_coverage.has_alerts(build_cells([run("source-outage", "operator", None)]))


def test_results_that_used_other_rules_say_so() -> None:
    scaled = run(
        "selector-change", "none", [], notes=("alerts from the rules of x.yaml, not the operator's shipped rules",)
    )
    assert "1/1 (scaled rules)" in alert_coverage.render_text(build_cells([scaled]))
    assert "scaled rules, not as shipped" in alert_coverage.render_html(build_cells([scaled]))
