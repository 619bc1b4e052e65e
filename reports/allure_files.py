"""Files the plugin writes straight into the Allure results directory, beside allure-pytest's own.

- environment.properties: what the runs ran on (Kubernetes, Flux, provider, ...);
- categories.json: the failure categories (Allure 2 format; see reports.categories);
- the summary page: one result "TTR per fault x recovery" holding the side-by-side matrix (its description),
  the TTR chart and the text table (attachments), and, when more than one recovery mode ran, the modes compared
  (reports.compare); the same page and chart as global attachments; and one
  performance metric per recovered run (`ttr.<fault>.<recovery>`, seconds), which Allure 3 shows on its
  Metrics page with the trend over earlier reports.

Results written here follow the Allure 2 results format that both Allure 2 and Allure 3 read.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from assertions.verdict import Verdict
from reports import alert_coverage, charts, compare
from reports.categories import allure2_categories
from reports.matrix import Cell, render_html, render_table, verdict_line
from reports.summary import write_text_atomic

SUMMARY_HISTORY_ID = hashlib.md5(b"resilience.ttr_matrix", usedforsecurity=False).hexdigest()
SUMMARY_SUITE = "Resilience summary"


def _escape_properties(text: str, key: bool) -> str:
    out = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif key and ch in " :=#!":
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def write_environment(results_dir: Path, environment: Mapping[str, str]) -> Path:
    """environment.properties (Java properties syntax), keys sorted."""
    results_dir.mkdir(parents=True, exist_ok=True)
    lines = [
        f"{_escape_properties(str(k), key=True)}={_escape_properties(str(v), key=False)}"
        for k, v in sorted(environment.items())
    ]
    path = results_dir / "environment.properties"
    write_text_atomic(path, "\n".join(lines) + "\n")
    return path


def write_categories(results_dir: Path) -> Path:
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / "categories.json"
    write_text_atomic(path, json.dumps(allure2_categories(), indent=2) + "\n")
    return path


def attachment(results_dir: Path, body: bytes, extension: str) -> str:
    """Write an attachment file; returns its `source` name."""
    source = f"{uuid.uuid4()}-attachment.{extension}"
    (results_dir / source).write_bytes(body)
    return source


def _coverage(cells: list[Cell]) -> str:
    """The alert coverage table, when runs had monitoring."""
    if not alert_coverage.has_alerts(cells):
        return ""
    return "<h3>Alert coverage per fault x recovery (seconds from injection)</h3>" + alert_coverage.render_html(cells)


def _entries(cells: list[Cell]) -> list[Mapping[str, Any]]:
    return [run.entry for cell in cells for run in cell.runs]


def _compared(cells: list[Cell]) -> compare.Comparison | None:
    """The recovery modes side by side, when more than one ran."""
    return compare.compare(_entries(cells)) if len({c.recovery for c in cells}) > 1 else None


def _comparison(cells: list[Cell]) -> str:
    table = _compared(cells)
    if table is None:
        return ""
    return "<h3>Recovery modes side by side (medians over repeats)</h3>" + compare.render_html(table)


def _page(cells: list[Cell], chart_png: bytes) -> str:
    chart = base64.b64encode(chart_png).decode()
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>TTR per fault x recovery</title></head>"
        "<body style='font-family:sans-serif'>"
        f"<h2>TTR per fault x recovery</h2><p>{verdict_line(cells)}</p>{render_html(cells)}"
        f"<p><img alt='TTR chart' style='max-width:100%' src='data:image/png;base64,{chart}'></p>"
        f"{_comparison(cells)}{_coverage(cells)}</body></html>"
    )


def _metrics(cells: list[Cell], start_ms: int) -> list[dict[str, Any]]:
    out = []
    for cell in cells:
        for run in cell.runs:
            if run.ttr is None:
                continue
            out.append(
                {
                    "id": str(uuid.uuid4()),
                    "key": f"ttr.{cell.fault}.{cell.recovery}",
                    "title": f"TTR {cell.fault} / {cell.recovery}",
                    "group": cell.fault,
                    "unit": "s",
                    "better": "lower",
                    "value": run.ttr,
                    "start": start_ms,
                    "stop": start_ms + round(run.ttr * 1000),
                }
            )
    return out


def _coverage_attachment(results_dir: Path, cells: list[Cell]) -> list[dict[str, str]]:
    if not alert_coverage.has_alerts(cells):
        return []
    source = attachment(results_dir, (alert_coverage.render_text(cells) + "\n").encode(), "txt")
    return [{"name": "Alert coverage", "source": source, "type": "text/plain"}]


def _comparison_attachment(results_dir: Path, cells: list[Cell]) -> list[dict[str, str]]:
    table = _compared(cells)
    if table is None:
        return []
    source = attachment(results_dir, (compare.render_text(table) + "\n").encode(), "txt")
    return [{"name": "Recovery modes compared", "source": source, "type": "text/plain"}]


def write_summary(results_dir: Path, cells: list[Cell], start_ms: int, stop_ms: int) -> str:
    """The summary result, its attachments, global attachments and metrics; returns the result's uuid."""
    results_dir.mkdir(parents=True, exist_ok=True)
    chart_png = charts.matrix_chart(cells)
    page = _page(cells, chart_png)
    chart_src = attachment(results_dir, chart_png, "png")
    page_src = attachment(results_dir, page.encode(), "html")
    table_src = attachment(results_dir, (render_table(cells) + "\n\n" + verdict_line(cells) + "\n").encode(), "txt")
    failing = [c for c in cells if c.verdict is not Verdict.PASS]
    status = "failed" if failing else "passed"
    line = verdict_line(cells).removeprefix("gate: ")
    runs = sum(len(c.runs) for c in cells)
    chart_inline = base64.b64encode(chart_png).decode()
    result_uuid = str(uuid.uuid4())
    result: dict[str, Any] = {
        "uuid": result_uuid,
        "historyId": SUMMARY_HISTORY_ID,
        "testCaseId": SUMMARY_HISTORY_ID,
        "name": f"TTR per fault x recovery ({runs} runs)",
        "fullName": "resilience.ttr_matrix",
        "status": status,
        "stage": "finished",
        "start": start_ms,
        "stop": stop_ms,
        "descriptionHtml": (
            f"<p><b>{line}</b></p>{render_html(cells)}"
            f"<p><img alt='TTR chart' style='max-width:100%' src='data:image/png;base64,{chart_inline}'></p>"
            f"{_comparison(cells)}{_coverage(cells)}"
        ),
        "labels": [
            {"name": "parentSuite", "value": SUMMARY_SUITE},
            {"name": "suite", "value": "TTR matrix"},
            {"name": "epic", "value": SUMMARY_SUITE},
            {"name": "verdict", "value": "summary"},
            {"name": "framework", "value": "gitops-resilience"},
        ],
        "attachments": [
            {"name": "TTR chart", "source": chart_src, "type": "image/png"},
            {"name": "TTR matrix", "source": page_src, "type": "text/html"},
            {"name": "TTR table", "source": table_src, "type": "text/plain"},
            *_comparison_attachment(results_dir, cells),
            *_coverage_attachment(results_dir, cells),
        ],
        "parameters": [],
        "steps": [],
    }
    if failing:
        result["statusDetails"] = {"message": f"TTR matrix: {line}", "trace": render_table(cells)}
    (results_dir / f"{result_uuid}-result.json").write_text(json.dumps(result, indent=1))
    page_global = attachment(results_dir, page.encode(), "html")
    chart_global = attachment(results_dir, chart_png, "png")
    globals_item = {
        "attachments": [
            {"name": "TTR per fault x recovery", "source": page_global, "type": "text/html"},
            {"name": "TTR chart", "source": chart_global, "type": "image/png"},
        ],
        "errors": [],
    }
    (results_dir / f"{uuid.uuid4()}-globals.json").write_text(json.dumps(globals_item))
    (results_dir / f"{uuid.uuid4()}-perf.json").write_text(json.dumps(_metrics(cells, start_ms)))
    return result_uuid


def read_environment(results_dir: Path) -> dict[str, str]:
    """environment.properties as written by write_environment (absent: empty)."""
    try:
        text = (results_dir / "environment.properties").read_text()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        key: list[str] = []
        value: list[str] = []
        escaped = False
        target = key
        for ch in line:
            if escaped:
                target.append({"n": "\n", "r": "\r", "t": "\t"}.get(ch, ch))
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == "=" and target is key:
                target = value
            else:
                target.append(ch)
        if key:
            out["".join(key)] = "".join(value)
    return out


def summary_page_files(results_dir: Path) -> set[str]:
    """The files write_summary wrote into a results directory (the page, its attachments, the global
    attachments, the TTR metrics): what a merged report replaces with one page of the merged runs."""
    found: set[str] = set()
    for path in results_dir.iterdir():
        kind = path.name.rsplit("-", 1)[-1]
        if kind not in ("result.json", "globals.json", "perf.json"):
            continue
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if kind == "result.json":
            ours = isinstance(data, dict) and data.get("fullName") == "resilience.ttr_matrix"
        elif kind == "globals.json":
            names = {a.get("name") for a in (data.get("attachments") or [])} if isinstance(data, dict) else set()
            ours = "TTR per fault x recovery" in names
        else:
            ours = isinstance(data, list) and all(str(m.get("key", "")).startswith("ttr.") for m in data)
        if ours:
            found.add(path.name)
            if isinstance(data, dict):
                found |= {str(a.get("source")) for a in (data.get("attachments") or [])}
    return found
