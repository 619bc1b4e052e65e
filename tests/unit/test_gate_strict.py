"""`resilience gate` tried as a hostile user would: summary, manifest and SLO files crafted from the code's own
schema, each of which once made the gate exit 0 where it must fail, or misbehave (a traceback, a hang, an input
overwritten, a forged line). Every case is one class of the strict-record issue; each must fail the gate (exit 1)
or be refused in one line naming the file and key (exit 2), and never change an input."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from reports_support import NOT_RECOVERED, entry, recovered, write_json, write_slo

from reports import manifest as manifest_file
from resilience.cli import main

SLO = {"defaults": {"ttr": {"max": 60}, "wait": 600}}


def gate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["gate", *args])
    out, err = capsys.readouterr()
    return code, out, err


def refused(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """The gate refused its input: exit 2, nothing on stdout, one line on stderr (returned)."""
    code, out, err = gate(capsys, *args)
    assert code == 2, f"exit {code}\n{out}\n{err}"
    assert "gate: PASS" not in out
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def runs(*entries: dict[str, Any]) -> list[dict[str, Any]]:
    return list(entries)


@pytest.fixture
def passing(tmp_path: Path) -> Path:
    return write_json(
        tmp_path / "summary.json",
        runs(entry("selector-change", "operator", recovered(10.0)), entry("selector-change", "none", recovered(50.0))),
    )


# -- Nothing judged, still PASS ------------------------------------------------------------------------------------


def test_baselines_naming_every_mode_judge_nothing_and_fail(capsys: pytest.CaptureFixture[str], passing: Path) -> None:
    code, out, _ = gate(capsys, "--summary", str(passing), "--baseline", "none,operator")
    assert code == 1, out
    assert "gate: FAIL - nothing judged" in out


def test_baselines_from_the_environment_judge_nothing_and_fail(
    capsys: pytest.CaptureFixture[str], passing: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RESILIENCE_BASELINE", "none,operator")
    code, out, _ = gate(capsys, "--summary", str(passing))
    assert code == 1, out
    assert "nothing judged" in out


def test_recorded_baselines_naming_every_mode_fail(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    one = entry("selector-change", "operator", recovered(10.0))
    one["baselines"] = ["none", "operator"]
    code, out, _ = gate(capsys, "--summary", str(write_json(tmp_path / "s.json", [one])))
    assert code == 1, out
    assert "nothing judged" in out


def _load(groups: dict[str, Any]) -> dict[str, Any]:
    return {"profile": "light", "groups": groups, "blast_radius": [], "downtime_seconds": 0.0}


def test_load_budget_without_its_measurement_is_not_met(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    one = entry("selector-change", "operator", recovered(10.0))
    one["load"] = _load({})
    summary = write_json(tmp_path / "s.json", [one])
    slo = write_slo(tmp_path / "slo.yaml", {"defaults": {**SLO["defaults"], "load": {"p95_ratio": {"same-source": 2}}}})
    code, out, _ = gate(capsys, "--summary", str(summary), "--slo", str(slo))
    assert code == 1, out
    assert "same-source" in out and "not measured" in out


def test_reached_budget_without_its_measurement_is_not_met(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    one = entry("selector-change", "operator", recovered(10.0))
    one["reached"] = {}
    summary = write_json(tmp_path / "s.json", [one])
    slo = write_slo(tmp_path / "slo.yaml", {"defaults": {**SLO["defaults"], "reached": {"production": 0}}})
    code, out, _ = gate(capsys, "--summary", str(summary), "--slo", str(slo))
    assert code == 1, out
    assert "production" in out and "not measured" in out


# -- Budgets invented or trusted -----------------------------------------------------------------------------------


def test_a_cell_without_a_budget_in_the_slo_file_is_an_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    summary = write_json(
        tmp_path / "s.json",
        runs(
            entry("selector-change", "operator", recovered(10.0)),
            entry("helm-upgrade-failed", "operator", recovered(9)),
        ),
    )
    slo = write_slo(tmp_path / "slo.yaml", {"scenarios": {"selector-change": {"ttr": {"max": 60}}}})
    line = refused(capsys, "--summary", str(summary), "--slo", str(slo))
    assert str(slo) in line and "helm-upgrade-failed" in line and "ttr.max" in line


def test_defaults_without_a_ttr_budget_invent_none(
    capsys: pytest.CaptureFixture[str], passing: Path, tmp_path: Path
) -> None:
    slo = write_slo(tmp_path / "slo.yaml", {"defaults": {"wait": 600}})
    line = refused(capsys, "--summary", str(passing), "--slo", str(slo))
    assert "selector-change" in line and "ttr.max" in line


def test_a_recorded_budget_of_null_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    one = entry("selector-change", "operator", recovered(10.0))
    one["budget"]["ttr"]["max"] = None
    line = refused(capsys, "--summary", str(write_json(tmp_path / "s.json", [one])))
    assert "[0].budget.ttr.max" in line


def test_an_entry_without_a_budget_is_refused_without_an_slo_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    one = entry("selector-change", "operator", recovered(10.0))
    del one["budget"]
    line = refused(capsys, "--summary", str(write_json(tmp_path / "s.json", [one])))
    assert "[0]" in line and "budget" in line and "--slo" in line


@pytest.mark.parametrize("bad", ["two", None, [1, 2], {"p95_ratio": "x"}])
def test_a_recorded_criterion_budget_is_validated(capsys: pytest.CaptureFixture[str], tmp_path: Path, bad: Any) -> None:
    one = entry("selector-change", "operator", recovered(10.0))
    one["budget"]["load"] = bad
    line = refused(capsys, "--summary", str(write_json(tmp_path / "s.json", [one])))
    assert "[0].budget.load" in line


# -- A recorded verdict overruled ----------------------------------------------------------------------------------


def test_a_recorded_invalid_verdict_stays_invalid_under_another_slo_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    one = entry("selector-change", "operator", recovered(10.0))
    one["verdict"], one["reason"] = "invalid", "recorded by the runner"
    summary = write_json(tmp_path / "s.json", [one])
    code, out, _ = gate(capsys, "--summary", str(summary), "--slo", str(write_slo(tmp_path / "slo.yaml", SLO)))
    assert code == 1, out
    assert "INVALID" in out and "gate: FAIL" in out


# -- Shards that disagree ------------------------------------------------------------------------------------------


def _shard(
    tmp_path: Path, index: int, entries: list[dict[str, Any]], rows: list[list[Any]], digest: str | None = "d1",
    profile: str | None = None,
) -> Path:  # fmt: skip
    path = tmp_path / f"shard{index}" / "summary.json"
    for e in entries:
        e["plan"] = digest or "d1"
    write_json(path, entries)
    data = {
        "version": 1, "run": "r1", "profile": profile, "slo": None, "shard": {"count": 2, "indexes": [index]},
        "digest": digest, "matrix": rows, "outcomes": {},
    }  # fmt: skip
    write_json(manifest_file.path_for(path), data)
    return path


def test_shards_whose_manifests_disagree_fail_in_either_order(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    a = ["selector-change", "operator", 1, 1, "t::a"]
    b = ["helm-upgrade-failed", "operator", 1, 2, "t::b"]
    one = _shard(tmp_path, 1, [entry("selector-change", "operator", recovered(10.0))], [a, b])
    two = _shard(tmp_path, 2, [], [a])  # leaves out the cell it never ran
    for order in ((one, two), (two, one)):
        code, out, _ = gate(capsys, "--summary", *map(str, order))
        assert code == 1, out
        assert "incomplete" in out and "matrix differs" in out


def test_a_manifest_without_a_digest_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rows = [["selector-change", "operator", 1, 1, "t::a"]]
    one = _shard(tmp_path, 1, [entry("selector-change", "operator", recovered(10.0))], rows, digest=None)
    line = refused(capsys, "--summary", str(one))
    assert "digest" in line


RELEASE = {
    **SLO,
    "profiles": {
        "release": {"repeat": 1, "recoveries": ["operator"], "faults": ["selector-change"], "monitoring": True},
        "quick": {"repeat": 1, "recoveries": ["operator"], "faults": ["selector-change"]},
    },
}


def test_a_manifest_of_another_profile_fails_the_profile_gate(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rows = [["selector-change", "operator", 1, 1, "t::a"]]
    path = _shard(tmp_path, 1, [entry("selector-change", "operator", recovered(10.0))], rows, profile="quick")
    data = json.loads(manifest_file.path_for(path).read_text())
    data["shard"]["count"] = 1
    write_json(manifest_file.path_for(path), data)
    slo = write_slo(tmp_path / "slo.yaml", RELEASE)
    code, out, _ = gate(capsys, "--summary", str(path), "--slo", str(slo), "--profile", "release")
    assert code == 1, out
    assert "profile 'quick'" in out and "release" in out


def test_a_monitoring_profile_with_runs_without_alerts_fails(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    summary = write_json(tmp_path / "s.json", [entry("selector-change", "operator", recovered(10.0))])
    slo = write_slo(tmp_path / "slo.yaml", RELEASE)
    code, out, _ = gate(capsys, "--summary", str(summary), "--slo", str(slo), "--profile", "release")
    assert code == 1, out
    assert "monitoring" in out and "no alerts" in out


# -- Input read loosely --------------------------------------------------------------------------------------------


def test_a_duplicate_json_key_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    one = entry("selector-change", "operator", recovered(10.0))
    one["data_violations"] = ["PVC data/db lost"]
    text = json.dumps([one]).replace('"data_violations":', '"data_violations": [], "data_violations":', 1)
    path = tmp_path / "s.json"
    path.write_text(text)
    line = refused(capsys, "--summary", str(path))
    assert "duplicate key 'data_violations'" in line and str(path) in line


def test_a_duplicate_yaml_key_is_refused(capsys: pytest.CaptureFixture[str], passing: Path, tmp_path: Path) -> None:
    slo = tmp_path / "slo.yaml"
    slo.write_text("defaults:\n  ttr: {max: 60}\n  wait: 600\n  ttr: {max: 6000}\n")
    line = refused(capsys, "--summary", str(passing), "--slo", str(slo))
    assert "duplicate key 'ttr'" in line and str(slo) in line


@pytest.mark.parametrize("key", ["data_violation", "alertz"])
def test_an_unknown_entry_key_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path, key: str) -> None:
    one = entry("selector-change", "operator", recovered(10.0))
    one[key] = ["PVC data/db lost"]
    line = refused(capsys, "--summary", str(write_json(tmp_path / "s.json", [one])))
    assert f"[0].{key}" in line and "unknown key" in line


def test_non_utf8_bytes_are_one_line(capsys: pytest.CaptureFixture[str], passing: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(passing.read_bytes().replace(b"selector-change", b"selector-\xff", 1))
    assert "UTF-8" in refused(capsys, "--summary", str(bad))
    slo = tmp_path / "slo.yaml"
    slo.write_bytes(b"defaults:\n  ttr: {max: 60}\n# \xff\xfe\n")
    assert "UTF-8" in refused(capsys, "--summary", str(passing), "--slo", str(slo))


def test_a_huge_integer_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    one = entry("selector-change", "operator", recovered(10.0))
    text = json.dumps([one]).replace('"ttr_seconds": 10.0', '"ttr_seconds": ' + "9" * 401, 1)
    path = tmp_path / "s.json"
    path.write_text(text)
    assert "401 digits) is too large a number" in refused(capsys, "--summary", str(path))


def test_a_huge_integer_in_the_slo_file_is_one_line(
    capsys: pytest.CaptureFixture[str], passing: Path, tmp_path: Path
) -> None:
    slo = tmp_path / "slo.yaml"
    slo.write_text("defaults:\n  ttr: {max: " + "9" * 401 + "}\n")
    assert "line 2: 999999999999... is too large a number" in refused(
        capsys, "--summary", str(passing), "--slo", str(slo)
    )


def test_a_yaml_alias_bomb_is_refused_at_once(
    capsys: pytest.CaptureFixture[str], passing: Path, tmp_path: Path
) -> None:
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for i, name in enumerate("bcdefghi"):
        prev = "abcdefghi"[i]
        lines.append(f"{name}: &{name} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]")
    slo = tmp_path / "slo.yaml"
    slo.write_text("\n".join(lines) + "\n")
    started = time.monotonic()
    line = refused(capsys, "--summary", str(passing), "--slo", str(slo))
    assert time.monotonic() - started < 5
    assert "YAML aliases (*a) are not allowed here" in line


def test_a_huge_shard_count_is_refused_at_once(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rows = [["selector-change", "operator", 1, 1, "t::a"]]
    path = _shard(tmp_path, 1, [entry("selector-change", "operator", recovered(10.0))], rows)
    data = json.loads(manifest_file.path_for(path).read_text())
    for count in (1e9, 10**9):
        data["shard"]["count"] = count
        write_json(manifest_file.path_for(path), data)
        started = time.monotonic()
        assert "shard.count" in refused(capsys, "--summary", str(path))
        assert time.monotonic() - started < 5


@pytest.mark.parametrize("repeat", ["1e9", "1000000000"])
def test_a_huge_profile_repeat_is_refused_at_once(
    capsys: pytest.CaptureFixture[str], passing: Path, tmp_path: Path, repeat: str
) -> None:
    slo = tmp_path / "slo.yaml"
    slo.write_text(f"defaults: {{ttr: {{max: 60}}}}\nprofiles:\n  p: {{repeat: {repeat}, recoveries: [operator]}}\n")
    started = time.monotonic()
    assert "profiles.p.repeat" in refused(capsys, "--summary", str(passing), "--slo", str(slo), "--profile", "p")
    assert time.monotonic() - started < 5


def test_many_missing_cells_are_listed_fast(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rows = [[f"fault-{k}", "operator", 1, 1, f"t::{k}"] for k in range(1, 20_000)]
    rows.append(["selector-change", "operator", 1, 1, "t::ran"])
    path = _shard(tmp_path, 1, [entry("selector-change", "operator", recovered(10.0))], rows)
    data = json.loads(manifest_file.path_for(path).read_text())
    data["shard"]["count"] = 1
    write_json(manifest_file.path_for(path), data)
    started = time.monotonic()
    code, out, _ = gate(capsys, "--summary", str(path))
    assert time.monotonic() - started < 10
    assert code == 1 and "19999 cell(s) of the matrix without a run" in out


# -- Data lost -----------------------------------------------------------------------------------------------------


def test_junit_never_overwrites_an_input(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rows = [["selector-change", "operator", 1, 1, "t::a"]]
    summary = _shard(tmp_path, 1, [entry("selector-change", "operator", recovered(10.0))], rows)
    data = json.loads(manifest_file.path_for(summary).read_text())
    data["shard"]["count"] = 1
    write_json(manifest_file.path_for(summary), data)
    slo = write_slo(tmp_path / "slo.yaml", SLO)
    inputs = [summary, manifest_file.path_for(summary), slo]
    before = {p: p.read_bytes() for p in inputs}
    for target in inputs:
        line = refused(capsys, "--summary", str(summary), "--slo", str(slo), "--junit", str(target))
        assert "--junit" in line and "input" in line
    assert {p: p.read_bytes() for p in inputs} == before


# -- Output --------------------------------------------------------------------------------------------------------


def test_a_name_with_a_newline_cannot_forge_a_gate_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = entry("selector-change", "operator", NOT_RECOVERED)
    bad["not_recovered_detail"] = "x\ngate: PASS - all cells passed"
    code, out, _ = gate(capsys, "--summary", str(write_json(tmp_path / "s.json", [bad])))
    assert code == 1, out
    gate_lines = [line for line in out.splitlines() if line.startswith("gate:")]
    assert len(gate_lines) == 1 and gate_lines[0].startswith("gate: FAIL"), out
    assert "x\\ngate: PASS" in out


def test_a_recovery_name_with_a_newline_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = entry("selector-change", "operator", recovered(10.0))
    bad["recovery"] = "command:x\ngate: PASS"
    assert "[0].recovery" in refused(capsys, "--summary", str(write_json(tmp_path / "s.json", [bad])))


def test_a_fault_name_with_a_newline_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = entry("selector-change", "operator", recovered(10.0))
    bad["fault"] = "x\ngate: PASS"
    line = refused(capsys, "--summary", str(write_json(tmp_path / "s.json", [bad])))
    assert "[0].fault" in line
