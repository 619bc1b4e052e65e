"""Fault x recovery cells: the runs of one fault under one recovery mode, judged together against one budget.

Every run is judged by the one judge (assertions.verdict.judge) from the evidence its summary entry recorded,
against the recorded budget or another SLO file's. A cell's verdict is the worst of its runs' verdicts (invalid >
not-recovered > breach > pass), and a breach when the p95 over its runs exceeds the budget's p95. p95 is judged
only when the fault ran more than once under that recovery (nearest rank, assertions.verdict.percentile; a run
that never recovered counts as infinitely slow). A baseline mode's cell may miss its time budget without
failing the gate; it still fails on lost data, on an invalid run and on a harness error.
The gate, the terminal summary, the Allure summary page and the TTR chart all read cells from here.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from assertions import criteria
from assertions.slo import Budget, SloFile
from assertions.verdict import SEVERITY, Judgement, Verdict, evidence_from_entry, judge, percentile
from foundation.errors import UserError
from reports import reused
from reports.summary import recovery_rank

COLORS: dict[Verdict, str] = {
    Verdict.PASS: "#2e7d32",
    Verdict.BREACH: "#c62828",
    Verdict.NOT_RECOVERED: "#6a1b9a",
    Verdict.INVALID: "#ef6c00",
}
BACKGROUNDS: dict[Verdict, str] = {
    Verdict.PASS: "#e8f5e9",
    Verdict.BREACH: "#ffebee",
    Verdict.NOT_RECOVERED: "#f3e5f5",
    Verdict.INVALID: "#fff3e0",
}


@dataclass(frozen=True)
class Run:
    """One summary entry and the judge's verdict on it (against the recorded budget, or an SLO file's)."""

    entry: Mapping[str, Any]
    judgement: Judgement

    @property
    def verdict(self) -> Verdict:
        return self.judgement.verdict

    @property
    def reason(self) -> str:
        return self.judgement.reason

    @property
    def ttr(self) -> float | None:
        value = self.entry.get("ttr_seconds")
        return None if value is None else float(value)

    @property
    def detect(self) -> float | None:
        value = self.entry.get("detect_seconds")
        return None if value is None else float(value)

    @property
    def phases(self) -> dict[str, float]:
        return {str(k): float(v) for k, v in (self.entry.get("phases") or {}).items()}


@dataclass(frozen=True)
class Cell:
    fault: str
    family: str
    recovery: str
    budget: Budget
    runs: tuple[Run, ...]
    verdict: Verdict
    reasons: tuple[str, ...]
    baseline: bool = False
    p95_problems: tuple[str, ...] = field(default=())

    @property
    def ttrs(self) -> list[float | None]:
        return [run.ttr for run in self.runs]

    @property
    def ttr_max(self) -> float | None:
        """Slowest recovery among the runs that recovered (None when none did)."""
        recovered = [t for t in self.ttrs if t is not None]
        return max(recovered) if recovered else None

    @property
    def ttr_p95(self) -> float | None:
        """p95 over the runs (None for a single run or when the p95 run never recovered)."""
        if len(self.runs) < 2:
            return None
        value = percentile([math.inf if t is None else t for t in self.ttrs], 95)
        return None if math.isinf(value) else value

    @property
    def worst(self) -> Run:
        """The run that decides the cell: the worst verdict, then the slowest."""
        return max(self.runs, key=lambda r: (SEVERITY[r.verdict], math.inf if r.ttr is None else r.ttr))

    @property
    def excused(self) -> bool:
        """A baseline cell that missed only its time budget: shown, not failing the gate."""
        failed = [r for r in self.runs if r.verdict is not Verdict.PASS]
        return self.baseline and self.verdict is not Verdict.PASS and all(r.judgement.excusable for r in failed)

    @property
    def fails_gate(self) -> bool:
        return self.verdict is not Verdict.PASS and not self.excused

    @property
    def loads(self) -> list[Mapping[str, Any]]:
        """The `load` objects of the runs that ran under load (assertions.load_criterion)."""
        return [r.entry["load"] for r in self.runs if isinstance(r.entry.get("load"), Mapping)]

    @property
    def downtime(self) -> float | None:
        """The longest downtime of the faulted app over the runs (None: no load, or the app serves nothing)."""
        values = [float(m["downtime_seconds"]) for m in self.loads if m.get("downtime_seconds") is not None]
        return max(values) if values else None

    @property
    def blast_radius(self) -> list[str] | None:
        """Every team any run's fault hit (None: no run under load)."""
        if not self.loads:
            return None
        return sorted({str(team) for m in self.loads for team in m.get("blast_radius") or []})

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for run in self.runs:
            out[run.verdict.value] = out.get(run.verdict.value, 0) + 1
        return out


def judge_entry(entry: Mapping[str, Any], budget: Budget | None = None) -> Run:
    """Judge one recorded run, against `budget` or the budget it recorded. The worse of the recorded verdict and
    the judge's counts, whichever budget: a run the chaos suite found invalid (or lost data in) stays so under any
    SLO file, and a recorded verdict better than the judge's is overruled by the judge."""
    judgement = judge(evidence_from_entry(entry), budget or Budget.from_json(entry.get("budget")))
    recorded = Verdict(entry["verdict"])
    if SEVERITY[recorded] > SEVERITY[judgement.verdict]:
        why = entry.get("reason") or "no reason"
        # Only time can be excused (a baseline): a recorded invalid run never is.
        excusable = recorded is not Verdict.INVALID and (judgement.passed or judgement.excusable)
        judgement = Judgement(
            recorded, f"recorded {recorded.value} ({why}); the judge says {judgement.verdict}", excusable
        )
    return Run(entry, judgement)


def _p95_problems(runs: list[Run], budget: Budget) -> list[str]:
    if len(runs) < 2:
        return []
    problems = []
    limit = budget.ttr.p95
    if limit is not None:
        value = percentile([math.inf if r.ttr is None else r.ttr for r in runs], 95)
        if value > limit:
            shown = "never" if math.isinf(value) else f"{value:.1f}s"
            problems.append(f"p95 TTR {shown} > p95 {limit:.0f}s over {len(runs)} runs")
    detects = [r.detect for r in runs if r.detect is not None]
    limit = budget.detect.p95
    if limit is not None and len(detects) >= 2:
        value = percentile(detects, 95)
        if value > limit:
            problems.append(f"p95 time to detect {value:.1f}s > p95 {limit:.0f}s over {len(detects)} runs")
    return problems


def build_cells(
    entries: Iterable[Mapping[str, Any]], slo: SloFile | None = None, baselines: Collection[str] = ()
) -> list[Cell]:
    """Group entries by fault x recovery, judge each cell; ordered by fault, then recovery mode."""
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for entry in entries:
        groups.setdefault((str(entry["fault"]), str(entry["recovery"])), []).append(entry)
    cells = []
    for (fault, recovery), group in sorted(
        groups.items(), key=lambda kv: (kv[0][0], recovery_rank(kv[0][1]), kv[0][1])
    ):
        if slo is not None:
            budget = slo.budget(fault, recovery)
            runs = [judge_entry(e, budget) for e in group]
        else:
            missing = [e for e in group if e.get("budget") is None]
            if missing:
                raise UserError(
                    f"{fault} x {recovery}: run {missing[0].get('test') or 'without a test id'} recorded no budget; "
                    "judge it against an SLO file with --slo FILE (no budget is invented)"
                )
            budget = Budget.from_json(group[0].get("budget"))
            runs = [judge_entry(e) for e in group]
        p95 = _p95_problems(runs, budget)
        verdict = max((r.verdict for r in runs), key=SEVERITY.__getitem__)
        if p95 and verdict is Verdict.PASS:
            verdict = Verdict.BREACH
        reasons = list(dict.fromkeys(r.reason for r in runs if r.verdict is not Verdict.PASS and r.reason))
        family = next((str(e["family"]) for e in group if e.get("family")), "")
        cells.append(
            Cell(fault, family, recovery, budget, tuple(runs), verdict, tuple(reasons + p95), recovery in baselines)
        )
    return cells


def measurement_text(key: str, value: Any) -> str:
    """A criterion's measurement for people, as the criterion describes it."""
    return criteria.by_key()[key].describe(value)


def measurements(cell: Cell) -> list[str]:
    """The worst run's measurements beyond time (assertions.criteria), one line each."""
    entry = cell.worst.entry
    return [measurement_text(c.key, entry[c.key]) for c in criteria.CRITERIA if c.key in entry]


def recoveries_of(cells: Iterable[Cell]) -> list[str]:
    return sorted({c.recovery for c in cells}, key=lambda r: (recovery_rank(r), r))


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


def budget_text(budget: Budget) -> str:
    return f"{seconds(budget.ttr.max)} / {seconds(budget.ttr.p95)}"


def cut_short(entry: Mapping[str, Any]) -> float | None:
    """Seconds a run that did not recover waited, when its wait was cut short once its verdict was decided
    (assertions.decided): its TTR is only known to exceed them. None for any other run."""
    ended = entry.get("wait_ended")
    recovered = entry.get("ttr_seconds") is not None and entry.get("verdict") != "not-recovered"
    if recovered or not isinstance(ended, Mapping) or ended.get("by") != "decided":
        return None
    after = ended.get("after")
    return float(after) if isinstance(after, int | float) and not isinstance(after, bool) else None


def ttr_text(cell: Cell) -> str:
    """What a person reads first: the slowest TTR, or why there is none (within the shortest wait of its runs)."""
    if cell.verdict is Verdict.INVALID and cell.ttr_max is None:
        return "invalid"
    if cell.ttr_max is None:
        cut = [at for run in cell.runs if (at := cut_short(run.entry)) is not None]
        return f"not recovered in {min(cut, default=cell.budget.give_up_after):.0f}s"
    return seconds(cell.ttr_max)


def downtime_text(cell: Cell) -> str:
    return "-" if cell.downtime is None else seconds(cell.downtime)


def blast_radius_text(cell: Cell) -> str:
    """How many teams the fault hit, and which: `0`, `2 (same-1, same-2)`; `-` without load."""
    teams = cell.blast_radius
    if teams is None:
        return "-"
    return f"{len(teams)} ({', '.join(teams)})" if teams else "0"


def render_table(cells: list[Cell]) -> str:
    """Fault x recovery as a text table: TTR (max, p95 over repeats) against the budget, and the verdict; under
    load, the faulted app's downtime and the blast radius too; with baselines reused from the store, from when."""
    loaded = any(cell.loads for cell in cells)
    load_header = ("DOWNTIME", "BLAST RADIUS") if loaded else ()
    any_reused = any(run.entry.get("reused") for cell in cells for run in cell.runs)
    reused_header = ("REUSED",) if any_reused else ()
    header = (
        "FAULT",
        "RECOVERY",
        "RUNS",
        "TTR MAX",
        "TTR P95",
        "BUDGET MAX / P95",
        *load_header,
        *reused_header,
        "VERDICT",
        "WHY",
    )
    rows: list[tuple[str, ...]] = []
    previous = None
    for cell in cells:
        verdict = cell.verdict.value.upper() + (" (baseline)" if cell.excused else "")
        load = (downtime_text(cell), blast_radius_text(cell)) if loaded else ()
        from_store = (reused.column(run.entry for run in cell.runs),) if any_reused else ()
        rows.append(
            (
                cell.fault if cell.fault != previous else "",
                cell.recovery,
                str(len(cell.runs)),
                ttr_text(cell),
                seconds(cell.ttr_p95),
                budget_text(cell.budget),
                *load,
                *from_store,
                verdict,
                "; ".join([*cell.reasons, *measurements(cell)]),
            )
        )
        previous = cell.fault
    rows = [tuple(printable(v) for v in row) for row in rows]
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header) - 1)]
    lines = []
    for row in (header, *rows):
        lines.append("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=False)) + "  " + row[-1])
    return "\n".join(line.rstrip() for line in lines)


def judged(cells: Iterable[Cell]) -> list[Cell]:
    """The cells the gate judges: every cell not under a baseline mode (a gate that judged none fails)."""
    return [c for c in cells if not c.baseline]


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def printable(text: str) -> str:
    """Text from a summary as one line a person can trust: control characters (a newline that would start a
    forged `gate: PASS` line, an escape sequence) spelled as visible escapes."""
    return _CONTROL.sub(lambda m: ascii(m.group())[1:-1], text)


def verdict_line(cells: list[Cell]) -> str:
    """One line: did the gate pass, and what failed."""
    failing = [c for c in cells if c.fails_gate]
    ignored = [c for c in cells if c.excused]
    note = f" ({len(ignored)} baseline cell(s) not judged)" if ignored else ""
    if not failing and not judged(cells):
        return f"gate: FAIL - nothing judged: every one of the {len(cells)} cell(s) is under a baseline mode"
    if not failing:
        return f"gate: PASS - {len(cells)} fault x recovery cell(s), none over budget{note}"
    counts: dict[str, int] = {}
    for cell in failing:
        counts[cell.verdict.value] = counts.get(cell.verdict.value, 0) + 1
    what = ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))
    return f"gate: FAIL - {what} of {len(cells)} fault x recovery cell(s){note}"


def render_html(cells: list[Cell]) -> str:
    """Per fault, TTR under every recovery mode side by side (inline styles: Allure sanitizes HTML)."""
    recoveries = recoveries_of(cells)
    by_key = {(c.fault, c.recovery): c for c in cells}
    faults = list(dict.fromkeys(c.fault for c in cells))
    families = {c.fault: c.family for c in cells}
    th = "padding:6px 10px;border:1px solid #ccc;background:#f5f5f5;text-align:left"
    out = [
        '<table style="border-collapse:collapse;font-family:sans-serif;font-size:13px">',
        f'<tr><th style="{th}">fault</th>' + "".join(f'<th style="{th}">{html.escape(r)}</th>' for r in recoveries),
        "</tr>",
    ]
    for fault in faults:
        family = html.escape(families[fault])
        out.append(
            f'<tr><td style="padding:6px 10px;border:1px solid #ccc"><b>{html.escape(fault)}</b>'
            f'<br><span style="color:#666">{family}</span></td>'
        )
        for recovery in recoveries:
            cell = by_key.get((fault, recovery))
            out.append(_html_cell(cell))
        out.append("</tr>")
    out.append("</table>")
    return "".join(out)


def _html_cell(cell: Cell | None) -> str:
    style = "padding:6px 10px;border:1px solid #ccc;vertical-align:top"
    if cell is None:
        return f'<td style="{style};color:#999">not run</td>'
    verdict = cell.verdict
    p95 = f" &middot; p95 {seconds(cell.ttr_p95)}" if len(cell.runs) > 1 else ""
    baseline = " (baseline)" if cell.baseline else ""
    title = html.escape("; ".join(cell.reasons) or "within budget")
    measured = "".join(f'<br><span style="color:#555">{html.escape(line)}</span>' for line in measurements(cell))
    load = (
        f'<br><span style="color:#555">downtime {html.escape(downtime_text(cell))} &middot; blast radius '
        f"{html.escape(blast_radius_text(cell))}</span>"
        if cell.loads
        else ""
    )
    return (
        f'<td style="{style};background:{BACKGROUNDS[verdict]}" title="{title}">'
        f'<span style="font-size:15px;font-weight:bold">{html.escape(ttr_text(cell))}</span>{p95}<br>'
        f'<span style="color:#555">budget {seconds(cell.budget.ttr.max)}'
        f"{' / p95 ' + seconds(cell.budget.ttr.p95) if cell.budget.ttr.p95 else ''}"
        f" &middot; {len(cell.runs)} run(s)</span>{load}<br>"
        f'<span style="color:{COLORS[verdict]};font-weight:bold">{verdict.value.upper()}{baseline}</span>'
        f"{measured}</td>"
    )
