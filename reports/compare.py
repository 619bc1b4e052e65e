"""`resilience compare`: the recovery modes side by side per fault, from the run records (summary entries).

One row per fault, one column group per recovery mode: TTR median / max over the repeats, the medians of
detection, serving, the next commit taken (and the downtime under load), the repeats that kept their data, the
verdicts; invalid runs prove nothing, so they are left out of every figure and counted in a column of their own.
A repeat that never recovered counts as never in the TTR median and max (`never (2/3)`: 2 of 3 repeats never
recovered), so a median is never taken over the recovered ones alone; one whose wait stopped once its verdict was
decided (assertions.decided) is shown as what it is, a TTR known only to exceed that wait (`not within 70`).
The last column sets the operator against the best Flux-only mode: the one with the lowest median TTR among
those that recovered in every repeat.

Pure: entries in, a Comparison out, rendered as text (the terminal), Markdown (docs) or HTML (Allure).
"""

from __future__ import annotations

import html
import math
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from assertions.schema import VERDICTS
from foundation.errors import UserError
from reports.matrix import cut_short, printable

OPERATOR = "operator"
# The modes in their natural order (Flux alone, as shipped, tuned; then the operator); others follow by name.
MODE_ORDER: tuple[str, ...] = ("none", "flux-native", "flux-tuned", OPERATOR)
FLUX_MODES: tuple[str, ...] = ("none", "flux-native", "flux-tuned")
# The best Flux mode within this factor of the operator's median TTR (either way) is "as fast".
AS_FAST_TOLERANCE = 1.1
NEVER = math.inf

LEGEND = (
    "TTR: median / max over the valid repeats, seconds from injection; never (k/n): k of the n repeats never "
    "recovered, counted as never in the median and max; not within N: the wait stopped N s after the injection "
    "once the verdict was decided (past the TTR budget), so the TTR is only known to be longer",
    "detect, serving, next commit, downtime: medians in seconds; (k/n): over the k of n repeats that recorded it; "
    "serving: from the injection; next commit: from its push to Flux taking it (never: pushed, not taken), pushed "
    "only after recovery",
    "data kept: repeats without data violations; verdicts: of the valid repeats; invalid: runs that prove "
    "nothing, left out of every figure",
    f"operator vs best Flux: best Flux = the Flux-only mode with the lowest median TTR of those that recovered in "
    f"every repeat; as fast within {AS_FAST_TOLERANCE:g}x",
)


@dataclass(frozen=True)
class Figures:
    """One fault under one recovery mode: its valid repeats' figures, and how many runs were invalid."""

    ttrs: tuple[float, ...]  # one per valid repeat, NEVER when it did not recover
    cut: tuple[float, ...]  # the waits of the repeats that did not recover in a wait cut short (cut_short)
    detect: tuple[float, ...]
    serving: tuple[float, ...]
    next_commit: tuple[float, ...]
    downtime: tuple[float, ...]
    data_kept: int
    verdicts: Mapping[str, int]
    invalid: int

    @property
    def runs(self) -> int:
        """The valid repeats."""
        return len(self.ttrs)

    @property
    def never(self) -> int:
        return sum(1 for t in self.ttrs if t == NEVER)

    @property
    def recovered_every_time(self) -> bool:
        return self.runs > 0 and self.never == 0

    @property
    def ttr_median(self) -> float | None:
        return statistics.median(self.ttrs) if self.ttrs else None

    @property
    def ttr_max(self) -> float | None:
        return max(self.ttrs) if self.ttrs else None


@dataclass(frozen=True)
class Row:
    fault: str
    figures: Mapping[str, Figures]  # by mode; a mode the fault did not run under is absent
    versus: str  # operator vs best Flux ("" when the operator is not compared)


@dataclass(frozen=True)
class Comparison:
    modes: tuple[str, ...]
    rows: tuple[Row, ...]
    loaded: bool  # some run was under load: the downtime column is shown
    versus: bool  # the operator and a Flux-only mode are both shown: the comparison column is shown


def _number(value: Any) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None


def is_invalid(entry: Mapping[str, Any]) -> bool:
    return entry.get("verdict") == "invalid" or bool(entry.get("invalid"))


def recovered_in(entry: Mapping[str, Any]) -> float:
    """Seconds from injection to recovered, NEVER when the run did not recover (in its wait)."""
    ttr = _number(entry.get("ttr_seconds"))
    return NEVER if ttr is None or entry.get("verdict") == "not-recovered" else ttr


def since_injection(entry: Mapping[str, Any], name: str) -> float | None:
    """Seconds from the injection to the timeline phase `name` (None: not reached)."""
    return _number((entry.get("since_injected") or {}).get(name))


def next_commit(entry: Mapping[str, Any]) -> float | None:
    """Seconds from the next commit's push to Flux taking it; NEVER when it was pushed and not taken in its wait
    (the pipeline did not take it: a finding, not a gap); None when none was pushed (the run did not recover)."""
    measured = entry.get("next_commit")
    if not isinstance(measured, Mapping):
        return None
    taken = _number(measured.get("taken_after"))
    return NEVER if taken is None else taken


def downtime(entry: Mapping[str, Any]) -> float | None:
    """The faulted app's downtime under load (assertions.load_criterion); None without load."""
    load = entry.get("load")
    return _number(load.get("downtime_seconds")) if isinstance(load, Mapping) else None


def _present(values: Iterable[float | None]) -> tuple[float, ...]:
    return tuple(v for v in values if v is not None)


def figures(entries: Sequence[Mapping[str, Any]]) -> Figures:
    """The figures of one fault under one mode (its repeats), invalid runs left out and counted."""
    valid = [e for e in entries if not is_invalid(e)]
    return Figures(
        ttrs=tuple(recovered_in(e) for e in valid),
        cut=_present(cut_short(e) for e in valid),
        detect=_present(_number(e.get("detect_seconds")) for e in valid),
        serving=_present(since_injection(e, "serving") for e in valid),
        next_commit=_present(next_commit(e) for e in valid),
        downtime=_present(downtime(e) for e in valid),
        data_kept=sum(1 for e in valid if not e.get("data_violations")),
        verdicts=Counter(str(e["verdict"]) for e in valid),
        invalid=len(entries) - len(valid),
    )


def mode_order(modes: Iterable[str]) -> list[str]:
    """Modes in MODE_ORDER, then the others by name."""
    return sorted(set(modes), key=lambda m: (MODE_ORDER.index(m) if m in MODE_ORDER else len(MODE_ORDER), m))


def chosen_modes(entries: Iterable[Mapping[str, Any]], modes: Sequence[str] | None) -> tuple[str, ...]:
    """The modes asked for (each must have runs), else every mode present in its natural order."""
    present = mode_order(str(e["recovery"]) for e in entries)
    if modes is None:
        return tuple(present)
    missing = [m for m in modes if m not in present]
    if missing:
        raise UserError(
            f"--modes {','.join(modes)}: no runs under {', '.join(missing)} in the summaries (they hold: "
            f"{', '.join(present) or 'no runs'})"
        )
    return tuple(dict.fromkeys(modes))


def seconds(value: float) -> str:
    return "never" if value == NEVER else f"{value:.1f}"


def versus(row: Mapping[str, Figures], flux_modes: Sequence[str]) -> str:
    """The operator against the best Flux-only mode of one fault, in words."""
    operator = row.get(OPERATOR)
    flux = {m: row[m] for m in flux_modes if m in row and row[m].runs}
    if operator is None:
        return "-"
    if not operator.runs:
        return "no valid operator run"
    candidates = [m for m, f in flux.items() if f.recovered_every_time]
    best = min(candidates, key=lambda m: (flux[m].ttr_median or 0.0, flux_modes.index(m)), default=None)
    best_median = flux[best].ttr_median if best is not None else None
    if operator.never:
        which = "" if operator.never == operator.runs else f" in {operator.never}/{operator.runs} repeats"
        also = f"; {best} did ({seconds(best_median)} s)" if best and best_median is not None else ""
        if flux and not best:
            also = "; no Flux-only mode recovered in every repeat either"
        return f"the operator did not recover{which}{also}"
    if not flux:
        return "no Flux-only mode ran"
    if best is None or best_median is None:
        partly = any(f.never < f.runs for f in flux.values())
        return "only the operator recovers every repeat" if partly else "only the operator recovers"
    mine = operator.ttr_median or 0.0
    both = f"({seconds(best_median)} s vs {seconds(mine)} s)"
    if best_median * AS_FAST_TOLERANCE < mine:
        return f"{best} faster {both}"
    if best_median <= mine * AS_FAST_TOLERANCE:
        return f"{best} as fast {both}"
    if mine == 0:
        return f"faster than {best} {both}"
    ratio = best_median / mine
    return f"{ratio:.{1 if ratio >= 2 else 2}f}x faster than {best}"


def compare(
    entries: Iterable[Mapping[str, Any]],
    modes: Sequence[str] | None = None,
    flux_modes: Sequence[str] = FLUX_MODES,
) -> Comparison:
    """Group the entries by fault and mode; UserError when a mode asked for has no run."""
    entries = list(entries)
    if OPERATOR in flux_modes:
        raise UserError(f"--flux-modes {','.join(flux_modes)}: {OPERATOR} is not a Flux-only mode")
    shown = chosen_modes(entries, modes)
    groups: dict[str, dict[str, list[Mapping[str, Any]]]] = {}
    for entry in entries:
        if entry["recovery"] in shown:
            groups.setdefault(str(entry["fault"]), {}).setdefault(str(entry["recovery"]), []).append(entry)
    flux = [m for m in flux_modes if m in shown]
    compared = OPERATOR in shown and bool(flux)
    rows = []
    for fault in sorted(groups):
        by_mode = {mode: figures(group) for mode, group in groups[fault].items()}
        rows.append(Row(fault, by_mode, versus(by_mode, flux) if compared else ""))
    loaded = any(f.downtime for row in rows for f in row.figures.values())
    return Comparison(shown, tuple(rows), loaded, compared)


# -- rendering: one grid of strings, three formats ------------------------------------------------------------


def ttr_text(f: Figures) -> str:
    """`6.1 / 7.0`; `6.9 / never (1/3)` with a repeat that never recovered; `never (2/3)` when the median is;
    `not within 70 (2/3)` when a wait was cut short at 70 s (the shortest such wait: true of every such repeat)."""
    if f.ttr_median is None or f.ttr_max is None:
        return "-"
    never = f" ({f.never}/{f.runs})" if f.never else ""

    def shown(value: float) -> str:
        return f"not within {min(f.cut):.0f}" if value == NEVER and f.cut else seconds(value)

    if f.ttr_median == NEVER:
        return f"{shown(NEVER)}{never}"
    return f"{seconds(f.ttr_median)} / {shown(f.ttr_max)}{never}"


def median_text(values: Sequence[float], runs: int) -> str:
    """The median, with (k/n) when only k of the n valid repeats recorded it; `-` when none did."""
    if not values:
        return "-"
    partial = f" ({len(values)}/{runs})" if len(values) < runs else ""
    return f"{seconds(statistics.median(values))}{partial}"


def verdicts_text(f: Figures) -> str:
    counts = sorted(f.verdicts.items(), key=lambda kv: (VERDICTS.index(kv[0]) if kv[0] in VERDICTS else 99, kv[0]))
    return ", ".join(f"{n} {verdict}" for verdict, n in counts) or "-"


def columns(comparison: Comparison) -> tuple[str, ...]:
    """The columns of each mode's group."""
    load = ("downtime",) if comparison.loaded else ()
    return ("TTR med / max", "detect", "serving", "next commit", *load, "data kept", "verdicts", "invalid")


def group_cells(f: Figures | None, loaded: bool) -> list[str]:
    if f is None:
        return ["not run", "-", "-", "-", *(["-"] if loaded else []), "-", "-", "-"]
    load = [median_text(f.downtime, f.runs)] if loaded else []
    return [
        ttr_text(f),
        median_text(f.detect, f.runs),
        median_text(f.serving, f.runs),
        median_text(f.next_commit, f.runs),
        *load,
        f"{f.data_kept}/{f.runs}" if f.runs else "-",
        verdicts_text(f),
        f"invalid {f.invalid}" if f.invalid else "0",
    ]


def grid(comparison: Comparison) -> tuple[list[tuple[str, int]], list[str], list[list[str]]]:
    """The groups (title, number of columns), the column headers and the rows, all as text."""
    per_mode = columns(comparison)
    last = ["operator vs best Flux"] if comparison.versus else []
    groups = [("", 1), *((mode, len(per_mode)) for mode in comparison.modes), *(("", 1) for _ in last)]
    header = ["fault", *(c for _ in comparison.modes for c in per_mode), *last]
    rows = []
    for row in comparison.rows:
        cells = [row.fault]
        for mode in comparison.modes:
            cells += group_cells(row.figures.get(mode), comparison.loaded)
        rows.append(cells + ([row.versus] if comparison.versus else []))
    return groups, header, rows


def render_text(comparison: Comparison) -> str:
    """A plain-text table: a line naming each mode over its group of columns, then the columns, then a legend
    (names from a summary made printable: no forged lines)."""
    groups, header, rows = grid(comparison)
    rows = [[printable(v) for v in r] for r in rows]
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    titles, at = [], 0
    for title, span in groups:
        width = sum(widths[at : at + span]) + 2 * (span - 1)
        label = f"{printable(title)} " if title else ""
        titles.append((label + "-" * width)[: max(width, len(label))] if title else " " * width)
        at += span
    lines = ["  ".join(titles).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in (header, *rows)]
    return "\n".join([*lines, "", *LEGEND])


def _md(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def render_markdown(comparison: Comparison) -> str:
    """A Markdown table, each column headed `mode: column`, and the legend as a list."""
    groups, header, rows = grid(comparison)
    titles = [title for title, span in groups for _ in range(span)]
    heads = [f"{t}: {h}" if t else h for t, h in zip(titles, header, strict=True)]
    lines = ["| " + " | ".join(_md(h) for h in heads) + " |", "|" + "---|" * len(heads)]
    lines += ["| " + " | ".join(_md(v) for v in r) + " |" for r in rows]
    return "\n".join([*lines, "", *(f"- {line}" for line in LEGEND)]) + "\n"


def render_html(comparison: Comparison) -> str:
    """An HTML table for the Allure summary page (inline styles: Allure sanitizes HTML)."""
    groups, header, rows = grid(comparison)
    th = "padding:4px 8px;border:1px solid #ccc;background:#f5f5f5;text-align:left"
    td = "padding:4px 8px;border:1px solid #ccc;vertical-align:top"
    out = ['<table style="border-collapse:collapse;font-family:sans-serif;font-size:12px"><tr>']
    out += [f'<th colspan="{span}" style="{th}">{html.escape(title)}</th>' for title, span in groups]
    out.append("</tr><tr>")
    out += [f'<th style="{th}">{html.escape(h)}</th>' for h in header]
    out.append("</tr>")
    for row in rows:
        out.append("<tr>" + "".join(f'<td style="{td}">{html.escape(v)}</td>' for v in row) + "</tr>")
    out.append("</table>")
    legend = "".join(f"<li>{html.escape(line)}</li>" for line in LEGEND)
    out.append(f'<ul style="font-family:sans-serif;font-size:12px;color:#555">{legend}</ul>')
    return "".join(out)
