"""The manifest beside a summary, read by the gate: malformed manifests and flags are bad input (one line, exit 2),
a summary without a manifest is judged as before with a note, and `--profile` checks the runs against the SLO
file's profile even then."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from reports_support import entry, recovered, write_json, write_slo

from reports import manifest
from resilience.cli import main

PROFILE = {
    "defaults": {"ttr": {"max": 60}},
    "profiles": {"two": {"recoveries": ["operator"], "repeat": 2, "faults": ["selector-change"]}},
}


def gate(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = main(["gate", *(str(a) for a in args)])
    out, err = capsys.readouterr()
    return code, out, err


def planned(tmp_path: Path, rows: Sequence[Sequence[object]], runs: list[dict[str, Any]], **extra: object) -> Path:
    summary = write_json(tmp_path / "summary.json", [{**r, "plan": "p1"} for r in runs])
    body = {"version": 1, "shard": {"count": 1, "indexes": [1]}, "digest": "p1", "matrix": rows, **extra}
    write_json(manifest.path_for(summary), body)
    return summary


def test_the_manifest_lives_beside_its_summary() -> None:
    assert manifest.path_for(Path("reports/summary.json")) == Path("reports/summary.manifest.json")
    assert manifest.path_for(Path("out/shard-2.json")) == Path("out/shard-2.manifest.json")


def test_a_complete_plan_passes_and_a_missing_repeat_fails(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rows = [["selector-change", "operator", k, 1, f"t[r{k}]"] for k in (1, 2)]
    runs = [entry("selector-change", "operator", recovered(10.0), repeat=k) for k in (1, 2)]
    code, out, _ = gate(capsys, "--summary", planned(tmp_path, rows, runs))
    assert code == 0, out
    code, out, _ = gate(
        capsys, "--summary", planned(tmp_path, rows, runs[:1], outcomes={"t[r2]": "error in setup: no cluster"})
    )
    assert code == 1
    assert (
        "incomplete: 1 cell(s) of the matrix without a run: selector-change x operator r2 (error in setup: no cluster)"
        in out
    )


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"version": 2}, "not a version 1 manifest"),
        ({"version": 1, "shard": {"count": 3, "indexes": [4]}}, "shard.indexes: expected shards from 1 to 3"),
        ({"version": 1, "shard": {"count": 1, "indexes": [1]}, "matrix": [["a", "b", "1", 1, "t"]]}, "matrix[0][2]: "),
    ],
)
def test_a_malformed_manifest_is_bad_input(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, body: dict[str, object], problem: str
) -> None:
    summary = write_json(tmp_path / "summary.json", [entry("selector-change", "operator", recovered(10.0))])
    write_json(manifest.path_for(summary), body)
    code, _, err = gate(capsys, "--summary", summary)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and problem in err and str(manifest.path_for(summary)) in err


def test_without_a_manifest_the_gate_judges_as_before_and_says_so(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    summary = write_json(tmp_path / "summary.json", [entry("selector-change", "operator", recovered(10.0))])
    code, out, _ = gate(capsys, "--summary", summary)
    assert code == 0
    assert "note: no manifest beside the summary: whether every planned cell ran is not checked" in out


def test_the_profile_is_checked_even_without_a_manifest(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    slo = write_slo(tmp_path / "slo.yaml", PROFILE)
    summary = write_json(tmp_path / "summary.json", [entry("selector-change", "operator", recovered(10.0))])
    code, out, _ = gate(capsys, "--summary", summary, "--slo", slo, "--profile", "two")
    assert code == 1
    assert "1 cell(s) of the matrix without a run: selector-change x operator r2" in out


def test_the_profile_needs_the_slo_file_that_defines_it(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    summary = write_json(tmp_path / "summary.json", [entry("selector-change", "operator", recovered(10.0))])
    code, _, err = gate(capsys, "--summary", summary, "--profile", "two")
    assert code == 2 and "--profile two: needs --slo FILE" in err
    code, _, err = gate(
        capsys, "--summary", summary, "--slo", write_slo(tmp_path / "s.yaml", PROFILE), "--profile", "x"
    )
    assert code == 2 and "unknown profile 'x' (profiles: two)" in err


def test_summaries_with_and_without_manifests_do_not_merge(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rows = [["selector-change", "operator", 1, 1, "t"]]
    with_one = planned(tmp_path / "a", rows, [entry("selector-change", "operator", recovered(10.0))])
    without = write_json(tmp_path / "b" / "summary.json", [entry("helm-upgrade-broken", "operator", recovered(10.0))])
    code, _, err = gate(capsys, "--summary", with_one, without)
    assert code == 2 and "no manifest beside it, while" in err
    assert json.loads(manifest.path_for(with_one).read_text())["digest"] == "p1"
