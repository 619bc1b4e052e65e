"""The baseline store: a stored baseline run is reused only while its key (pins, fault, mode, SLO entry, provider,
measure) holds and it is young; a changed key, an old run, --fresh-baselines or a bad store file mean measuring
again (a bad file is one warning naming it, never a crash); the gate refuses a reused run whose key no longer
matches. No cluster: the chaos suite's `announced` fixture is replaced by one that says the cell was measured."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
from reports_support import entry, recovered, write_json

import scenarios
from assertions.schema import entry_problem
from assertions.slo import load
from clusters import pins
from injectors import baseline_key
from injectors.registry import FAULTS, fault
from reports.gate import run_gate
from scenarios.baseline_store import BaselineStore, BaselineStoreWarning

pytest_plugins = ("pytester",)

NOW = datetime(2030, 1, 8, 12, 0, tzinfo=UTC)
WEEK = 7 * 24 * 3600.0
FAULT = "selector-change"


def parts_for(recovery: str = "none", budget: dict[str, Any] | None = None) -> dict[str, Any]:
    run = entry(FAULT, recovery, recovered(10.0))
    return baseline_key.parts(fault(FAULT), recovery, budget or run["budget"], "local", False)


def stored(tmp_path: Path, recovery: str = "none", when: datetime = NOW, **store: Any) -> BaselineStore:
    """A store holding one measured run of selector-change under `recovery`."""
    keeper = BaselineStore(tmp_path / "store", WEEK, **store)
    keeper.keep(entry(FAULT, recovery, recovered(10.0)), parts_for(recovery), "nightly-41", when)
    return keeper


def bump_kustomize_controller(monkeypatch: pytest.MonkeyPatch) -> None:
    bumped = tuple(
        dataclasses.replace(c, version="v1.9.4") if c.name == "kustomize-controller" else c for c in pins.COMPONENTS
    )
    monkeypatch.setattr(pins, "COMPONENTS", bumped)


def test_a_stored_run_with_the_same_key_is_reused_and_says_so(tmp_path: Path) -> None:
    found = stored(tmp_path).lookup(FAULT, "none", 1, parts_for(), NOW + timedelta(days=6))
    assert found.entry is not None, found.why
    reused = found.entry["reused"]
    assert (reused["measured_at"], reused["run"], reused["key"]) == (
        "2030-01-08T12:00:00Z",
        "nightly-41",
        baseline_key.key_of(parts_for()),
    )
    assert entry_problem(found.entry, "reused") is None  # a valid summary entry


def test_a_bumped_pin_means_measuring_again_and_names_the_pin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keeper = stored(tmp_path)
    bump_kustomize_controller(monkeypatch)
    found = keeper.lookup(FAULT, "none", 1, parts_for(), NOW)
    assert found.entry is None
    assert "pin kustomize-controller v1.9.3 -> v1.9.4" in found.why


def test_a_changed_fault_definition_means_measuring_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keeper = stored(tmp_path)
    monkeypatch.setattr(fault(FAULT), "prove_within", 5.0)  # a parameter of this fault changed
    found = keeper.lookup(FAULT, "none", 1, parts_for(), NOW)
    assert found.entry is None and f"fault {FAULT}'s definition changed" in found.why


def test_a_fault_class_of_other_source_has_another_definition() -> None:
    original = fault(FAULT)

    class Edited(type(original)):  # type: ignore[misc]
        prove_within = 5.0

    assert baseline_key.fault_digest(Edited()) != baseline_key.fault_digest(original)


def test_the_slo_entry_and_the_mode_are_in_the_key(tmp_path: Path) -> None:
    keeper = stored(tmp_path)
    tighter = {**parts_for()["slo"], "ttr": {"max": 30.0, "p95": None}}
    found = keeper.lookup(FAULT, "none", 1, parts_for(budget=tighter), NOW)
    assert found.entry is None and "slo.ttr.max 60.0 -> 30.0" in found.why
    modes = {baseline_key.digest(baseline_key.mode_settings(m)) for m in baseline_key.STORABLE_MODES}
    assert len(modes) == len(baseline_key.STORABLE_MODES)


def test_an_old_run_or_fresh_baselines_mean_measuring_again(tmp_path: Path) -> None:
    old = stored(tmp_path).lookup(FAULT, "none", 1, parts_for(), NOW + timedelta(days=7, seconds=1))
    assert old.entry is None and "older than" in old.why
    fresh = stored(tmp_path, fresh=True).lookup(FAULT, "none", 1, parts_for(), NOW)
    assert fresh.entry is None and fresh.why == "--fresh-baselines"


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (lambda text, data: "{not json", "not valid JSON"),
        (lambda text, data: text.replace('"version": 1', '"version": 1, "version": 1'), "duplicate key"),
        (lambda text, data: json.dumps({**data, "run": 5}), "run"),
        (lambda text, data: json.dumps({**data, "extra": True}), "extra: unknown key"),
        (lambda text, data: json.dumps({**data, "entry": {**data["entry"], "ttr_seconds": "fast"}}), "ttr_seconds"),
        (lambda text, data: json.dumps({**data, "entry": {**data["entry"], "recovery": "flux-native"}}), "filed as"),
        (lambda text, data: text.replace('"2030-01-08T12:00:00Z"', '"last tuesday"'), "measured_at"),
    ],
)
def test_a_bad_store_file_is_one_warning_naming_it_and_the_cell_is_measured(
    tmp_path: Path, edit: Any, fragment: str
) -> None:
    keeper = stored(tmp_path)
    path = keeper.path(FAULT, "none", 1)
    text = path.read_text()
    path.write_text(edit(text, json.loads(text)))
    with pytest.warns(BaselineStoreWarning) as caught:
        found = keeper.lookup(FAULT, "none", 1, parts_for(), NOW)
    assert found.entry is None
    assert len(caught) == 1
    message = str(caught[0].message)
    assert str(path) in message and fragment in message and "\n" not in message


def test_a_key_that_is_not_its_parts_digest_is_not_reused(tmp_path: Path) -> None:
    keeper = stored(tmp_path)
    path = keeper.path(FAULT, "none", 1)
    data = json.loads(path.read_text())
    data["parts"]["provider"] = "kind"  # the parts edited, the key left as it was
    path.write_text(json.dumps(data))
    assert keeper.lookup(FAULT, "none", 1, parts_for(), NOW).entry is None


# -- the chaos suite ----------------------------------------------------------------------------------------------

SUITE = f"""
def test_fault(run_fault):
    run_fault({FAULT!r})
"""
CONFTEST = """
import pytest

pytest_plugins = ["clusters.pytest_plugin", "scenarios.plugin", "reports.plugin"]


@pytest.fixture(scope="session")
def announced():
    pytest.skip("measured")
"""


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.Pytester:
    for name in ("RESILIENCE_PROFILE", "RESILIENCE_BASELINE_STORE", "RESILIENCE_FRESH_BASELINES", "RESILIENCE_LOAD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RESILIENCE_STATE", str(tmp_path / "state"))
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.delenv("RESILIENCE_MONITORING", raising=False)
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_chaos=SUITE)
    return pytester


def chaos(pytester: pytest.Pytester, tmp_path: Path, *args: str) -> tuple[pytest.RunResult, list[dict[str, Any]]]:
    summary = tmp_path / "summary.json"
    summary.unlink(missing_ok=True)
    result = pytester.runpytest(
        "-p", "no:cacheprovider", f"--resilience-summary={summary}", f"--run-dir={tmp_path / 'run'}", *args
    )
    return result, json.loads(summary.read_text()) if summary.exists() else []


@pytest.mark.process  # the reports plugin's charts start matplotlib's font cache
def test_the_suite_reuses_a_baseline_and_always_runs_the_operator(suite: pytest.Pytester, tmp_path: Path) -> None:
    shipped = Path(scenarios.__file__).with_name("slo.yaml")  # the suite's default SLO file
    budget = load(shipped, FAULTS).budget(FAULT, "none").to_json()
    store = BaselineStore(tmp_path / "store", WEEK)
    run = {**entry(FAULT, "none", recovered(10.0)), "budget": budget, "provider": "local"}
    store.keep(run, parts_for(budget=budget), "nightly-41", datetime.now(UTC))

    result, entries = chaos(suite, tmp_path, "--recovery", "none,operator", f"--baseline-store={store.root}")
    result.assert_outcomes(passed=1, skipped=1)  # none reused; the operator measured (skipped by the fake cluster)
    assert [e["recovery"] for e in entries] == ["none"]
    assert entries[0]["reused"]["run"] == "nightly-41" and entries[0]["test"].endswith("test_fault[none-r1]")
    assert "REUSED" in result.stdout.str() and "run nightly-41" in result.stdout.str()
    assert "baseline store: 1 cell(s) reused, 0 measured" in result.stdout.str()

    result, entries = chaos(
        suite, tmp_path, "--recovery", "none", f"--baseline-store={store.root}", "--fresh-baselines"
    )
    result.assert_outcomes(skipped=1)  # measured again
    assert entries == []
    assert "baseline store: 0 cell(s) reused, 1 measured (1 --fresh-baselines)" in result.stdout.str()


def test_a_bad_max_age_is_a_usage_error_naming_the_option(suite: pytest.Pytester, tmp_path: Path) -> None:
    result, _ = chaos(suite, tmp_path, "--recovery", "none", "--baseline-max-age", "a week")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*Invalid baseline max age 'a week' from --baseline-max-age*"])


# -- the gate -----------------------------------------------------------------------------------------------------


def reused_entry(parts: dict[str, Any]) -> dict[str, Any]:
    run = entry(FAULT, "none", recovered(10.0), baselines=("none",))
    record = {"key": baseline_key.key_of(parts), "parts": parts, "measured_at": "2030-01-08T12:00:00Z"}
    return {**run, "reused": {**record, "run": "nightly-41", "store": "/var/baselines"}}


def gate(capsys: pytest.CaptureFixture[str], tmp_path: Path, entries: list[dict[str, Any]]) -> tuple[int, str]:
    code = run_gate(write_json(tmp_path / "summary.json", entries))
    return code, capsys.readouterr().out


def test_the_gate_shows_reused_cells_from_when_and_passes_a_matching_key(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    operator = entry(FAULT, "operator", recovered(10.0), baselines=("none",))
    code, out = gate(capsys, tmp_path, [reused_entry(parts_for()), operator])
    assert code == 0, out
    assert "REUSED" in out and "1/1 from 2030-01-08T12:00:00Z run nightly-41 key" in out


def test_the_gate_refuses_a_reused_cell_whose_key_no_longer_matches(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorded = reused_entry(parts_for())
    operator = entry(FAULT, "operator", recovered(10.0), baselines=("none",))
    bump_kustomize_controller(monkeypatch)
    junit = tmp_path / "gate.xml"
    code = run_gate(write_json(tmp_path / "summary.json", [recorded, operator]), junit_path=junit)
    out = capsys.readouterr().out
    assert code == 1
    assert "invalid: reused selector-change x none r1" in out
    assert "pin kustomize-controller v1.9.3 -> v1.9.4" in out
    assert out.splitlines()[-2].startswith("gate: FAIL - invalid: 1 reused baseline run(s) whose key no longer")
    case = ElementTree.parse(junit).find(".//testcase[@name='reused-baselines']")
    assert case is not None and case.find("failure") is not None


def test_the_gate_refuses_a_reused_key_that_is_not_its_parts_digest(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    forged = reused_entry(parts_for())
    forged["reused"]["parts"] = {**forged["reused"]["parts"], "provider": "kind"}
    operator = entry(FAULT, "operator", recovered(10.0), baselines=("none",))
    code, out = gate(capsys, tmp_path, [forged, operator])
    assert code == 1 and "its key is not the digest of its recorded parts" in out
