"""`resilience gate`: exit codes and table against tight and loose SLO files, recorded budgets, baselines, p95 over
repeats, invalid and not-recovered runs, JUnit output, and bad input (one line, exit 2)."""

from __future__ import annotations

import os
import stat
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from reports_support import NOT_RECOVERED, entry, recovered, write_json, write_slo

from reports import summary as summary_file
from reports.cli import baseline_modes
from resilience.cli import main

OPERATOR_MARKS = {"injected": 0.0, "visible": 1.9, "detected": 2.4, "acted": 3.1, "recovered": 14.8}


def gate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["gate", *args])
    out, err = capsys.readouterr()
    return code, out, err


def row(out: str, fault: str, recovery: str) -> str:
    """The table row of one cell (the fault name is printed on its first row only)."""
    current = None
    for line in out.splitlines():
        cols = line.split()
        if not cols:
            continue
        if not line.startswith(" "):
            current, cols = cols[0], cols[1:]
        if current == fault and cols and cols[0] == recovery:
            return line
    raise AssertionError(f"no row {fault} / {recovery} in:\n{out}")


@pytest.fixture
def passing_summary(tmp_path: Path) -> Path:
    """Three faults, all within their recorded budgets (TTR 14.8s and 28s; budget max 60s)."""
    return write_json(
        tmp_path / "summary.json",
        [
            entry("selector-change", "operator", OPERATOR_MARKS),
            entry("selector-change", "flux-native", recovered(28.0)),
            entry("helm-upgrade-failed", "operator", recovered(20.0), family="helm"),
        ],
    )


TIGHT = {"defaults": {"ttr": {"max": 10}, "wait": 600}}
LOOSE = {"defaults": {"ttr": {"max": 300}, "wait": 900}}


def test_met_budgets_pass(capsys: pytest.CaptureFixture[str], passing_summary: Path) -> None:
    code, out, _ = gate(capsys, "--summary", str(passing_summary))
    assert code == 0, out
    assert "PASS" in row(out, "selector-change", "operator") and "14.8s" in row(out, "selector-change", "operator")
    assert "60.0s / -" in row(out, "helm-upgrade-failed", "operator")
    assert "gate: PASS - 3 fault x recovery cell(s), none over budget" in out
    assert "budgets as recorded with each run" in out


def test_tight_slo_file_fails_the_same_runs(
    capsys: pytest.CaptureFixture[str], passing_summary: Path, tmp_path: Path
) -> None:
    tight = write_slo(tmp_path / "tight.yaml", TIGHT)
    code, out, _ = gate(capsys, "--summary", str(passing_summary), "--slo", str(tight))
    assert code == 1, out
    line = row(out, "selector-change", "operator")
    assert "BREACH" in line and "TTR 14.8s > max 10s" in line and "10.0s / -" in line
    assert "gate: FAIL - 3 breach of 3 fault x recovery cell(s)" in out
    assert f"budgets from {tight}" in out


def test_a_loose_slo_file_cannot_pass_a_recorded_breach(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The worse of the recorded and the re-judged verdict counts: another SLO file can fail a run, never pass it."""
    summary = write_json(tmp_path / "summary.json", [entry("selector-change", "flux-native", recovered(75.2))])
    code, out, _ = gate(capsys, "--summary", str(summary))
    assert code == 1 and "TTR 75.2s > max 60s" in out
    loose = write_slo(tmp_path / "loose.yaml", LOOSE)
    code, out, _ = gate(capsys, "--summary", str(summary), "--slo", str(loose))
    assert code == 1, out
    assert "recorded breach (TTR 75.2s > max 60s); the judge says pass" in row(out, "selector-change", "flux-native")


def test_per_fault_and_per_recovery_budgets_of_the_slo_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    summary = write_json(
        tmp_path / "summary.json",
        [
            entry("selector-change", "operator", recovered(30.0)),
            entry("selector-change", "none", recovered(400.0), ttr_max=600),
        ],
    )
    slo = write_slo(
        tmp_path / "slo.yaml",
        {
            "defaults": {"ttr": {"max": 60}},
            "scenarios": {"selector-change": {"ttr": {"max": 20}, "recoveries": {"none": {"ttr": {"max": 600}}}}},
        },
    )
    code, out, _ = gate(capsys, "--summary", str(summary), "--slo", str(slo))
    assert code == 1
    assert "TTR 30.0s > max 20s" in row(out, "selector-change", "operator")
    assert "PASS" in row(out, "selector-change", "none") and "600.0s / -" in row(out, "selector-change", "none")


def test_baseline_modes_are_shown_but_never_fail(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    summary = write_json(
        tmp_path / "summary.json",
        [
            entry("selector-change", "none", NOT_RECOVERED, ttr_max=120),
            entry("selector-change", "operator", OPERATOR_MARKS),
        ],
    )
    code, out, _ = gate(capsys, "--summary", str(summary))
    assert code == 1
    assert "NOT-RECOVERED" in row(out, "selector-change", "none")
    assert "not recovered in 240s" in row(out, "selector-change", "none")
    code, out, _ = gate(capsys, "--summary", str(summary), "--baseline", "none")
    assert code == 0, out
    assert "NOT-RECOVERED (baseline)" in row(out, "selector-change", "none")
    assert "(1 baseline cell(s) not judged)" in out
    # a baseline only excuses its own mode
    code, out, _ = gate(capsys, "--summary", str(summary), "--baseline", "flux-native", "--slo", str(_tight(tmp_path)))
    assert code == 1
    assert "note: no runs under baseline mode(s) flux-native" in out


def test_the_gate_never_erases_a_data_loss_breach(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The runner turned a pass into a breach for lost data; re-judging by timings alone made it PASS again."""
    lost = entry("selector-change", "operator", OPERATOR_MARKS, data_violations=["Secret/app/db was deleted"])
    assert lost["verdict"] == "breach"
    summary = write_json(tmp_path / "summary.json", [lost])
    for args in ((), ("--slo", str(write_slo(tmp_path / "loose.yaml", LOOSE))), ("--baseline", "operator")):
        code, out, _ = gate(capsys, "--summary", str(summary), *args)
        assert code == 1, out
        assert "user data not preserved: Secret/app/db was deleted" in row(out, "selector-change", "operator")


def test_the_gate_defaults_to_the_baselines_the_suite_recorded(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """pytest passed a nightly run with its `none` cells as baselines; the gate must judge them the same way."""
    summary = write_json(
        tmp_path / "summary.json",
        [
            entry("selector-change", "none", NOT_RECOVERED, ttr_max=120, baselines=("none",)),
            entry("selector-change", "operator", OPERATOR_MARKS, baselines=("none",)),
        ],
    )
    code, out, _ = gate(capsys, "--summary", str(summary))
    assert code == 0, out
    assert "NOT-RECOVERED (baseline)" in row(out, "selector-change", "none")
    code, out, _ = gate(capsys, "--summary", str(summary), "--baseline", "flux-native")
    assert code == 1, out  # an explicit --baseline replaces the recorded ones


def _tight(tmp_path: Path) -> Path:
    return write_slo(tmp_path / "tight.yaml", TIGHT)


def test_p95_over_repeats(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    runs = [entry("selector-change", "operator", recovered(t), repeat=i + 1) for i, t in enumerate((10.0, 12.0, 40.0))]
    summary = write_json(tmp_path / "summary.json", runs)
    strict = write_slo(tmp_path / "p95.yaml", {"defaults": {"ttr": {"max": 60, "p95": 20}}})
    code, out, _ = gate(capsys, "--summary", str(summary), "--slo", str(strict))
    assert code == 1, out
    line = row(out, "selector-change", "operator")
    assert "BREACH" in line and "p95 TTR 40.0s > p95 20s over 3 runs" in line
    assert "40.0s" in line and "60.0s / 20.0s" in line
    lenient = write_slo(tmp_path / "p95-loose.yaml", {"defaults": {"ttr": {"max": 60, "p95": 45}}})
    code, out, _ = gate(capsys, "--summary", str(summary), "--slo", str(lenient))
    assert code == 0, out


def test_p95_is_not_judged_on_a_single_run(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    summary = write_json(tmp_path / "summary.json", [entry("selector-change", "operator", recovered(30.0))])
    slo = write_slo(tmp_path / "p95.yaml", {"defaults": {"ttr": {"max": 60, "p95": 20}}})
    code, out, _ = gate(capsys, "--summary", str(summary), "--slo", str(slo))
    assert code == 0, out


def test_p95_counts_a_run_that_never_recovered(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    runs = [entry("selector-change", "operator", recovered(10.0)), entry("selector-change", "operator", NOT_RECOVERED)]
    summary = write_json(tmp_path / "summary.json", runs)
    code, out, _ = gate(capsys, "--summary", str(summary), "--slo", str(write_slo(tmp_path / "l.yaml", LOOSE)))
    assert code == 1
    line = row(out, "selector-change", "operator")
    assert "NOT-RECOVERED" in line and "10.0s" in line  # the recovered run's TTR is still shown


def test_invalid_fails_even_with_loose_budgets(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    summary = write_json(
        tmp_path / "summary.json",
        [
            entry("source-outage", "operator", {"injected": 0.0}, invalid="proof of fault missing: no signature"),
            entry("selector-change", "operator", OPERATOR_MARKS),
        ],
    )
    code, out, _ = gate(capsys, "--summary", str(summary), "--slo", str(write_slo(tmp_path / "l.yaml", LOOSE)))
    assert code == 1
    line = row(out, "source-outage", "operator")
    assert "INVALID" in line and "proof of fault missing: no signature" in line
    assert "gate: FAIL - 1 invalid of 2" in out


def test_recovering_after_the_slo_files_wait_is_not_recovered(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    summary = write_json(tmp_path / "summary.json", [entry("selector-change", "none", recovered(400.0), ttr_max=600)])
    slo = write_slo(tmp_path / "slo.yaml", {"defaults": {"ttr": {"max": 500}, "wait": 300}})
    code, out, _ = gate(capsys, "--summary", str(summary), "--slo", str(slo))
    assert code == 1
    assert "recovered after 400.0s, later than the wait of 300s" in row(out, "selector-change", "none")


def test_slo_file_may_name_faults_the_summary_lacks(capsys: pytest.CaptureFixture[str], passing_summary: Path) -> None:
    slo = write_slo(
        passing_summary.parent / "full.yaml",
        {"defaults": {"ttr": {"max": 60}}, "scenarios": {"controller-crash": {"ttr": {"max": 30}}}},
    )
    code, out, _ = gate(capsys, "--summary", str(passing_summary), "--slo", str(slo))
    assert code == 0, out


def test_junit_output(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    summary = write_json(
        tmp_path / "summary.json",
        [
            entry("selector-change", "none", NOT_RECOVERED),
            entry("selector-change", "flux-native", recovered(75.2)),
            entry("selector-change", "operator", OPERATOR_MARKS),
        ],
    )
    junit = tmp_path / "out" / "gate.xml"
    code, out, _ = gate(capsys, "--summary", str(summary), "--baseline", "none", "--junit", str(junit))
    assert code == 1 and f"junit: {junit}" in out
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("3", "1", "1")
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    failure = cases["flux-native"].find("failure")
    assert failure is not None and failure.get("type") == "breach" and "TTR 75.2s > max 60s" in (failure.text or "")
    assert cases["none"].find("skipped") is not None
    assert cases["operator"].find("failure") is None and cases["operator"].find("skipped") is None
    props = {p.get("name"): p.get("value") for p in cases["operator"].iter("property")}
    assert props["verdict"] == "pass" and props["ttr_max_seconds"] == "14.8s"


# -- bad input: one line on stderr, exit 2 ------------------------------------------------------------------


def assert_one_line(code: int, err: str, *fragments: str) -> None:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("resilience: error: "), err
    for fragment in fragments:
        assert fragment in lines[0], err


def good() -> dict[str, Any]:
    return entry("selector-change", "operator", OPERATOR_MARKS)


@pytest.mark.parametrize(
    ("data", "fragments"),
    [
        ({"runs": []}, ("expected a JSON list",)),
        ([], ("no runs to judge",)),
        ([{**good(), "verdict": "ok"}], ("[0].verdict: expected one of pass, breach, not-recovered, invalid",)),
        ([good(), {k: v for k, v in good().items() if k != "phases"}], ("[1]: missing key 'phases'",)),
        ([{**good(), "ttr_seconds": -1}], ("[0].ttr_seconds: input should be greater than or equal to 0",)),
        ([{k: v for k, v in good().items() if k != "data_violations"}], ("[0]: missing key 'data_violations'",)),
        ([{**good(), "data_violations": "none"}], ("[0].data_violations: input should be a valid list",)),
        ([{**good(), "proven": "yes"}], ("[0].proven: input should be a valid boolean",)),
        ([{**good(), "measured_from": "proof"}], ("[0].measured_from: times must be measured from 'injected'",)),
        ([{**good(), "ttr_seconds": None}], ("[0]: verdict pass needs a ttr_seconds number",)),
        ([{**good(), "phases": {"visible": "fast"}}], ("[0].phases.visible",)),
        ([{**good(), "budget": {"ttr": {"max": "1m"}}}], ("[0].budget.ttr.max",)),
        (["selector-change"], ("[0]: expected an object, got str",)),
        ([{**good(), "ttr_seconds": float("nan")}], ("NaN is not a finite number",)),
        ([{**good(), "detect_seconds": float("inf")}], ("Infinity is not a finite number",)),
        ([{**good(), "phases": {"visible": float("-inf")}}], ("-Infinity is not a finite number",)),
        ([{**good(), "reason": "lost \ud800 half"}], ("holds a string that is not valid text", "\\ud800")),
    ],
)
def test_bad_summary(capsys: pytest.CaptureFixture[str], tmp_path: Path, data: Any, fragments: tuple[str, ...]) -> None:
    path = write_json(tmp_path / "summary.json", data)
    code, _, err = gate(capsys, "--summary", str(path))
    assert_one_line(code, err, str(path), *fragments)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_numbers_in_a_summary_are_bad_input(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, constant: str
) -> None:
    """json.loads accepts NaN (and reads 1e999 as infinity); the gate judged such a run PASS."""
    path = tmp_path / "summary.json"
    write_json(path, [good()])
    path.write_text(path.read_text().replace('"ttr_seconds": 14.8', f'"ttr_seconds": {constant}'))
    code, _, err = gate(capsys, "--summary", str(path))
    assert_one_line(code, err, str(path), f"{constant} is not a finite number")


def test_missing_summary(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = gate(capsys, "--summary", str(tmp_path / "nope.json"))
    assert_one_line(code, err, "nope.json: no such summary file", "--summary")


def test_summary_not_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "summary.json"
    path.write_text("[{]")
    code, _, err = gate(capsys, "--summary", str(path))
    assert_one_line(code, err, "not valid JSON at line 1")


def test_default_summary_path_from_the_environment(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RESILIENCE_SUMMARY", str(tmp_path / "env.json"))
    code, _, err = gate(capsys)
    assert_one_line(code, err, "env.json: no such summary file")


@pytest.mark.parametrize(
    ("slo", "fragments"),
    [
        ({"defaults": {"ttr": {"max": -5}}}, ("defaults.ttr.max", "positive number")),
        ({"defaults": {"ttr": {"maximum": 5}}}, ("defaults.ttr.maximum", "unknown key")),
        ({"defaults": {"ttr": {"max": 10, "p95": 20}}}, ("p95 (20) is larger than max (10)",)),
    ],
)
def test_bad_slo_file(
    capsys: pytest.CaptureFixture[str], passing_summary: Path, slo: dict[str, Any], fragments: tuple[str, ...]
) -> None:
    path = write_slo(passing_summary.parent / "bad.yaml", slo)
    code, _, err = gate(capsys, "--summary", str(passing_summary), "--slo", str(path))
    assert_one_line(code, err, str(path), *fragments)


def test_missing_slo_file(capsys: pytest.CaptureFixture[str], passing_summary: Path) -> None:
    code, _, err = gate(capsys, "--summary", str(passing_summary), "--slo", str(passing_summary.parent / "x.yaml"))
    assert_one_line(code, err, "x.yaml: cannot read the SLO file")


# -- --baseline: one mode per flag (or comma-separated), known modes only, $RESILIENCE_BASELINE ---------------


@pytest.fixture
def baseline_summary(tmp_path: Path) -> Path:
    """flux-native and none miss their budgets; operator passes."""
    return write_json(
        tmp_path / "summary.json",
        [
            entry("selector-change", "none", NOT_RECOVERED, ttr_max=120),
            entry("selector-change", "flux-native", recovered(75.2)),
            entry("selector-change", "operator", OPERATOR_MARKS),
        ],
    )


@pytest.mark.parametrize(
    "args",
    [
        ["--baseline", "none,flux-native"],
        ["--baseline", "none", "--baseline", "flux-native"],
        ["--baseline", " flux-native , none", "--baseline", "none"],
    ],
)
def test_baselines_repeated_or_comma_separated(
    capsys: pytest.CaptureFixture[str], baseline_summary: Path, args: list[str]
) -> None:
    code, out, _ = gate(capsys, "--summary", str(baseline_summary), *args)
    assert code == 0, out
    assert "baseline recovery modes: flux-native, none" in out


def test_baseline_takes_one_value_and_leaves_the_next_word_alone(
    capsys: pytest.CaptureFixture[str], baseline_summary: Path
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["gate", "--baseline", "none", str(baseline_summary)])
    assert info.value.code == 2
    assert f"resilience gate: error: unrecognized arguments: {baseline_summary}" in capsys.readouterr().err


@pytest.mark.parametrize("mode", ["nothing", "", "operator,", "command:", "Operator"])
def test_unknown_baseline_mode(capsys: pytest.CaptureFixture[str], baseline_summary: Path, mode: str) -> None:
    code, out, err = gate(capsys, "--summary", str(baseline_summary), "--baseline", mode)
    bad = mode.rsplit(",", maxsplit=1)[-1]
    assert_one_line(
        code, err, f"--baseline {bad!r}: unknown recovery mode", "none, flux-native, flux-tuned, operator, staged"
    )
    assert "command:<cmd>, manifest:<path>" in err and out == ""


def test_external_recoveries_are_baseline_modes(baseline_summary: Path) -> None:
    assert baseline_modes(["command:./recover.sh --fast", "manifest:ops/recovery.yaml"], {}) == (
        "command:./recover.sh --fast",
        "manifest:ops/recovery.yaml",
    )


def test_baseline_from_the_environment(
    capsys: pytest.CaptureFixture[str], baseline_summary: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RESILIENCE_BASELINE", "none,flux-native")
    code, out, _ = gate(capsys, "--summary", str(baseline_summary))
    assert code == 0 and "baseline recovery modes: flux-native, none" in out
    code, out, _ = gate(capsys, "--summary", str(baseline_summary), "--baseline", "none")
    assert code == 1, "a flag overrides the environment"
    monkeypatch.setenv("RESILIENCE_BASELINE", "none,bogus")
    code, _, err = gate(capsys, "--summary", str(baseline_summary))
    assert_one_line(code, err, "$RESILIENCE_BASELINE 'bogus': unknown recovery mode")


def test_no_baseline_given_is_none_not_an_empty_list() -> None:
    """So the gate can later tell "none given" (use what summary.json recorded) from an explicit choice."""
    assert baseline_modes(None, {}) is None
    assert baseline_modes(None, {"RESILIENCE_BASELINE": ""}) is None


# -- --junit: checked before judging, valid XML whatever the reasons hold, normal file permissions -----------


def test_junit_path_is_checked_before_judging(capsys: pytest.CaptureFixture[str], passing_summary: Path) -> None:
    folder = passing_summary.parent
    code, out, err = gate(capsys, "--summary", str(passing_summary), "--junit", str(folder))
    assert_one_line(code, err, f"--junit {folder}: is a directory; give the path of a file to write")
    assert out == "", "no PASS printed before the failure"
    code, out, err = gate(capsys, "--summary", str(passing_summary), "--junit", str(passing_summary / "gate.xml"))
    assert_one_line(code, err, f"--junit {passing_summary / 'gate.xml'}: {passing_summary} is not a directory")
    assert out == ""
    with pytest.raises(SystemExit) as info:
        main(["gate", "--summary", str(passing_summary), "--junit", ""])
    assert info.value.code == 2
    assert "argument --junit: empty path" in capsys.readouterr().err


def test_junit_is_well_formed_whatever_the_reasons_hold(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    run = entry("selector-change", "operator", recovered(75.0))
    run["data_violations"] = ["Flux said \x1b[31mno\x1b[0m\x00 \x7f ok\ufffe"]  # reasons come from the evidence
    summary = write_json(tmp_path / "summary.json", [run])
    junit = tmp_path / "gate.xml"
    code, _, _ = gate(capsys, "--summary", str(summary), "--junit", str(junit))
    assert code == 1
    failure = ET.parse(junit).getroot().find("testsuite/testcase/failure")
    assert failure is not None
    assert "Flux said \\x1b[31mno\\x1b[0m\\x00 \x7f ok\\ufffe" in (failure.text or "")


@pytest.fixture
def umask() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("umask")
def test_written_files_get_the_permissions_of_a_plain_write(
    capsys: pytest.CaptureFixture[str], passing_summary: Path
) -> None:
    junit = passing_summary.parent / "gate.xml"
    assert gate(capsys, "--summary", str(passing_summary), "--junit", str(junit))[0] == 0
    assert mode(junit) == 0o644
    written = passing_summary.parent / "written.json"
    summary_file.write(written, summary_file.read(passing_summary))
    assert mode(written) == 0o644
    os.umask(0o077)
    fresh = passing_summary.parent / "private.xml"
    assert gate(capsys, "--summary", str(passing_summary), "--junit", str(fresh))[0] == 0
    assert mode(fresh) == 0o600, "the umask is respected"
    junit.chmod(0o640)
    assert gate(capsys, "--summary", str(passing_summary), "--junit", str(junit))[0] == 0
    assert mode(junit) == 0o640, "a file rewritten keeps its mode"
