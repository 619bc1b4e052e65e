"""The reports plugin, black-boxed: a miniature chaos suite calls the hooks with hand-made RunResults in a real
pytest process; the tests read what came out (Allure results, summary.json, JUnit XML, the terminal table)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from reports_support import all_attachments, allure_results, labels, make_suite, run_pytest

from reports import summary
from reports.categories import CATEGORIES, allure2_categories, allure3_categories

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclass
class SuiteRun:
    root: Path
    stdout: str
    returncode: int

    @property
    def results(self) -> Path:
        return self.root / "allure-results"

    def result(self, name: str) -> dict[str, Any]:
        matches = [r for r in allure_results(self.results) if r["name"] == name]
        assert len(matches) == 1, [r["name"] for r in allure_results(self.results)]
        return matches[0]

    def attachment(self, result: dict[str, Any], name: str) -> bytes:
        found = [a for a in all_attachments(result) if a["name"] == name]
        assert len(found) == 1, [a["name"] for a in all_attachments(result)]
        return (self.results / found[0]["source"]).read_bytes()


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> SuiteRun:
    root = make_suite(tmp_path_factory.mktemp("chaos"))
    proc = run_pytest(root, "--alluredir", "allure-results", "--junitxml", "junit.xml")
    return SuiteRun(root, proc.stdout + proc.stderr, proc.returncode)


@pytest.mark.process
def test_the_miniature_suite_ran_as_expected(suite: SuiteRun) -> None:
    # breach, not-recovered, invalid, product failure and harness error fail; three pass.
    assert suite.returncode == 1, suite.stdout
    assert "5 failed, 3 passed" in suite.stdout, suite.stdout


@pytest.mark.process
def test_summary_has_one_valid_entry_per_run_sorted(suite: SuiteRun) -> None:
    entries = summary.read(suite.root / "out" / "summary.json")
    assert len(entries) == 8  # 5 cases + 2 repeats + the product-failure run
    assert [(e["fault"], e["recovery"]) for e in entries] == sorted(
        [(e["fault"], e["recovery"]) for e in entries], key=lambda fr: (fr[0], summary.recovery_rank(fr[1]), fr[1])
    )
    by_test = {e["test"]: e for e in entries}
    breach = by_test["test_scenarios.py::test_scenario[selector-flux]"]
    assert breach["verdict"] == "breach" and breach["ttr_seconds"] == pytest.approx(75.2)
    assert breach["phases"] == {"visible": pytest.approx(2.0), "recovered": pytest.approx(73.2)}
    not_recovered = by_test["test_scenarios.py::test_scenario[selector-none]"]
    assert not_recovered["verdict"] == "not-recovered" and not_recovered["ttr_seconds"] is None
    invalid = by_test["test_scenarios.py::test_scenario[outage-operator]"]
    assert invalid["verdict"] == "invalid" and "proof of fault missing" in invalid["reason"]
    assert sorted(e["repeat"] for e in entries if e["test"].endswith("test_repeated")) == [1, 2]


@pytest.mark.process
def test_scenario_labels_by_family_fault_recovery_and_verdict(suite: SuiteRun) -> None:
    result = suite.result("test_scenario[selector-flux]")
    expected = {
        "epic": ["workload"],
        "feature": ["selector-change"],
        "story": ["flux-native"],
        "parentSuite": ["workload"],
        "suite": ["selector-change"],
        "subSuite": ["flux-native"],
        "fault_family": ["workload"],
        "fault": ["selector-change"],
        "recovery": ["flux-native"],
        "verdict": ["breach"],
        "provider": ["local"],
        "signature": ["immutable-field"],
    }
    for name, values in expected.items():
        assert labels(result, name) == values, name
    assert result["status"] == "failed"
    params = {p["name"]: p for p in result["parameters"]}
    assert params["TTR (s)"]["value"] == "75.2" and params["TTR (s)"].get("excluded") is True


@pytest.mark.process
def test_repeated_runs_label_once_and_attach_per_run(suite: SuiteRun) -> None:
    result = suite.result("test_repeated")
    assert labels(result, "fault") == ["helm-upgrade-failed"]
    assert labels(result, "verdict") == ["pass"]
    names = [a["name"] for a in all_attachments(result)]
    assert "timeline" in names and "run 2: timeline" in names
    steps = [s["name"] for s in result["steps"]]
    assert any(s.startswith("verdict pass: ") for s in steps) and any(
        s.startswith("run 2: verdict pass") for s in steps
    )


@pytest.mark.process
def test_the_runners_steps_are_allure_steps(suite: SuiteRun) -> None:
    result = suite.result("test_scenario[selector-flux]")
    first = result["steps"][0]
    assert (first["name"], first["status"]) == ("inject", "passed")


STEPS = """
from contextlib import ExitStack

import pytest


def step(request, name, fail=False):
    with ExitStack() as steps:
        for context in request.config.hook.pytest_resilience_step(run=None, name=name):
            steps.enter_context(context)
        if fail:
            raise RuntimeError("the git server went away")


def test_steps(request):
    step(request, "inject selector-change")
    step(request, "revert", fail=True)
"""


@pytest.mark.process
def test_a_step_that_raised_is_a_broken_allure_step_and_without_allure_nothing(tmp_path: Path) -> None:
    root = make_suite(tmp_path / "chaos", scenarios=STEPS)
    proc = run_pytest(root, "--alluredir", "allure-results")
    assert proc.returncode == 1 and "RuntimeError: the git server went away" in proc.stdout, proc.stdout
    (result,) = allure_results(root / "allure-results")
    steps = [(s["name"], s["status"]) for s in result["steps"]]
    assert steps == [("inject selector-change", "passed"), ("revert", "broken")]
    proc = run_pytest(root, reports=False)
    assert proc.returncode == 1 and "RuntimeError: the git server went away" in proc.stdout, proc.stdout


@pytest.mark.process
def test_attachments_timeline_chart_flux_status_events_logs(suite: SuiteRun) -> None:
    result = suite.result("test_scenario[selector-flux]")
    step = next(s for s in result["steps"] if s["name"].startswith("verdict breach: "))
    assert step["name"] == "verdict breach: TTR 75.2s > max 60s"
    timeline = json.loads(suite.attachment(result, "timeline"))
    assert timeline["ttr_seconds"] == pytest.approx(75.2)
    assert timeline["verdict"] == "breach" and timeline["budget"]["ttr"]["max"] == 60
    assert suite.attachment(result, "TTR chart").startswith(PNG_MAGIC)
    assert suite.attachment(result, "timeline chart").startswith(PNG_MAGIC)
    before = json.loads(suite.attachment(result, "Flux status before"))
    after = json.loads(suite.attachment(result, "Flux status after"))
    assert before[0]["name"] == "apps" and before[0]["ready"].startswith("True ReconciliationSucceeded")
    assert after[0]["ready"].startswith("False ReconciliationFailed")
    assert "spec" not in after[0]  # status only
    events = suite.attachment(result, "events").decode()
    assert "Warning  ReconciliationFailed  Kustomization/flux-system/apps: dry-run failed (x3)" in events
    assert "+2.2s  Normal  Recreated  resilience-operator  Deployment/demo/web: deleted and re-applied" in events
    assert b"Reconciliation failed" in suite.attachment(result, "log: kustomize-controller")


@pytest.mark.process
def test_environment_properties(suite: SuiteRun) -> None:
    text = (suite.results / "environment.properties").read_text()
    lines = dict(line.split("=", 1) for line in text.splitlines())
    assert lines["kubernetes"] == "v1.36.3"
    assert lines["flux.kustomize-controller"] == "v1.9.4"
    assert lines["provider"] == "local"
    assert "python" in lines and "pytest" in lines


@pytest.mark.process
def test_categories_json_is_written_and_classifies_messages(suite: SuiteRun) -> None:
    written = json.loads((suite.results / "categories.json").read_text())
    assert written == allure2_categories()
    names = [c["name"] for c in written]
    for name in ("SLO breach", "Not recovered within the budget", "Invalid run (proof of fault missing)"):
        assert name in names
    assert names[-2:] == ["Harness error", "Product failure"]

    def classify(message: str, status: str) -> str:
        for c in written:
            if status in c["matchedStatuses"] and re.fullmatch(c.get("messageRegex", "(?s).*"), message):
                return str(c["name"])
        return "none"

    assert classify("AssertionError: breach: TTR 75.2s > max 60s", "failed") == "SLO breach"
    assert classify("AssertionError: not-recovered: not recovered within 240s", "failed").startswith("Not recovered")
    assert classify("AssertionError: invalid: proof of fault missing", "failed").startswith("Invalid run")
    assert classify("HarnessError: kube-apiserver exited", "broken") == "Harness error"
    assert classify("AssertionError: steady state: Deployment demo not Available", "failed") == "Product failure"


def test_allure3_categories_match_the_verdict_label_in_order() -> None:
    rules = allure3_categories()
    assert [r["name"] for r in rules] == [c.name for c in CATEGORIES]
    by_name = {r["name"]: r for r in rules}
    assert by_name["SLO breach"]["matchers"]["labels"] == {"verdict": "^breach$"}
    assert by_name["Not recovered within the budget"]["matchers"]["labels"] == {"verdict": "^not-recovered$"}
    assert by_name["Harness error"]["matchers"] == {"statuses": ["broken"]}
    assert by_name["Product failure"]["matchers"] == {"statuses": ["failed"]}
    assert by_name["Resilience summary"]["hide"] is True


@pytest.mark.process
def test_every_failing_test_gets_the_verdict_its_category_needs(suite: SuiteRun) -> None:
    def category(result: dict[str, Any]) -> str:
        for rule in allure3_categories():
            m = rule["matchers"]
            if result["status"] not in m["statuses"]:
                continue
            wanted = m.get("labels", {}).get("verdict")
            if wanted is None or any(re.search(wanted, v) for v in labels(result, "verdict")):
                return str(rule["name"])
        return "none"

    assert category(suite.result("test_scenario[selector-flux]")) == "SLO breach"
    assert category(suite.result("test_scenario[selector-none]")) == "Not recovered within the budget"
    assert category(suite.result("test_scenario[outage-operator]")) == "Invalid run (proof of fault missing)"
    assert category(suite.result("test_harness_error")) == "Harness error"
    # the product failure's run passed its budget: the failed assertion is the product's
    assert category(suite.result("test_product_failure")) == "Product failure"


@pytest.mark.process
def test_summary_page_shows_every_fault_under_every_recovery(suite: SuiteRun) -> None:
    results = [r for r in allure_results(suite.results) if r.get("fullName") == "resilience.ttr_matrix"]
    assert len(results) == 1
    page = results[0]
    assert page["status"] == "failed"
    assert page["statusDetails"]["message"].startswith("TTR matrix: FAIL - 1 breach, 1 invalid, 1 not-recovered")
    assert labels(page, "verdict") == ["summary"] and labels(page, "parentSuite") == ["Resilience summary"]
    html = page["descriptionHtml"]
    for text in ("selector-change", "helm-upgrade-failed", "source-outage", "none", "flux-native", "operator"):
        assert f">{text}<" in html, text
    assert "not recovered in 240s" in html and "75.2s" in html and "BREACH" in html and "INVALID" in html
    assert "data:image/png;base64," in html
    assert suite.attachment(page, "TTR chart").startswith(PNG_MAGIC)
    assert b"selector-change" in suite.attachment(page, "TTR table")


@pytest.mark.process
def test_global_attachments_and_ttr_metrics(suite: SuiteRun) -> None:
    [globals_file] = list(suite.results.glob("*-globals.json"))
    names = [a["name"] for a in json.loads(globals_file.read_text())["attachments"]]
    assert names == ["TTR per fault x recovery", "TTR chart"]
    [perf] = list(suite.results.glob("*-perf.json"))
    metrics = json.loads(perf.read_text())
    keys = sorted({m["key"] for m in metrics})
    # recovered runs only: not-recovered and invalid runs have no TTR to trend
    assert keys == [
        "ttr.helm-upgrade-failed.operator",
        "ttr.selector-change.flux-native",
        "ttr.selector-change.operator",
    ]
    flux = next(m for m in metrics if m["key"] == "ttr.selector-change.flux-native")
    assert flux["value"] == pytest.approx(75.2) and flux["unit"] == "s"


@pytest.mark.process
def test_junit_carries_the_verdict_as_properties(suite: SuiteRun) -> None:
    root = ET.parse(suite.root / "junit.xml").getroot()
    case = next(c for c in root.iter("testcase") if c.get("name") == "test_scenario[selector-flux]")
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert props["resilience.verdict"] == "breach"
    assert props["resilience.fault"] == "selector-change" and props["resilience.recovery"] == "flux-native"
    assert props["resilience.ttr_seconds"] == "75.2"


@pytest.mark.process
def test_terminal_shows_the_ttr_table(suite: SuiteRun) -> None:
    assert "recovery: TTR per fault x recovery" in suite.stdout
    assert re.search(r"flux-native\s+1\s+75\.2s\s+-\s+60\.0s / -\s+BREACH\s+TTR 75\.2s > max 60s", suite.stdout)
    assert "SLO: FAIL - 1 breach, 1 invalid, 1 not-recovered of 5 fault x recovery cell(s)" in suite.stdout


@pytest.mark.process
def test_without_alluredir_only_the_summary_is_written(tmp_path: Path) -> None:
    root = make_suite(tmp_path / "chaos")
    proc = run_pytest(root, "--resilience-summary", str(tmp_path / "out" / "s.json"), "-k", "selector or product")
    assert proc.returncode == 1, proc.stdout
    assert len(summary.read(tmp_path / "out" / "s.json")) == 4
    assert not (root / "allure-results").exists() and not (root / "out").exists()


@pytest.mark.process
def test_summary_path_from_the_environment(tmp_path: Path) -> None:
    root = make_suite(tmp_path / "chaos")
    target = tmp_path / "elsewhere.json"
    proc = run_pytest(root, "-k", "helm or repeated", env={"RESILIENCE_SUMMARY": str(target)})
    assert proc.returncode == 0, proc.stdout
    assert [e["verdict"] for e in summary.read(target)] == ["pass", "pass", "pass"]


@pytest.mark.process
def test_collect_only_writes_nothing(tmp_path: Path) -> None:
    root = make_suite(tmp_path / "chaos")
    proc = run_pytest(root, "--collect-only")
    assert proc.returncode == 0, proc.stdout
    assert not (root / "out").exists()


@pytest.mark.process
def test_a_session_without_runs_writes_an_empty_summary(tmp_path: Path) -> None:
    # a chaos session in which nothing produced a result must not leave the previous summary for the gate
    root = make_suite(tmp_path / "chaos")
    stale = root / "out" / "summary.json"
    stale.parent.mkdir()
    stale.write_text('[{"fault": "old", "recovery": "none", "verdict": "pass", "ttr_seconds": 1, "phases": {}}]')
    proc = run_pytest(root, "-k", "harness_error")
    assert proc.returncode == 1, proc.stdout
    assert summary.read(stale) == []


BAD_RESULT = """
from assertions.slo import Budget
from assertions.verdict import RunResult


def test_bad(request):
    result = RunResult("", "w", "none", Budget(), test=request.node.nodeid)
    result.judge()
    request.config.hook.pytest_resilience_run_result(result=result, item=request.node)
"""


@pytest.mark.process
def test_a_result_that_makes_a_bad_entry_is_a_harness_error(tmp_path: Path) -> None:
    root = make_suite(tmp_path / "chaos", scenarios=BAD_RESULT)
    proc = run_pytest(root)
    assert proc.returncode == 1
    assert "HarnessError: run result makes a bad summary entry" in proc.stdout, proc.stdout
    assert ".fault: string should match pattern" in proc.stdout


# xdist: workers hand their entries to the controller through workeroutput; simulated here without xdist.
WORKER_CONFTEST = """
import json
import pytest
from scenarios import hooks


def pytest_addhooks(pluginmanager):
    pluginmanager.add_hookspecs(hooks)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    config.workerinput = {"workerid": "gw0"}
    config.workeroutput = {}


@pytest.fixture(scope="session", autouse=True)
def environment(pytestconfig):
    pytestconfig.hook.pytest_resilience_environment(environment={"provider": "kind"})


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session):
    with open("workeroutput.json", "w") as f:
        json.dump(session.config.workeroutput, f)
"""

CONTROLLER_CONFTEST = """
import json
import pytest


class Node:
    def __init__(self, workeroutput):
        self.workeroutput = workeroutput


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session):
    with open("workeroutput.json") as f:
        session.config.hook.pytest_testnodedown(node=Node(json.load(f)), error=None)
"""


@pytest.mark.process
def test_xdist_workers_send_entries_and_the_controller_merges_them(tmp_path: Path) -> None:
    worker = make_suite(tmp_path / "worker", conftest=WORKER_CONFTEST)
    proc = run_pytest(worker, "-k", "selector or product", "--alluredir", "allure-results")
    assert proc.returncode == 1, proc.stdout
    assert not (worker / "out").exists(), "a worker must not write the summary"
    assert not (worker / "allure-results" / "categories.json").exists()
    output = json.loads((worker / "workeroutput.json").read_text())
    sent = json.loads(output["resilience_reports"])
    assert len(sent["entries"]) == 4 and sent["environment"] == {"provider": "kind"}

    controller = tmp_path / "controller"
    controller.mkdir()
    (controller / "conftest.py").write_text(CONTROLLER_CONFTEST)
    (controller / "workeroutput.json").write_text((worker / "workeroutput.json").read_text())
    (controller / "test_nothing.py").write_text("def test_nothing():\n    pass\n")
    proc = run_pytest(controller, "--alluredir", "allure-results")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    merged = summary.read(controller / "out" / "summary.json")
    assert sorted(e["recovery"] for e in merged) == ["flux-native", "none", "operator", "operator"]
    assert "provider=kind" in (controller / "allure-results" / "environment.properties").read_text()
    assert "TTR per fault x recovery" in proc.stdout


@pytest.mark.process
def test_real_xdist_run_merges_worker_entries(tmp_path: Path) -> None:
    pytest.importorskip("xdist")
    root = make_suite(tmp_path / "chaos")
    proc = run_pytest(root, "-n", "2", "--alluredir", "allure-results")
    assert proc.returncode == 1, proc.stdout
    assert len(summary.read(root / "out" / "summary.json")) == 8
    assert (root / "allure-results" / "categories.json").exists()
