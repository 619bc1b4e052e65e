"""Recovery SLO files (validation naming file and key path, budget precedence), verdicts and timelines."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from assertions.slo import Budget, Limit, SloFile, load, parse
from assertions.timeline import PHASES, RECOVERY_PHASES, Timeline
from assertions.verdict import percentile
from foundation.errors import UserError
from injectors.registry import FAULTS

SHIPPED = Path(__file__).resolve().parents[2] / "scenarios" / "slo.yaml"
KNOWN = ("selector-change", "source-outage", "helm-upgrade-broken")


def slo_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "slo.yaml"
    path.write_text(textwrap.dedent(text))
    return path


# The least an SLO file must hold: budgets (an empty file would invent them).
MINIMAL = {"defaults": {"ttr": {"max": 60}}}


def budgeted(raw: Any) -> Any:
    """`raw` with default budgets unless it has budgets of its own (so a test is about its other keys)."""
    if isinstance(raw, dict) and "defaults" not in raw and "scenarios" not in raw:
        return {**MINIMAL, **raw}
    return raw


def refused(raw: Any) -> str:
    """The one-line message of the UserError a raw SLO document gets."""
    with pytest.raises(UserError) as info:
        parse(budgeted(raw), "team-slo.yaml", KNOWN)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("team-slo.yaml: ")
    return message.removeprefix("team-slo.yaml: ")


# -- SLO files: the shipped one and budget lookup -------------------------------------------------------


def test_the_shipped_slo_file_is_valid_for_the_catalog() -> None:
    slo = load(SHIPPED, FAULTS)
    assert set(slo.profiles) == {"quick", "nightly", "release", "staged"}
    assert slo.profile("nightly").recoveries == ("none", "flux-native", "flux-tuned", "operator", "staged")
    assert slo.profile("staged").faults == tuple(f for f in FAULTS if f.startswith("staged-"))
    assert slo.budget("staged-unhealthy-rollout", "staged").measures["reached"] == {"production": 0}
    assert slo.profile("quick").faults is None  # all
    # Every fault of the catalog has budgets of its own, each within the defaults' wait.
    assert set(slo.scenarios) == set(FAULTS)
    for fault in FAULTS:
        budget = slo.budget(fault, "operator")
        assert budget.ttr.max is not None and budget.ttr.max <= budget.give_up_after


BUDGETS = {
    "defaults": {"ttr": {"max": 100, "p95": 80}, "detect": {"max": 30}, "wait": 300},
    "scenarios": {
        "selector-change": {
            "ttr": {"max": 90},
            "detect": {"p95": 10},
            "recoveries": {"none": {"ttr": {"max": 600}, "wait": 900}, "operator": {"detect": {"max": 12}}},
        },
        "source-outage": None,
    },
}


@pytest.mark.parametrize(
    ("fault", "recovery", "ttr", "detect", "wait"),
    [
        ("selector-change", "none", Limit(600, 80), Limit(30, 10), 900),  # recoveries.none > scenario > defaults
        ("selector-change", "operator", Limit(90, 80), Limit(12, 10), 300),
        ("selector-change", "flux-native", Limit(90, 80), Limit(30, 10), 300),  # scenario > defaults
        ("source-outage", "operator", Limit(100, 80), Limit(30, None), 300),  # an empty scenario: defaults
        ("helm-upgrade-broken", "none", Limit(100, 80), Limit(30, None), 300),  # no scenario: defaults
    ],
)
def test_budget_precedence(fault: str, recovery: str, ttr: Limit, detect: Limit, wait: float) -> None:
    budget = parse(BUDGETS, "slo.yaml", KNOWN).budget(fault, recovery)
    assert (budget.ttr, budget.detect, budget.give_up_after) == (ttr, detect, wait)


def test_a_p95_above_max_after_merging_is_refused() -> None:
    raw = {"defaults": {"ttr": {"max": 100, "p95": 80}}, "scenarios": {"selector-change": {"ttr": {"max": 60}}}}
    with pytest.raises(UserError, match=r"slo.yaml: scenarios.selector-change: ttr p95 \(80\) exceeds max \(60\)"):
        parse(raw, "slo.yaml", KNOWN)


def test_give_up_after_defaults_to_twice_the_ttr_max() -> None:
    with pytest.raises(UserError, match=r"without ttr\.max has no wait"):
        _ = Budget().give_up_after
    assert Budget(ttr=Limit(max=45)).give_up_after == 90
    assert Budget(ttr=Limit(max=45), wait=50).give_up_after == 50
    slo = parse({"scenarios": {"selector-change": {"recoveries": {"none": {"ttr": {"max": 500}}}}}}, "s", KNOWN)
    assert slo.budget("selector-change", "none").give_up_after == 1000
    with pytest.raises(UserError, match="s: no budget for selector-change under operator"):
        slo.budget("selector-change", "operator")


@pytest.mark.parametrize("text", ["", "# nothing yet\n", "profiles: {quick: {}}\n", "defaults: {}\nscenarios: {}\n"])
def test_a_file_without_budgets_is_refused_not_filled_with_invented_ones(tmp_path: Path, text: str) -> None:
    path = slo_file(tmp_path, text)
    with pytest.raises(UserError, match=rf"^{path}: top level: no budgets \(neither defaults nor scenarios\)"):
        load(path, KNOWN)


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf", ".NaN"])
def test_non_finite_seconds_are_refused(tmp_path: Path, value: str) -> None:
    for text in (f"defaults: {{ttr: {{max: {value}}}}}\n", f"defaults: {{wait: {value}}}\n"):
        with pytest.raises(UserError, match=r"line 1: \S+ is not a finite number"):
            load(slo_file(tmp_path, text), KNOWN)


def test_no_budget_value_is_built_in() -> None:
    """A cell the SLO file gives no TTR budget is an error naming it, never judged against an invented number."""
    with pytest.raises(UserError, match="x: no budget for selector-change under operator"):
        SloFile("x").budget("selector-change", "operator")
    assert Budget().to_json() == {"ttr": {"max": None, "p95": None}, "detect": {"max": None, "p95": None}, "wait": None}


def test_profiles_with_their_defaults() -> None:
    raw = {
        "profiles": {
            "smoke": {},
            "ci": {"repeat": 3, "recoveries": ["none", "command:./recover.sh --fast"], "faults": ["source-outage"]},
            "all": {"recoveries": "all", "faults": "all"},
        }
    }
    slo = parse(budgeted(raw), "slo.yaml", KNOWN)
    smoke, ci, every = slo.profile("smoke"), slo.profile("ci"), slo.profile("all")
    assert (smoke.repeat, smoke.recoveries, smoke.faults) == (1, ("operator",), None)
    assert (ci.repeat, ci.recoveries, ci.faults) == (3, ("none", "command:./recover.sh --fast"), ("source-outage",))
    assert every.recoveries == ("none", "flux-native", "flux-tuned", "operator", "staged") and every.faults is None


def test_an_unknown_profile_names_the_file_and_the_profiles() -> None:
    slo = parse(budgeted({"profiles": {"quick": {}, "ci": {}}}), "team-slo.yaml", KNOWN)
    with pytest.raises(UserError, match=r"^team-slo\.yaml: unknown profile 'nightly' \(profiles: ci, quick\)$"):
        slo.profile("nightly")
    with pytest.raises(UserError, match=r"\(profiles: none defined\)$"):
        parse(MINIMAL, "team-slo.yaml", KNOWN).profile("quick")


@given(max_=st.floats(0.001, 6e5, allow_nan=False), p95=st.floats(0.001, 6e5, allow_nan=False), integer=st.booleans())
def test_p95_above_max_is_refused_and_anything_else_kept(max_: float, p95: float, integer: bool) -> None:
    if integer:
        max_, p95 = math.ceil(max_), math.ceil(p95)
    raw = {"scenarios": {"source-outage": {"ttr": {"max": max_, "p95": p95}}}}
    if p95 > max_:
        assert refused(raw) == f"scenarios.source-outage.ttr: p95 ({p95}) is larger than max ({max_})"
    else:
        assert parse(raw, "slo.yaml", KNOWN).budget("source-outage", "none").ttr == Limit(max_, p95)


# -- SLO files: every validation error names the file and the key path -----------------------------------


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([1, 2], "top level: expected a mapping, got list"),
        ("quick", "top level: expected a mapping, got str"),
        ({"version": 2}, "version: unsupported version 2 (this harness reads version 1)"),
        ({"defaults": [1]}, "defaults: expected a mapping, got list"),
        ({"defaults": {"ttr": 60}}, "defaults.ttr: expected a mapping, got int"),
        (
            {"defaults": {"tt": {}}},
            "defaults.tt: unknown key (expected ttr, detect, wait, serving, reporting, next_commit, reached, alerts, "
            "load)",
        ),
        ({"defaults": {"ttr": {"mean": 5}}}, "defaults.ttr.mean: unknown key (expected max, p95)"),
        ({"defaults": {"ttr": {"max": 0}}}, "defaults.ttr.max: expected a finite positive number of seconds, got 0"),
        ({"defaults": {"ttr": {"max": -5}}}, "defaults.ttr.max: expected a finite positive number of seconds, got -5"),
        (
            {"defaults": {"ttr": {"max": "1m"}}},
            "defaults.ttr.max: expected a finite positive number of seconds, got '1m'",
        ),
        (
            {"defaults": {"ttr": {"max": True}}},
            "defaults.ttr.max: expected a finite positive number of seconds, got True",
        ),
        (
            {"defaults": {"ttr": {"max": None}}},
            "defaults.ttr.max: expected a finite positive number of seconds, got None",
        ),
        (
            {"defaults": {"detect": {"p95": 0.0}}},
            "defaults.detect.p95: expected a finite positive number of seconds, got 0.0",
        ),
        ({"defaults": {"wait": 0}}, "defaults.wait: expected a finite positive number of seconds, got 0"),
        ({"defaults": {"ttr": {"max": 60, "p95": 90}}}, "defaults.ttr: p95 (90) is larger than max (60)"),
        ({"scenarios": []}, "scenarios: expected a mapping, got list"),
        ({"scenarios": {"selector-chnage": {}}}, "scenarios.selector-chnage: unknown fault (known: selector-change"),
        ({"scenarios": {"selector-change": {"ttr": {"max": -1}}}}, "scenarios.selector-change.ttr.max: expected a"),
        ({"scenarios": {"selector-change": {"speed": 1}}}, "scenarios.selector-change.speed: unknown key"),
        (
            {"scenarios": {"selector-change": {"recoveries": {"none": {"ttr": {"p95": 0}}}}}},
            "scenarios.selector-change.recoveries.none.ttr.p95: expected a finite positive number of seconds, got 0",
        ),
        (
            {"scenarios": {"selector-change": {"recoveries": {"none": {"recoveries": {}}}}}},
            "scenarios.selector-change.recoveries.none.recoveries: unknown key"
            " (expected ttr, detect, wait, serving, reporting, next_commit, reached, alerts, load)",
        ),
        (
            {"scenarios": {"selector-change": {"recoveries": ["none"]}}},
            "scenarios.selector-change.recoveries: expected a mapping, got list",
        ),
        ({"profiles": ["quick"]}, "profiles: expected a mapping, got list"),
        ({"profiles": {"quick": 1}}, "profiles.quick: expected a mapping, got int"),
        (
            {"profiles": {"quick": {"speed": 1}}},
            "profiles.quick.speed: unknown key (expected repeat, recoveries, faults, monitoring, load, baselines)",
        ),
        ({"profiles": {"quick": {"repeat": 0}}}, "profiles.quick.repeat: expected a whole number >= 1, got 0"),
        ({"profiles": {"quick": {"repeat": "3"}}}, "profiles.quick.repeat: expected a whole number >= 1, got '3'"),
        ({"profiles": {"quick": {"repeat": 1.5}}}, "profiles.quick.repeat: expected a whole number >= 1, got 1.5"),
        ({"profiles": {"quick": {"repeat": True}}}, "profiles.quick.repeat: expected a whole number >= 1, got True"),
        (
            {"profiles": {"quick": {"recoveries": "operator"}}},
            "profiles.quick.recoveries: expected a list of recovery names or 'all', got 'operator'",
        ),
        (
            {"profiles": {"quick": {"recoveries": ["operator", 3]}}},
            "profiles.quick.recoveries: expected a list of recovery names or 'all', got ['operator', 3]",
        ),
        (
            {"profiles": {"quick": {"faults": ["selector-change", "nope"]}}},
            "profiles.quick.faults: unknown fault 'nope' (known: selector-change, source-outage, helm-upgrade-broken)",
        ),
        ({"profiles": {"quick": {"faults": "some"}}}, "profiles.quick.faults: expected a list of fault names or 'all'"),
    ],
)
def test_validation_errors_name_the_key_path(raw: Any, message: str) -> None:
    assert refused(raw).startswith(message)


def test_an_unknown_top_level_key_path_is_the_key() -> None:
    expected = "defualts: unknown key (expected version, defaults, profiles, scenarios, load_profiles, noise)"
    assert refused({"defualts": {}}) == expected


@pytest.mark.parametrize(
    ("baselines", "message"),
    [
        ("none", "profiles.ci.baselines: expected a non-empty list of recovery names, got 'none'"),
        ("all", "profiles.ci.baselines: expected a non-empty list of recovery names, got 'all'"),
        (["operator"], "profiles.ci.baselines: names every recovery mode of the profile (operator): nothing would"),
        (
            ["flux-nativ"],
            "profiles.ci.baselines: unknown recovery 'flux-nativ' (known: none, flux-native, flux-tuned, operator,",
        ),
        ([], "profiles.ci.baselines: expected a non-empty list of recovery names, got []"),
    ],
)
def test_bad_profile_baselines_are_refused(baselines: Any, message: str) -> None:
    assert refused({"profiles": {"ci": {"baselines": baselines}}}).startswith(message)


def test_a_profile_names_its_baselines() -> None:
    profile = {"recoveries": ["none", "flux-native", "operator"], "baselines": ["none", "flux-native"]}
    raw = {"profiles": {"ci": profile}}
    slo = parse(budgeted(raw), "slo.yaml", KNOWN)
    assert slo.profile("ci").baselines == ("none", "flux-native")
    assert parse(budgeted({"profiles": {"ci": {}}}), "slo.yaml", KNOWN).profile("ci").baselines is None


def test_an_unknown_recovery_in_a_profile_is_refused() -> None:
    assert refused({"profiles": {"ci": {"recoveries": ["operator", "operatr"]}}}) == (
        "profiles.ci.recoveries: unknown recovery 'operatr' (known: none, flux-native, flux-tuned, operator, staged)"
    )


def test_command_and_manifest_recoveries_are_not_fault_names() -> None:
    assert refused({"profiles": {"ci": {"faults": ["command:x"]}}}).startswith(
        "profiles.ci.faults: unknown fault 'command:x' (known: "
    )


def test_an_unknown_recovery_under_a_scenario_is_refused() -> None:
    assert refused({"scenarios": {"selector-change": {"recoveries": {"operatr": {"ttr": {"max": 5}}}}}}) == (
        "scenarios.selector-change.recoveries.operatr: unknown recovery 'operatr' "
        "(known: none, flux-native, flux-tuned, operator, staged)"
    )
    raw = {"scenarios": {"selector-change": {"recoveries": {"command:./heal.sh": {"ttr": {"max": 5}}}}}}
    assert parse(raw, "slo.yaml", KNOWN).budget("selector-change", "command:./heal.sh").ttr.max == 5


def test_bad_yaml_names_the_file_and_the_line(tmp_path: Path) -> None:
    path = slo_file(
        tmp_path,
        """\
        version: 1
        defaults:
          ttr: {max: 60
        profiles:
          quick: {repeat: 1}
        """,
    )
    with pytest.raises(UserError) as info:
        load(path, KNOWN)
    message = str(info.value)
    assert message.startswith(f"{path}: not valid YAML at line 4: ")
    assert "\n" not in message


def test_a_tab_indented_file_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "slo.yaml"
    path.write_text("defaults:\n\tttr: {max: 60}\n")
    with pytest.raises(UserError, match=rf"^{path}: not valid YAML at line 2: "):
        load(path, KNOWN)


def test_a_missing_file_names_the_file_and_the_option(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(UserError) as info:
        load(missing, KNOWN)
    assert str(info.value) == f"{missing}: cannot read the SLO file (No such file or directory); pass --slo FILE"


def test_a_directory_is_not_an_slo_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=rf"^{tmp_path}: cannot read the SLO file \(Is a directory\)"):
        load(tmp_path, KNOWN)


def test_load_validates_like_parse(tmp_path: Path) -> None:
    path = slo_file(tmp_path, "scenarios:\n  selector-change:\n    ttr: {max: 0}\n")
    with pytest.raises(UserError) as info:
        load(path, KNOWN)
    assert str(info.value) == (
        f"{path}: scenarios.selector-change.ttr.max: expected a finite positive number of seconds, got 0 "
        "(at most 604800)"
    )
    assert yaml.safe_load(path.read_text())  # the file itself is fine YAML


# -- verdicts --------------------------------------------------------------------------------------------

BUDGET = Budget(ttr=Limit(max=60.0), detect=Limit(max=30.0), wait=120.0)


def timeline(**marks: float) -> Timeline:
    t = Timeline()
    for phase, at in marks.items():
        t.mark(phase, at)
    return t


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(10, 0, -1)]
    assert percentile(values, 95) == 10.0
    assert percentile(values, 50) == 5.0
    assert percentile(values, 0) == 1.0
    assert percentile([7.0], 95) == 7.0
    assert percentile([4.0, 1.0, 3.0, 2.0], 30) == 2.0  # rank ceil(1.2) = 2


@given(values=st.lists(st.floats(0, 1e6), min_size=1, max_size=50), q1=st.floats(0, 100), q2=st.floats(0, 100))
def test_percentile_is_an_observed_value_and_monotonic(values: list[float], q1: float, q2: float) -> None:
    low, high = sorted((q1, q2))
    assert percentile(values, low) in values
    assert percentile(values, low) <= percentile(values, high) <= max(values)


# -- timelines -------------------------------------------------------------------------------------------


def test_the_first_mark_wins() -> None:
    t = Timeline()
    assert t.mark("visible", 5.0) == 5.0
    assert t.mark("visible", 7.0) == 5.0
    assert t.marks == {"visible": 5.0} and t.has("visible") and not t.has("recovered")


def test_an_unknown_phase_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^unknown phase 'healed'; phases are injected, visible, detected, acted"):
        Timeline().mark("healed")


def test_phase_seconds_between_reached_phases_in_phase_order() -> None:
    t = timeline(recovered=20.0, injected=10.0, acted=15.0)  # marked out of order
    assert t.phase_seconds() == {"acted": 5.0, "recovered": 5.0}
    assert timeline(visible=3.0).phase_seconds() == {}


def test_ttr_and_detection_need_their_marks() -> None:
    t = Timeline()
    assert t.ttr is None and t.time_to_detect is None
    t.mark("visible", 3.0)
    assert t.since_injected("visible") is None  # nothing injected
    t.mark("injected", 1.0)
    assert t.time_to_detect == 2.0 and t.ttr is None
    t.mark("detected", 4.5)
    assert t.time_to_detect == 3.5
    t.mark("recovered", 11.0)
    assert t.ttr == 10.0


def test_a_mark_without_a_time_uses_the_monotonic_clock_and_sets_the_wall_start() -> None:
    t = Timeline()
    assert t.wall_start is None
    at = t.mark("injected")
    assert at > 0 and t.wall_start is not None
    wall = t.wall_start
    t.mark("visible")
    assert t.wall_start == wall


def test_records_and_json() -> None:
    t = timeline(injected=1.0)
    t.record_condition("Kustomization/flux-system/app", {"type": "Ready", "status": "False"})
    t.record_event({"reason": "RecoveryAction"})
    t.mark("recovered", 3.0)
    data = t.to_json()
    assert data["since_injected"] == {"injected": 0.0, "recovered": 2.0}
    assert data["ttr_seconds"] == 2.0 and data["time_to_detect_seconds"] is None
    assert data["conditions"][0]["object"] == "Kustomization/flux-system/app"
    assert data["conditions"][0]["type"] == "Ready" and "at" in data["conditions"][0]
    assert data["events"][0]["reason"] == "RecoveryAction"


@given(times=st.lists(st.floats(0, 1e6), min_size=len(PHASES), max_size=len(PHASES)))
def test_phase_seconds_add_up_to_the_ttr(times: list[float]) -> None:
    """The alert track, whenever it happened, neither splits a recovery phase nor adds to the TTR."""
    recovery = sorted(times[: len(RECOVERY_PHASES)])
    alerted, resolved = times[len(RECOVERY_PHASES)] % 1e3, times[len(RECOVERY_PHASES) + 1] % 1e3
    marks = dict(zip(RECOVERY_PHASES, recovery, strict=True))
    alert_marks = {"alerted": recovery[0] + alerted, "alert-resolved": recovery[0] + alerted + resolved}
    t = timeline(**marks, **alert_marks)
    assert t.ttr is not None
    seconds = t.phase_seconds()
    assert sum(seconds[p] for p in RECOVERY_PHASES[1:]) == pytest.approx(t.ttr, abs=0.01)
    assert seconds["alerted"] == pytest.approx(alerted, abs=0.01)
    assert seconds["alert-resolved"] == pytest.approx(resolved, abs=0.01)
    assert timeline(**marks).phase_seconds() == {p: s for p, s in seconds.items() if p in RECOVERY_PHASES}
