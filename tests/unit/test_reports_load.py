"""Reports of runs under load: the Allure result carries the load object, its chart and locust's CSV and HTML; the
summary entry its `load` object; the table and the matrix page gain downtime and blast-radius columns, which runs
without load do not show."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from reports_support import all_attachments, allure_results, entry, load, make_suite, recovered, run_pytest

from reports import charts, summary
from reports.matrix import build_cells, render_html, render_table

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

SCENARIOS = """
import json
import pathlib

from assertions.diagnostics import LoadDiagnostics
from assertions.slo import Budget, Limit
from assertions.timeline import Timeline
from assertions.verdict import RunResult

LOAD = json.loads(pathlib.Path("load.json").read_text())


def test_under_load(request, tmp_path):
    timeline = Timeline()
    for phase, at in {"injected": 0, "visible": 2, "recovered": 12}.items():
        timeline.mark(phase, at)
    (tmp_path / "locust_stats.csv").write_text("Type,Name,Request Count\\ndelivery,same-source,9\\n")
    (tmp_path / "locust-report.html").write_text("<html>locust</html>")
    series = {
        "deliveries": [
            {"group": "same-source", "team": "same-1", "at": -20.0, "seconds": 1.0, "ok": True},
            {"group": "same-source", "team": "same-1", "at": 3.0, "seconds": 60.0, "ok": False},
            {"group": "other-source", "team": "other-1", "at": 4.0, "seconds": 1.2, "ok": True},
        ],
        "serving": [[-30.0, 2], [5.0, 0], [7.5, 2]],
        "load_from": -30.0,
        "fault_end": 12.0,
        "load_to": 27.0,
        "deadline": 60.0,
    }
    result = RunResult("selector-change", "selector", "flux-native", Budget(ttr=Limit(60)), timeline, proven=True,
                       test=request.node.nodeid, measurements={"load": LOAD}, load_diagnostics=LoadDiagnostics(
                           series=series,
                           files={"locust stats (CSV)": str(tmp_path / "locust_stats.csv"),
                                  "locust report (HTML)": str(tmp_path / "locust-report.html")},
                           baseline_cpu={"cpu_seconds": 1.0, "wall_seconds": 30.0},
                           whole_life_cpu={"cpu_seconds": 2.0, "wall_seconds": 40.0},
                       ))
    result.judge()
    request.config.hook.pytest_resilience_run_result(result=result, item=request.node)
"""

CONFTEST = """
from scenarios import hooks


def pytest_addhooks(pluginmanager):
    pluginmanager.add_hookspecs(hooks)
"""


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_suite(tmp_path_factory.mktemp("load"), SCENARIOS, CONFTEST)
    (root / "load.json").write_text(json.dumps(load(3.0, failed=1, radius=["same-1"], downtime=2.5)))
    proc = run_pytest(root, "--alluredir", "allure-results")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (root / "stdout.txt").write_text(proc.stdout)
    return root


def attachment(root: Path, result: dict[str, Any], name: str) -> bytes:
    found = [a for a in all_attachments(result) if a["name"] == name]
    assert len(found) == 1, [a["name"] for a in all_attachments(result)]
    return (root / "allure-results" / found[0]["source"]).read_bytes()


@pytest.mark.process
def test_a_run_under_load_carries_the_chart_and_locusts_reports(suite: Path) -> None:
    (result,) = [r for r in allure_results(suite / "allure-results") if r["name"] == "test_under_load"]
    assert attachment(suite, result, "load chart").startswith(PNG_MAGIC)
    assert json.loads(attachment(suite, result, "load"))["blast_radius"] == ["same-1"]
    assert json.loads(attachment(suite, result, "load series"))["fault_end"] == 12.0
    assert attachment(suite, result, "locust stats (CSV)").startswith(b"Type,Name,Request Count")
    assert attachment(suite, result, "locust report (HTML)") == b"<html>locust</html>"
    assert json.loads(attachment(suite, result, "load_cpu"))["baseline"]["cpu_seconds"] == 1.0
    (recorded,) = summary.read(suite / "out" / "summary.json")
    assert recorded["load"]["downtime_seconds"] == 2.5 and recorded["load"]["profile"] == "light"


@pytest.mark.process
def test_the_terminal_table_shows_downtime_and_blast_radius(suite: Path) -> None:
    stdout = (suite / "stdout.txt").read_text()
    header = next(line for line in stdout.splitlines() if line.startswith("FAULT"))
    assert "DOWNTIME" in header and "BLAST RADIUS" in header
    row = next(line for line in stdout.splitlines() if line.startswith("selector-change"))
    assert "2.5s" in row and "1 (same-1)" in row


def test_columns_appear_only_when_a_run_ran_under_load() -> None:
    plain = entry("selector-change", "operator", recovered(10.0))
    assert "DOWNTIME" not in render_table(build_cells([plain]))
    assert "blast radius" not in render_html(build_cells([plain]))
    loaded = {**entry("selector-change", "flux-native", recovered(12.0)), "load": load(downtime=None)}
    again = {**loaded, "repeat": 2, "load": load(radius=["same-2", "other-1"], downtime=3.0)}
    cells = build_cells([plain, loaded, again])
    header, *rows = render_table(cells).splitlines()
    assert "DOWNTIME" in header and "BLAST RADIUS" in header
    columns = {name: header.index(name) for name in ("DOWNTIME", "BLAST RADIUS", "VERDICT")}

    def cell(recovery: str, column: str) -> str:
        row = next(r for r in rows if f" {recovery} " in r)
        following = min((i for i in columns.values() if i > columns[column]), default=len(row))
        return row[columns[column] : following].strip()

    assert (cell("flux-native", "DOWNTIME"), cell("flux-native", "BLAST RADIUS")) == ("3.0s", "2 (other-1, same-2)")
    assert (cell("operator", "DOWNTIME"), cell("operator", "BLAST RADIUS")) == ("-", "-")
    assert "downtime 3.0s &middot; blast radius 2 (other-1, same-2)" in render_html(cells)


def test_the_load_chart_is_a_png_with_or_without_serving() -> None:
    series: dict[str, Any] = {"deliveries": [], "serving": [], "load_from": -5.0, "fault_end": 3.0, "load_to": 9.0}
    assert charts.load_chart(series, {"visible": 1.0, "recovered": None}, "nothing").startswith(PNG_MAGIC)
