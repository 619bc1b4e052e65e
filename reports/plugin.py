"""pytest plugin: every scenario run becomes Allure labels and attachments, a summary.json entry and a TTR table.

Activate it with `-p reports.plugin` (or `pytest_plugins = ["reports.plugin"]` in the chaos suite's conftest).
It implements, by name, the hooks scenarios/hooks.py declares (the scenario runner calls them):

- pytest_resilience_run_result(result, item): on the process that ran the test (an xdist worker, possibly),
  from inside the test, so `allure.dynamic` and `allure.attach` land on that test. Labels: epic/feature/story
  and parentSuite/suite/subSuite = fault family / fault / recovery, plus `fault_family`, `fault`, `recovery`,
  `verdict`, `provider`, `signature`; attachments: timeline JSON and chart (PNG), TTR chart (PNG), Flux objects'
  status before and after, events, controller log excerpts; under load, the load object, its chart (delivery
  latency and serving capacity) and locust's CSV statistics and HTML report; JUnit properties on the item.
- pytest_resilience_step(run, name): each phase of a run (inject, prove, recover, revert, judge ...) as an Allure
  step of the test, passed or broken as the phase ended (with --alluredir).
- pytest_resilience_environment(environment): recorded for environment.properties.
- pytest_resilience_plan(plan): what the session is meant to cover (scenarios.sharding); each entry records the
  plan's digest, and the manifest beside the summary the whole plan (reports.manifest).

With --alluredir, fixture teardowns show under their fixture's name with their outcome (reports.allure_teardowns).

At the end of the session the controller (workers send theirs through xdist's workeroutput) writes
out/summary.json, its manifest and, with --alluredir, environment.properties, categories.json and the
summary page.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import allure
import pytest

from assertions import criteria
from assertions.verdict import RunResult
from fluxmodel.conditions import condition
from reports import alert_coverage, allure_files, allure_teardowns, charts, manifest, summary
from reports.matrix import build_cells, measurement_text, render_table, verdict_line
from reports.reused import reused_text

WORKER_OUTPUT_KEY = "resilience_reports"
PLUGIN_NAME = "resilience-reports-recorder"
DEFAULT_SUMMARY = "out/summary.json"
OUTCOME_LIMIT = 200
# allure-python's Dynamic methods carry no annotations; reached through Any, strict mypy accepts the calls.
dynamic: Any = allure.dynamic
attach: Any = allure.attach


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("resilience-reports", "resilience reports")
    group.addoption(
        "--resilience-summary",
        metavar="PATH",
        default=None,
        help=f"where to write the run summary (default: $RESILIENCE_SUMMARY, else {DEFAULT_SUMMARY} under rootdir)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(Recorder(config), PLUGIN_NAME)
    if results_dir(config) is not None:
        allure_teardowns.register(config)


def pytest_unconfigure(config: pytest.Config) -> None:
    recorder = config.pluginmanager.get_plugin(PLUGIN_NAME)
    if recorder is not None:
        config.pluginmanager.unregister(recorder)
    allure_teardowns.unregister(config)


def summary_path(config: pytest.Config) -> Path:
    explicit = config.getoption("resilience_summary", None) or os.environ.get("RESILIENCE_SUMMARY")
    if explicit:
        return Path(explicit).expanduser().resolve()
    return config.rootpath / DEFAULT_SUMMARY


def results_dir(config: pytest.Config) -> Path | None:
    """The Allure results directory when allure-pytest is active (--alluredir), else None."""
    value = config.getoption("allure_report_dir", None)
    return Path(value).resolve() if value else None


def flux_status(objects: Any) -> list[dict[str, Any]]:
    """Flux objects cut down to identity, Ready and status (what the report shows before/after)."""
    out = []
    for obj in objects or []:
        if not isinstance(obj, dict):
            out.append({"object": obj})
            continue
        meta = obj.get("metadata") or {}
        ready = condition(obj, "Ready")
        out.append(
            {
                "kind": obj.get("kind"),
                "namespace": meta.get("namespace"),
                "name": meta.get("name"),
                "generation": meta.get("generation"),
                "ready": None if ready is None else f"{ready.status} {ready.reason}: {ready.message}".strip(),
                "status": obj.get("status") or {},
            }
        )
    return out


def events_text(events: Any) -> str:
    """Events, one line each: when, type, reason, reporting component, object, message.

    Takes Kubernetes Event objects and the timeline's event records (`at` seconds since injection, `object`
    as Kind/namespace/name, `component`) alike.
    """
    lines = []
    for event in events or []:
        if not isinstance(event, dict):
            lines.append(str(event))
            continue
        involved = event.get("involvedObject") or event.get("regarding") or {}
        parts = (involved.get("kind"), involved.get("namespace"), involved.get("name"))
        obj = "/".join(str(p) for p in parts if p) or str(event.get("object") or "")
        when = event.get("at", event.get("lastTimestamp") or event.get("eventTime") or "")
        when = f"+{when:.1f}s" if isinstance(when, int | float) else str(when)
        component = event.get("component") or event.get("reportingComponent") or ""
        count = f" (x{event['count']})" if event.get("count", 1) not in (1, None) else ""
        fields = (when, str(event.get("type") or ""), str(event.get("reason") or ""), str(component), obj)
        message = event.get("message") or event.get("note") or ""
        lines.append("  ".join(f for f in fields if f) + f": {message}{count}")
    return "\n".join(lines) + ("\n" if lines else "")


class Recorder:
    """Per-session state of the plugin (registered as a plugin object, so hook methods see the config)."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.entries: list[dict[str, Any]] = []
        self.environment: dict[str, str] = {}
        self.runs_per_item: dict[str, int] = {}
        self.verdicts_per_item: dict[str, set[str]] = {}
        self.started_ms = int(time.time() * 1000)
        # What the session is meant to cover (scenarios.sharding), and why planned tests left no run.
        self.plan: dict[str, Any] = {}
        self.outcomes: dict[str, str] = {}

    # -- hooks the scenario runner calls (declared in scenarios/hooks.py) --------------------------------------

    @pytest.hookimpl(optionalhook=True)
    def pytest_resilience_run_result(self, result: RunResult, item: pytest.Item) -> None:
        entry = result.summary_entry()
        nth = self._record(entry, item)
        if results_dir(self.config) is not None:
            verdicts = self.verdicts_per_item.setdefault(item.nodeid, set())
            self._allure(result, entry, first=nth == 1, new_verdict=entry["verdict"] not in verdicts, nth=nth)
            verdicts.add(entry["verdict"])

    @pytest.hookimpl(optionalhook=True)
    def pytest_resilience_reused_run(self, entry: dict[str, Any], item: pytest.Item) -> None:
        """A baseline run carried over from the store: recorded like a fresh one, its Allure test says so."""
        self._record(entry, item)
        reused = entry["reused"]
        item.user_properties.append(("resilience.reused", f"{reused['measured_at']} run {reused['run']}"))
        if results_dir(self.config) is None:
            return
        _labels(entry)
        dynamic.tag("reused")
        dynamic.label("reused", reused["measured_at"])
        dynamic.parameter("verdict", entry["verdict"], excluded=True)
        with allure.step(f"reused baseline: {reused_text(reused)}, verdict {entry['verdict']}"):
            attach_json(entry, "reused summary entry")

    def _record(self, entry: dict[str, Any], item: pytest.Item) -> int:
        """Keep a run's entry and put it on its test; returns which run of the test it is."""
        self.entries.append(entry)
        nth = self.runs_per_item.get(item.nodeid, 0) + 1
        self.runs_per_item[item.nodeid] = nth
        for key in ("fault", "recovery", "verdict", "ttr_seconds", "reason"):
            item.user_properties.append((f"resilience.{key}", entry[key]))
        return nth

    @pytest.hookimpl(optionalhook=True)
    def pytest_resilience_step(self, run: object, name: str) -> AbstractContextManager[object] | None:
        return allure.step(name) if results_dir(self.config) is not None else None

    @pytest.hookimpl(optionalhook=True)
    def pytest_resilience_environment(self, environment: dict[str, str]) -> None:
        self.environment.update({str(k): str(v) for k, v in environment.items()})

    @pytest.hookimpl(optionalhook=True)
    def pytest_resilience_plan(self, plan: dict[str, Any]) -> None:
        self.plan.update(plan)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Why a test left no run, for the gate's list of missing cells: its first skip, error or failure."""
        if report.outcome == "passed" or report.nodeid in self.outcomes:
            return
        if report.skipped:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            text = f"skipped: {reason.removeprefix('Skipped: ')}"
        else:
            lines = [line.strip() for line in report.longreprtext.splitlines() if line.strip()]
            text = f"{'failed' if report.when == 'call' else 'error in ' + report.when}: {lines[-1] if lines else ''}"
        self.outcomes[report.nodeid] = text[:OUTCOME_LIMIT]

    # -- Allure -------------------------------------------------------------------------------------------------

    def _allure(self, result: RunResult, entry: dict[str, Any], first: bool, new_verdict: bool, nth: int) -> None:
        prefix = f"run {nth}: " if nth > 1 else ""
        if first:
            _labels(entry)
        elif new_verdict:
            dynamic.label("verdict", entry["verdict"])
        ttr = entry["ttr_seconds"]
        dynamic.parameter("TTR (s)", "not recovered" if ttr is None else ttr, excluded=True)
        dynamic.parameter("TTR budget (s)", result.budget.ttr.max, excluded=True)
        dynamic.parameter("verdict", entry["verdict"], excluded=True)
        for criterion in criteria.CRITERIA:  # measurements beyond time, e.g. how far a bad revision got
            if criterion.key in entry:
                dynamic.parameter(criterion.key, measurement_text(criterion.key, entry[criterion.key]), excluded=True)
        what = entry["reason"] or ("no TTR" if ttr is None else f"TTR {ttr:.1f}s")
        title = f"{prefix}verdict {entry['verdict']}: {what}"
        with allure.step(title):
            timeline = {**result.timeline.to_json(), **{k: entry[k] for k in ("verdict", "reason", "budget")}}
            attach_json(timeline, f"{prefix}timeline")
            title = f"{result.fault} under {result.recovery}: the run's timeline"
            chart = charts.timeline_chart(timeline, entry.get("alerts") or (), title)
            allure.attach(chart, f"{prefix}timeline chart", allure.attachment_type.PNG)
            allure.attach(charts.run_chart(entry), f"{prefix}TTR chart", allure.attachment_type.PNG)
            self._attach_load(result, entry, prefix)
            diagnostics = result.diagnostics
            for objects, label in (
                (diagnostics.flux_before, "Flux status before"),
                (diagnostics.flux_after, "Flux status after"),
            ):
                if objects is not None:
                    attach_json(flux_status(objects), f"{prefix}{label}")
            if diagnostics.events is not None:
                allure.attach(events_text(diagnostics.events), f"{prefix}events", allure.attachment_type.TEXT)
            for component, text in sorted((diagnostics.logs or {}).items()):
                allure.attach(str(text), f"{prefix}log: {component}", allure.attachment_type.TEXT)
            for key, value in sorted(run_records(result).items()):
                attach_json(value, f"{prefix}{key}")

    @staticmethod
    def _attach_load(result: RunResult, entry: dict[str, Any], prefix: str) -> None:
        """Under load: the load object, a chart of delivery latency and serving capacity, locust's CSV and HTML."""
        if result.load_diagnostics is None:
            return
        series = result.load_diagnostics.series
        measured = entry.get("load")
        if isinstance(measured, Mapping):
            marks = {phase: result.timeline.since_injected(phase) for phase in ("visible", "recovered")}
            title = (
                f"{result.fault} under {result.recovery}, load {measured.get('profile')}: delivery latency per "
                "group, and the faulted app's Ready endpoints"
            )
            allure.attach(charts.load_chart(series, marks, title), f"{prefix}load chart", allure.attachment_type.PNG)
            attach_json(measured, f"{prefix}load")
            attach_json(series, f"{prefix}load series")
        for label, path in sorted(result.load_diagnostics.files.items()):
            kind = allure.attachment_type.HTML if str(path).endswith(".html") else allure.attachment_type.CSV
            if Path(path).is_file():
                attach.file(str(path), name=f"{prefix}{label}", attachment_type=kind)

    # -- xdist and session end --------------------------------------------------------------------------------

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """xdist controller: take the entries a worker recorded."""
        raw = (getattr(node, "workeroutput", None) or {}).get(WORKER_OUTPUT_KEY)
        if raw:
            data = json.loads(raw)
            self.entries.extend(data.get("entries") or [])
            self.environment.update(data.get("environment") or {})
            self.plan.update({k: v for k, v in (data.get("plan") or {}).items() if k not in self.plan})

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        config = session.config
        workeroutput = getattr(config, "workeroutput", None)
        if workeroutput is not None:  # an xdist worker: the controller writes the files
            workeroutput[WORKER_OUTPUT_KEY] = json.dumps(
                {"entries": self.entries, "environment": self.environment, "plan": self.plan}
            )
            return
        if config.option.collectonly:
            return
        self.entries = summary.write(summary_path(config), self.entries)
        if self.plan:
            manifest.write(manifest.path_for(summary_path(config)), manifest.from_plan(self.plan, self.outcomes))
        results = results_dir(config)
        if results is None:
            return
        environment = {"python": platform.python_version(), "pytest": pytest.__version__, **self.environment}
        allure_files.write_environment(results, environment)
        allure_files.write_categories(results)
        if self.entries:
            cells = build_cells(self.entries, baselines=summary.recorded_baselines(self.entries))
            allure_files.write_summary(results, cells, self.started_ms, int(time.time() * 1000))

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if getattr(self.config, "workeroutput", None) is not None or not self.entries:
            return
        cells = build_cells(self.entries, baselines=summary.recorded_baselines(self.entries))
        terminalreporter.write_sep("=", "recovery: TTR per fault x recovery")
        terminalreporter.write_line(render_table(cells))
        if alert_coverage.has_alerts(cells):
            terminalreporter.write_sep("=", "alert coverage per fault x recovery (seconds from injection)")
            terminalreporter.write_line(alert_coverage.render_text(cells))
        terminalreporter.write_line(verdict_line(cells).replace("gate: ", "SLO: ", 1))
        terminalreporter.write_line(f"summary: {summary_path(self.config)} ({len(self.entries)} runs)")


def _labels(entry: Mapping[str, Any]) -> None:
    """A run's Allure labels: family / fault / recovery as epic, feature, story and suites, provider, verdict."""
    family, fault, recovery = str(entry.get("family") or ""), str(entry["fault"]), str(entry["recovery"])
    dynamic.epic(family)
    dynamic.feature(fault)
    dynamic.story(recovery)
    dynamic.parent_suite(family)
    dynamic.suite(fault)
    dynamic.sub_suite(recovery)
    dynamic.label("fault_family", family)
    dynamic.label("fault", fault)
    dynamic.label("recovery", recovery)
    dynamic.label("provider", str(entry.get("provider") or ""))
    dynamic.tag(recovery)
    dynamic.label("verdict", entry["verdict"])
    if entry.get("signature"):
        dynamic.label("signature", str(entry["signature"]))


def run_records(result: RunResult) -> dict[str, Any]:
    """The run's records the report attaches as JSON, by name: what the runner measured beside the evidence."""
    records = {
        "cluster_lock": result.cluster_lock.to_json() if result.cluster_lock else None,
        "controllers": result.diagnostics.controllers,
        "harness_seconds": result.harness_seconds,
        "host": result.host.to_json() if result.host else None,
        "load_cpu": result.load_diagnostics.cpu if result.load_diagnostics else None,
        "proof": result.diagnostics.proof,
        "reached": result.diagnostics.reached,
        "reconcilers": result.reconcilers.to_json() if result.reconcilers else None,
        "revert_problems": result.revert_problems or None,
        "run_seconds": result.run_seconds,
    }
    return {key: value for key, value in records.items() if value is not None}


def attach_json(value: Any, name: str) -> None:
    allure.attach(json.dumps(value, indent=2, default=str), name, allure.attachment_type.JSON)
