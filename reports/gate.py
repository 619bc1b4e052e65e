"""`resilience gate`: judge reports/summary.json per fault x recovery and fail on anything over budget.

Exit codes: 0 every judged cell passed; 1 at least one breach, not-recovered or invalid cell (cells under a
`--baseline` recovery mode are shown but never fail); 2 bad input (one line on stderr).
"""

from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import Any, TextIO

import yaml

from assertions import slo as slo_model
from foundation.errors import UserError
from reports import alert_coverage, summary
from reports.matrix import Cell, build_cells, render_table, seconds, ttr_text, verdict_line

# What XML 1.0 does not allow (control characters other than tab, newline and carriage return; lone surrogates;
# U+FFFE, U+FFFF). ElementTree writes them unchanged, and no XML reader opens the file then.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _faults_named_in(path: Path) -> set[str]:
    """Scenario keys of an SLO file, so a summary of a subset of faults can be judged against a full file.

    Unreadable or malformed files give nothing here; slo.load reports them properly right after.
    """
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return set()
    scenarios = raw.get("scenarios") if isinstance(raw, dict) else None
    return {str(k) for k in scenarios} if isinstance(scenarios, dict) else set()


def load_slo(path: Path, entries: Iterable[Mapping[str, Any]]) -> slo_model.SloFile:
    """The SLO file, validated; fault names are the summary's and the file's own (the catalog lives in the
    chaos suite, which validates names when it loads the same file)."""
    known = sorted({str(e["fault"]) for e in entries} | _faults_named_in(path))
    return slo_model.load(path, known)


def run_gate(
    summary_path: Path,
    slo_path: Path | None = None,
    baselines: Collection[str] | None = None,
    junit_path: Path | None = None,
    out: TextIO | None = None,
) -> int:
    """Print the fault x recovery table and return the exit code. Baselines default to the ones the chaos
    suite recorded with its runs, so the gate judges a run as pytest did."""
    out = out or sys.stdout
    entries = summary.read(summary_path)
    if not entries:
        raise UserError(f"{summary_path}: no runs to judge (an empty list); did the chaos suite run any scenario?")
    slo = load_slo(slo_path, entries) if slo_path is not None else None
    if baselines is None:
        baselines = summary.recorded_baselines(entries)
    cells = build_cells(entries, slo, set(baselines))
    budgets = f"budgets from {slo_path}" if slo_path is not None else "budgets as recorded with each run"
    note = f"; baseline recovery modes: {', '.join(sorted(baselines))}" if baselines else ""
    print(f"{len(entries)} run(s) from {summary_path}; {budgets}{note}", file=out)
    print(render_table(cells), file=out)
    if alert_coverage.has_alerts(cells):
        print("alert coverage (seconds from injection):", file=out)
        print(alert_coverage.render_text(cells), file=out)
    missing = sorted(set(baselines) - {c.recovery for c in cells})
    if missing:
        print(f"note: no runs under baseline mode(s) {', '.join(missing)}", file=out)
    print(verdict_line(cells), file=out)
    if junit_path is not None:
        write_junit(junit_path, cells)
        print(f"junit: {junit_path}", file=out)
    return 1 if any(c.fails_gate for c in cells) else 0


def write_junit(path: Path, cells: list[Cell]) -> None:
    """One testcase per fault x recovery: failure when over budget, skipped when a baseline missed it."""
    failures = [c for c in cells if c.fails_gate]
    skipped = [c for c in cells if c.excused]
    suite = ET.Element(
        "testsuite",
        name="resilience-gate",
        tests=str(len(cells)),
        failures=str(len(failures)),
        errors="0",
        skipped=str(len(skipped)),
    )
    for cell in cells:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"resilience.{cell.fault}",
            name=cell.recovery,
            time=f"{cell.ttr_max or 0:.3f}",
        )
        props = ET.SubElement(case, "properties")
        values = {
            "family": cell.family,
            "runs": str(len(cell.runs)),
            "verdict": cell.verdict.value,
            "ttr_max_seconds": seconds(cell.ttr_max),
            "ttr_p95_seconds": seconds(cell.ttr_p95),
            "budget_ttr_max_seconds": seconds(cell.budget.ttr.max),
            "budget_ttr_p95_seconds": seconds(cell.budget.ttr.p95),
        }
        for name, value in values.items():
            ET.SubElement(props, "property", name=name, value=value)
        message = f"{cell.verdict.value}: {ttr_text(cell)} vs budget {seconds(cell.budget.ttr.max)}"
        detail = "; ".join(cell.reasons)
        if cell.fails_gate:
            ET.SubElement(case, "failure", message=message, type=cell.verdict.value).text = detail
        elif cell in skipped:
            ET.SubElement(case, "skipped", message=f"baseline, not judged: {message}").text = detail
    root = ET.Element("testsuites", name="resilience")
    root.append(suite)
    ET.indent(root)
    for element in root.iter():
        element.attrib = {k: xml_text(v) for k, v in element.attrib.items()}
        element.text = xml_text(element.text) if element.text else element.text
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        summary.write_text_atomic(path, ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n")
    except OSError as e:
        raise UserError(f"--junit {path}: cannot write it ({e.strerror or e}); choose a writable path") from e


def xml_text(text: str) -> str:
    """text with what XML 1.0 forbids spelled as a visible escape (ESC becomes \\x1b)."""
    return _NOT_XML.sub(lambda m: ascii(m.group())[1:-1], text)
