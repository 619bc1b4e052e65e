"""The alert coverage table: per fault and recovery, which alerts paged and when, what was due and never paged.

The rows are monitoring.facts.coverage's tally of the summary entries' `alerts` lists (a run without the key ran
without monitoring and is shown as such), one per fault x recovery cell: each alert that paged in any of its runs,
in how many runs, the slowest page and resolution (seconds from injection); blind spots (failing, named by rule)
and noise (pages for nothing that had lasted a rule's threshold and `for`, counted). The terminal, `resilience
gate` and the Allure summary page show it beside the TTR matrix. Which shipped alerts no run can be held to is
said below it.
"""

from __future__ import annotations

import html
from collections.abc import Iterable

from monitoring.facts.coverage import CoverageRow, Paged, tally
from monitoring.facts.rules import UNPROMISED
from reports.matrix import Cell


def rows(cells: Iterable[Cell]) -> list[CoverageRow]:
    return [tally(cell.fault, cell.recovery, (run.entry for run in cell.runs)) for cell in cells]


def _paged_text(name: str, paged: Paged, runs: int) -> str:
    resolved = "never resolved" if paged.resolved_max is None else f"resolved {paged.resolved_max:.0f}s"
    if paged.unresolved and paged.resolved_max is not None:
        resolved += f" ({paged.unresolved} unresolved)"
    return f"{name} ({paged.runs}/{runs} runs) {paged.fired_max:.0f}s, {resolved}"


def _cell_texts(row: CoverageRow) -> tuple[str, str, str]:
    if not row.monitored:
        return "not monitored", "", ""
    paged = "; ".join(_paged_text(n, p, row.monitored) for n, p in sorted(row.paged.items())) or "none"
    blind = ", ".join(sorted(set(row.blind_spots))) or "-"
    return paged, blind, str(row.noise)


def has_alerts(cells: Iterable[Cell]) -> bool:
    return any(r.monitored for r in rows(cells))


def render_text(cells: Iterable[Cell]) -> str:
    """The table as text, times in seconds from injection (the slowest run's)."""
    header = ("FAULT", "RECOVERY", "MONITORED", "PAGED (runs) first page, resolved", "BLIND SPOTS", "NOISE")
    table: list[tuple[str, ...]] = []
    previous = None
    for row in rows(cells):
        paged, blind, noise = _cell_texts(row)
        scaled = " (scaled rules)" if row.scaled else ""
        table.append(
            (
                row.fault if row.fault != previous else "",
                row.recovery,
                f"{row.monitored}/{row.runs}{scaled}",
                paged,
                blind,
                noise,
            )
        )
        previous = row.fault
    widths = [max(len(r[i]) for r in (header, *table)) for i in range(len(header))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in (header, *table)]
    return "\n".join([*lines, unpromised_line()])


def unpromised_line() -> str:
    return "not checked by any run: " + "; ".join(f"{name}: {why}" for name, why in sorted(UNPROMISED.items()))


def render_html(cells: Iterable[Cell]) -> str:
    """The table for the Allure summary page (inline styles: Allure sanitizes HTML)."""
    th = "padding:6px 10px;border:1px solid #ccc;background:#f5f5f5;text-align:left"
    td = "padding:6px 10px;border:1px solid #ccc;vertical-align:top"
    out = [
        '<table style="border-collapse:collapse;font-family:sans-serif;font-size:13px"><tr>',
        *(
            f'<th style="{th}">{h}</th>'
            for h in ("fault", "recovery", "monitored runs", "paged", "blind spots", "noise")
        ),
        "</tr>",
    ]
    for row in rows(cells):
        paged, blind, noise = _cell_texts(row)
        bad = "background:#ffebee;" if row.blind_spots else ""
        scaled = "<br><i>scaled rules, not as shipped</i>" if row.scaled else ""
        cells_html = (
            html.escape(row.fault),
            html.escape(row.recovery),
            f"{row.monitored}/{row.runs}{scaled}",
            html.escape(paged).replace("; ", "<br>"),
            f'<span style="{bad}">{html.escape(blind)}</span>',
            html.escape(noise),
        )
        out.append("<tr>" + "".join(f'<td style="{td}">{c}</td>' for c in cells_html) + "</tr>")
    out.append("</table>")
    out.append(f'<p style="font-family:sans-serif;font-size:12px;color:#555">{html.escape(unpromised_line())}</p>')
    return "".join(out)
