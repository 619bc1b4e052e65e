"""Shards merged by the gate and the report, end to end without a cluster: the chaos suite's real plugins (options,
profile, --shard, the manifest, summary.json) with a `run_fault` that records a made-up run instead of running
one. Three shards cover the matrix once and pass; a lost shard, a doubled one, a summary without its manifest or
shards of different plans never pass."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from reports_support import entry, recovered

from assertions import slo as slo_model
from injectors import registry
from reports import manifest, summary
from reports.gate import profile_cells
from resilience.cli import main

FAULTS = ("selector-change", "helm-upgrade-broken", "source-outage")
CONFTEST = """
import os

import pytest

from assertions.schema import Host
from assertions.timeline import Timeline
from assertions.verdict import RunResult
from injectors.registry import fault
from scenarios.sharding import PLAN_DIGEST

pytest_plugins = ["clusters.pytest_plugin", "scenarios.plugin", "reports.plugin"]


@pytest.fixture
def run_fault(request, suite, recovery_name, repeat_index):
    def run(name):
        timeline = Timeline()
        for phase, at in {"injected": 0.0, "visible": 1.0, "recovered": 5.0}.items():
            timeline.mark(phase, at)
        budget = suite.slo.budget(name, recovery_name)
        result = RunResult(name, fault(name).family, recovery_name, budget, timeline, repeat=repeat_index,
                           test=request.node.nodeid, plan=request.config.stash[PLAN_DIGEST], proven=True)
        records = suite.run_dir / "revert"
        records.mkdir(parents=True, exist_ok=True)
        (records / os.environ.get("PYTEST_XDIST_WORKER", "main")).touch()
        result.run_seconds = 42.0
        result.host = Host(workers=int(os.environ.get("NEIGHBOURS", "1")), cpus=2)
        request.config.hook.pytest_resilience_annotate(result=result)  # what the runner does before judging
        result.judge()
        request.config.hook.pytest_resilience_run_result(result=result, item=request.node)
        return result
    return run
"""
SUITE = f"""
import pytest


@pytest.mark.parametrize("fault_name", {list(FAULTS)!r})
def test_fault(fault_name, run_fault):
    if fault_name == "source-outage" and "SKIP_OUTAGE" in __import__("os").environ:
        pytest.skip("source-outage needs process control of the cluster (--provider local)")
    run_fault(fault_name)
"""
SLO = {
    "defaults": {"ttr": {"max": 60}, "wait": 120},
    "profiles": {"mini": {"repeat": 2, "recoveries": ["none", "operator"], "faults": list(FAULTS)}},
}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("chaos")
    (root / "conftest.py").write_text(textwrap.dedent(CONFTEST))
    (root / "test_chaos.py").write_text(textwrap.dedent(SUITE))
    (root / "pytest.ini").write_text("[pytest]\n")
    (root / "slo.yaml").write_text(yaml.safe_dump(SLO))
    return root


def chaos(root: Path, out: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """One session of the miniature suite (mini profile: 3 faults x 2 recoveries x 2 repeats = 12 cells)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RESILIENCE_")}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "allure_pytest.plugin", "-p", "xdist.plugin",
         "-q", "--slo", "slo.yaml", "--profile", "mini",
         "--resilience-summary", f"{out}/summary.json", "--alluredir", f"{out}/allure-results", "--run-id", "42",
         *args],
        cwd=root, capture_output=True, text=True, timeout=300,
        env={**clean, "RESILIENCE_STATE": str(root / "state"), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
             "PYTHONPATH": os.environ.get("PYTHONPATH", ""), **(env or {})},
    )  # fmt: skip
    return proc


@pytest.fixture(scope="module")
def shards(project: Path) -> list[Path]:
    """The mini profile as three shards, one after another (the second on two xdist workers)."""
    out = []
    for i in (1, 2, 3):
        args = ("-n", "2") if i == 2 else ()
        proc = chaos(project, f"shard{i}", "--shard", f"{i}/3", *args)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        out.append(project / f"shard{i}" / "summary.json")
    return out


def gate(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str]:
    code = main(["gate", *(str(a) for a in args)])
    out, err = capsys.readouterr()
    return code, out + err


@pytest.mark.process
def test_each_shard_writes_its_part_and_the_whole_plan(shards: list[Path]) -> None:
    plans = [manifest.read(manifest.path_for(s)) for s in shards]
    assert all(p is not None for p in plans)
    assert [p.shards for p in plans if p] == [(1,), (2,), (3,)]
    assert len({p.digest for p in plans if p}) == 1
    matrix = plans[0].matrix if plans[0] else None
    assert matrix is not None and len(matrix) == 12
    ran = [manifest.entry_key(e) for s in shards for e in summary.read(s)]
    assert sorted(ran) == sorted(row.key for row in matrix)
    assert {e["plan"] for s in shards for e in summary.read(s)} == {plans[0].digest if plans[0] else None}
    assert {e["run_seconds"] for s in shards for e in summary.read(s)} == {42.0}


@pytest.mark.process
def test_all_shards_merged_pass(capsys: pytest.CaptureFixture[str], shards: list[Path], project: Path) -> None:
    code, out = gate(capsys, "--summary", *shards, "--slo", project / "slo.yaml", "--profile", "mini")
    assert code == 0, out
    assert "12 run(s) from 3 summaries (shard 1/3, 2/3, 3/3 of run 42, profile mini)" in out
    assert out.splitlines()[-1].startswith("gate: PASS - 6 fault x recovery cell(s)")


@pytest.mark.process
def test_a_lost_shard_fails_incomplete(capsys: pytest.CaptureFixture[str], shards: list[Path], tmp_path: Path) -> None:
    junit = tmp_path / "gate.xml"
    code, out = gate(capsys, "--summary", shards[0], shards[2], "--junit", junit)
    assert code == 1, out
    assert "incomplete: shard(s) 2/3 missing: no summary given for them" in out
    assert "(shard 2/3 missing)" in out
    assert out.splitlines()[-2].startswith("gate: FAIL - incomplete: the runs do not cover the matrix exactly once")
    case = ET.parse(junit).find(".//testcase[@name='completeness']")
    assert case is not None and case.find("failure") is not None


@pytest.mark.process
def test_a_doubled_shard_fails_incomplete(capsys: pytest.CaptureFixture[str], shards: list[Path]) -> None:
    code, out = gate(capsys, "--summary", *shards, "--summary", shards[1])
    assert code == 1, out
    assert "shard(s) 2/3 (2 times) given more than once" in out
    assert "with more runs than planned" in out
    assert "gate: FAIL - incomplete" in out


@pytest.mark.process
def test_a_copy_of_a_shard_under_another_name_is_refused_too(
    capsys: pytest.CaptureFixture[str], shards: list[Path], tmp_path: Path
) -> None:
    copy = tmp_path / "copy" / "summary.json"
    copy.parent.mkdir()
    shutil.copy(shards[0], copy)
    shutil.copy(manifest.path_for(shards[0]), manifest.path_for(copy))
    code, out = gate(capsys, "--summary", *shards[1:], copy, shards[0])
    assert code == 1 and "shard(s) 1/3 (2 times) given more than once" in out


@pytest.mark.process
def test_the_profile_demands_its_whole_matrix(capsys: pytest.CaptureFixture[str], shards: list[Path]) -> None:
    code, out = gate(capsys, "--summary", *shards, "--slo", "scenarios/slo.yaml", "--profile", "release")
    assert code == 1, out
    assert "cell(s) of the matrix without a run: " in out and "outside the matrix" in out


@pytest.mark.process
def test_a_summary_without_its_manifest_is_refused(
    capsys: pytest.CaptureFixture[str], shards: list[Path], tmp_path: Path
) -> None:
    alone = tmp_path / "alone" / "summary.json"
    alone.parent.mkdir()
    shutil.copy(shards[0], alone)
    code, out = gate(capsys, "--summary", alone)
    assert code == 2
    assert out.strip().splitlines()[-1].endswith("keep the manifest beside the summary (in CI, upload both)")


@pytest.mark.process
def test_shards_of_different_plans_do_not_merge(
    capsys: pytest.CaptureFixture[str], shards: list[Path], project: Path, tmp_path: Path
) -> None:
    """Shard 2 planned with earlier durations the other shards did not see: another digest, refused."""
    earlier = tmp_path / "earlier.json"
    earlier.write_text(json.dumps([{**entry("source-outage", "none", recovered(30.0)), "run_seconds": 900}]))
    proc = chaos(project, "other2", "--shard", "2/3", f"--earlier-runs={earlier}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    code, out = gate(capsys, "--summary", shards[0], project / "other2" / "summary.json", shards[2])
    assert code == 1
    assert "not shards of one planned run: digest differs" in out


@pytest.mark.process
def test_a_skipped_cell_is_missing_with_its_reason(capsys: pytest.CaptureFixture[str], project: Path) -> None:
    proc = chaos(project, "skipping", env={"SKIP_OUTAGE": "1"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    code, out = gate(capsys, "--summary", project / "skipping" / "summary.json")
    assert code == 1
    assert "4 cell(s) of the matrix without a run: source-outage x none r1 (skipped: source-outage needs" in out


@pytest.mark.process
def test_the_report_merges_the_shards_into_one_summary_page(shards: list[Path], tmp_path: Path) -> None:
    from reports import allure_files, results_merge

    entries, _ = manifest.load_runs(shards)
    merged = results_merge.merge([s.parent / "allure-results" for s in shards], entries, tmp_path / "merged")
    pages = allure_files.summary_page_files(merged)
    results = [json.loads(p.read_text()) for p in merged.glob("*-result.json")]
    summaries = [r for r in results if r.get("fullName") == "resilience.ttr_matrix"]
    assert len(summaries) == 1 and summaries[0]["name"] == "TTR per fault x recovery (12 runs)"
    assert len(results) == 12 + 1
    assert len(list(merged.glob("*-perf.json"))) == 1 and len(list(merged.glob("*-globals.json"))) == 1
    assert {name for name in pages if name.endswith("-result.json")} == {f"{summaries[0]['uuid']}-result.json"}


@pytest.mark.process
def test_the_report_needs_the_summaries_of_several_results(
    capsys: pytest.CaptureFixture[str], shards: list[Path]
) -> None:
    code = main(["report", "--results", *(str(s.parent / "allure-results") for s in shards)])
    assert code == 2
    assert "several results directories need the summaries" in capsys.readouterr().err


@pytest.mark.process
def test_a_ttr_neighbours_moved_beyond_noise_is_noted_not_rejudged(project: Path, tmp_path: Path) -> None:
    """Earlier runs measured selector-change alone at 30 s; this session's 5 s on three workers is noted."""
    earlier = tmp_path / "earlier.json"
    solo = {**entry("selector-change", "operator", recovered(30.0)), "host": {"workers": 1, "cpus": 2}}
    earlier.write_text(json.dumps([solo, {**solo, "recovery": "none", "host": {"workers": 2, "cpus": 2}}]))
    proc = chaos(project, "neighbours", "-k", "selector", f"--earlier-runs={earlier}", env={"NEIGHBOURS": "3"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    runs = summary.read(project / "neighbours" / "summary.json")
    noted = {e["recovery"]: e for e in runs if any("neighbours may have slowed it" in n for n in e["notes"])}
    assert set(noted) == {"operator"}  # none has no solo reference (its earlier run had neighbours)
    assert all(e["verdict"] == "pass" for e in runs)
    assert "TTR 5.0s moved -25.0s from 30.0s measured alone (noise margin 7.5s)" in noted["operator"]["reason"]


@pytest.mark.process
def test_xdist_workers_share_the_sessions_run_directory(project: Path) -> None:
    before = set((project / "runs").iterdir()) if (project / "runs").exists() else set()
    proc = chaos(project, "workers", "-n", "2", "-k", "selector or helm")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (run_dir,) = set((project / "runs").iterdir()) - before
    assert sorted(p.name for p in (run_dir / "revert").iterdir()) == ["gw0", "gw1"]
    where = f"runs/{run_dir.name}"
    assert f"chaos run records: {where} (undo leftovers: resilience revert {where})" in proc.stdout


def test_a_profile_matrix_holds_only_the_cells_that_run() -> None:
    """The staged profile runs its faults under none and staged, but the controller kill only under staged."""
    shipped = slo_model.load(Path("scenarios/slo.yaml"), registry.FAULTS)
    cells = profile_cells(shipped, "staged")
    assert ("staged-controller-kill", "staged", 1) in cells and ("staged-controller-kill", "none", 1) not in cells
    assert ("staged-good-change", "none", 1) in cells and ("staged-good-change", "staged", 1) in cells
    nightly = profile_cells(shipped, "nightly")
    assert ("selector-change", "staged", 1) not in nightly and ("staged-good-change", "operator", 1) not in nightly
