"""`resilience gate`: judge out/summary.json per fault x recovery and fail on anything over budget.

Several summaries (the shards of one run) are merged first. The gate fails as incomplete when the runs do not
cover the planned matrix exactly once: a shard missing or given twice, a cell without a run or with too many
(the manifest beside each summary says what was planned; `--profile NAME` demands that profile's whole matrix).
A baseline run reused from the store fails the gate when its key no longer matches (reports.reused).

Exit codes: 0 every judged cell passed and the matrix is complete; 1 at least one breach, not-recovered or
invalid cell (cells under a `--baseline` recovery mode are shown but never fail), or incomplete; 2 bad input
(one line on stderr).
"""

from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

import yaml

from assertions import slo as slo_model
from foundation import strictread
from foundation.errors import UserError
from reports import alert_coverage, manifest, reused, summary
from reports.matrix import Cell, build_cells, judged, printable, render_table, seconds, ttr_text, verdict_line

# What XML 1.0 does not allow (control characters other than tab, newline and carriage return; lone surrogates;
# U+FFFE, U+FFFF). ElementTree writes them unchanged, and no XML reader opens the file then.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _faults_named_in(path: Path) -> set[str]:
    """Scenario keys of an SLO file, so a summary of a subset of faults can be judged against a full file.

    Unreadable or malformed files give nothing here; slo.load reports them properly right after.
    """
    try:
        raw = strictread.loads_yaml(strictread.read_text(path))
    except (OSError, ValueError, yaml.YAMLError):
        return set()
    scenarios = raw.get("scenarios") if isinstance(raw, dict) else None
    return {str(k) for k in scenarios} if isinstance(scenarios, dict) else set()


def load_slo(path: Path, entries: Iterable[Mapping[str, Any]]) -> slo_model.SloFile:
    """The SLO file, validated; fault names are the summary's and the file's own (the catalog lives in the
    chaos suite, which validates names when it loads the same file)."""
    known = sorted({str(e["fault"]) for e in entries} | _faults_named_in(path))
    return slo_model.load(path, known)


def profile_cells(slo: slo_model.SloFile, name: str) -> list[manifest.Key]:
    """Every cell a profile of the SLO file asks for: its faults (the whole catalog for `all`) x the recovery
    modes each runs under (the chaos suite runs no other) x its repeats."""
    from injectors.registry import FAULTS, fault  # the catalog, for `faults: all`

    profile = slo.profile(name)
    faults = profile.faults if profile.faults is not None else tuple(FAULTS)
    return [
        (f, r, k)
        for f in faults
        for r in profile.recoveries
        if fault(f).runs_under(r)
        for k in range(1, profile.repeat + 1)
    ]


def _inputs_line(paths: Sequence[Path], planned: manifest.Manifest | None) -> str:
    where = str(paths[0]) if len(paths) == 1 else f"{len(paths)} summaries"
    if planned is None:
        return where
    shards = ", ".join(f"{i}/{planned.shard_count}" for i in planned.shards)
    run = f" of run {printable(planned.run)}" if planned.run else ""
    profile = f", profile {printable(planned.profile)}" if planned.profile else ""
    return f"{where} (shard {shards}{run}{profile})" if planned.shard_count > 1 else f"{where}{run}{profile}"


def run_gate(
    summary_path: Path | Sequence[Path],
    slo_path: Path | None = None,
    baselines: Collection[str] | None = None,
    junit_path: Path | None = None,
    out: TextIO | None = None,
    profile: str | None = None,
) -> int:
    """Print the fault x recovery table and return the exit code. Baselines default to the ones the chaos
    suite recorded with its runs, so the gate judges a run as pytest did."""
    out = out or sys.stdout
    paths = [summary_path] if isinstance(summary_path, Path) else list(summary_path)
    if profile is not None and slo_path is None:
        raise UserError(f"--profile {profile}: needs --slo FILE, the SLO file that defines the profile")
    if junit_path is not None:
        _refuse_overwriting_inputs(junit_path, [*paths, *(manifest.path_for(p) for p in paths), slo_path])
    entries, planned = manifest.load_runs(paths, need_budgets=slo_path is None)
    slo = load_slo(slo_path, entries) if slo_path is not None else None
    expected = profile_cells(slo, profile) if slo is not None and profile is not None else None
    problems = manifest.coverage_problems(entries, planned, expected)
    if slo is not None and profile is not None:
        problems += _profile_problems(slo.profile(profile), entries, planned)
    if not entries and not problems:
        where = paths[0] if len(paths) == 1 else ", ".join(str(p) for p in paths)
        raise UserError(f"{where}: no runs to judge (an empty list); did the chaos suite run any scenario?")
    if baselines is None:
        baselines = summary.recorded_baselines(entries)
    cells = build_cells(entries, slo, set(baselines))
    budgets = f"budgets from {slo_path}" if slo_path is not None else "budgets as recorded with each run"
    note = f"; baseline recovery modes: {', '.join(sorted(baselines))}" if baselines else ""
    print(printable(f"{len(entries)} run(s) from {_inputs_line(paths, planned)}; {budgets}{note}"), file=out)
    print(render_table(cells), file=out)
    if alert_coverage.has_alerts(cells):
        print("alert coverage (seconds from injection):", file=out)
        print(alert_coverage.render_text(cells), file=out)
    missing = sorted(set(baselines) - {c.recovery for c in cells})
    if missing:
        print(printable(f"note: no runs under baseline mode(s) {', '.join(missing)}"), file=out)
    if planned is None and expected is None:
        print("note: no manifest beside the summary: whether every planned cell ran is not checked", file=out)
    for problem in problems:
        print(printable(f"incomplete: {problem}"), file=out)
    stale = reused.key_problems(entries, slo)
    for problem in stale:
        print(printable(f"invalid: {problem}"), file=out)
    line = verdict_line(cells)
    if problems:
        given = line.removeprefix("gate: ") if cells else "no runs"
        line = f"gate: FAIL - incomplete: the runs do not cover the matrix exactly once; of the runs given: {given}"
    elif stale:
        line = (
            f"gate: FAIL - invalid: {len(stale)} reused baseline run(s) whose key no longer matches: measure them "
            "again (--fresh-baselines)"
        )
    print(line, file=out)
    if junit_path is not None:
        checked = planned is not None or expected is not None
        any_reused = any(entry.get("reused") for entry in entries)
        write_junit(junit_path, cells, problems if checked else None, stale if any_reused else None)
        print(f"junit: {junit_path}", file=out)
    return 1 if problems or stale or not judged(cells) or any(c.fails_gate for c in cells) else 0


def _refuse_overwriting_inputs(junit: Path, inputs: Sequence[Path | None]) -> None:
    """--junit naming an input (the summary, its manifest, the SLO file) would replace it with XML: refused."""
    target = junit.resolve()
    for path in inputs:
        if path is not None and path.resolve() == target:
            raise UserError(f"--junit {junit}: is an input of the gate ({path}); write the JUnit XML elsewhere")


def _profile_problems(
    profile: slo_model.Profile, entries: Sequence[Mapping[str, Any]], planned: manifest.Manifest | None
) -> list[str]:
    """Why the runs are not the profile the gate was asked to judge: planned under another profile, or without
    the monitoring the profile runs with (no alert was judged where the profile promises alerts)."""
    problems = []
    if planned is not None and planned.profile != profile.name:
        problems.append(
            f"the manifest records profile {planned.profile!r}, not {profile.name!r}: these runs were planned "
            "for another profile"
        )
    if profile.monitoring:
        silent = [e for e in entries if "alerts" not in e]
        if silent:
            problems.append(
                f"profile {profile.name} runs with monitoring, but {len(silent)} run(s) recorded no alerts "
                f"(e.g. {manifest.key_text(manifest.entry_key(silent[0]))}): they were run without it"
            )
    return problems


def write_junit(
    path: Path, cells: list[Cell], problems: Sequence[str] | None = None, stale: Sequence[str] | None = None
) -> None:
    """One testcase per fault x recovery: failure when over budget, skipped when a baseline missed it; when
    completeness was checked (`problems` not None), a `completeness` case that fails when it is incomplete; and when
    baselines were reused (`stale` not None), a `reused-baselines` case that fails when a key no longer matches."""
    failures = [c for c in cells if c.fails_gate]
    skipped = [c for c in cells if c.excused]
    suite = ET.Element(
        "testsuite",
        name="resilience-gate",
        tests=str(len(cells) + (problems is not None) + (stale is not None)),
        failures=str(len(failures) + bool(problems) + bool(stale)),
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
    if problems is not None:
        case = ET.SubElement(suite, "testcase", classname="resilience.matrix", name="completeness", time="0.000")
        if problems:
            ET.SubElement(case, "failure", message="incomplete", type="incomplete").text = "\n".join(problems)
    if stale is not None:
        case = ET.SubElement(suite, "testcase", classname="resilience.matrix", name="reused-baselines", time="0.000")
        if stale:
            ET.SubElement(case, "failure", message="stale key", type="invalid").text = "\n".join(stale)
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
