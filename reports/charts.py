"""TTR charts as PNG: one run's phases, and every fault x recovery side by side (phases stacked); one run's
timeline (phases, alerts, Ready transitions and events); under load, delivery latency and serving capacity.

Each bar starts at the injection and is split into the phases the run reached (visible, detected, acted,
recovered, each measured from the previous one); a run that never recovered ends in a hatched grey segment up to
the wait, and the TTR budget is a red tick. Rendering uses matplotlib's Agg canvas directly (no pyplot state),
so charts can be drawn from any thread or xdist worker.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from assertions.slo import Budget
from assertions.timeline import ALERT_PHASES, RECOVERY_PHASES
from assertions.verdict import Verdict
from reports.matrix import COLORS, Cell, cut_short, seconds

PHASE_COLORS: dict[str, str] = {
    "visible": "#8fb8de",
    "detected": "#f2b134",
    "acted": "#a48ad4",
    "recovered": "#6ab04c",
}
NOT_RECOVERED_COLOR = "#bdbdbd"
ALERT_COLOR = "#d84315"


def _alerts(ax: Axes, phases: Mapping[str, float], y: float = 0.0, height: float = 0.6) -> float:
    """The alert track (monitoring): a tick when the first alert reached the receiver, one when all resolved."""
    at, end = 0.0, 0.0
    for phase in ALERT_PHASES:
        if phase in phases:
            at += float(phases[phase])
            style: Literal["solid", "dotted"] = "solid" if phase == "alerted" else "dotted"
            ax.vlines(at, y - height / 2, y + height / 2, colors=ALERT_COLOR, linestyles=style, linewidth=2)
            end = at
    return end


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def _bar(ax: Axes, y: float, phases: Mapping[str, float], height: float = 0.6) -> float:
    """Stacked phase segments on row y; returns where the bar ends."""
    left = 0.0
    for phase in RECOVERY_PHASES[1:]:
        if phase in phases:
            width = float(phases[phase])
            ax.barh(y, width, left=left, height=height, color=PHASE_COLORS[phase], edgecolor="white", linewidth=0.5)
            left += width
    return left


def _not_recovered(ax: Axes, y: float, start: float, wait: float, height: float = 0.6) -> None:
    if wait > start:
        ax.barh(y, wait - start, left=start, height=height, color=NOT_RECOVERED_COLOR, hatch="//", edgecolor="white")


def _legend(fig: Figure, phases_seen: set[str], with_not_recovered: bool) -> None:
    handles: list[Any] = [Patch(color=PHASE_COLORS[p], label=p) for p in RECOVERY_PHASES[1:] if p in phases_seen]
    if "alerted" in phases_seen:
        handles.append(Patch(color=ALERT_COLOR, label="alerted / resolved"))
    if with_not_recovered:
        handles.append(Patch(facecolor=NOT_RECOVERED_COLOR, hatch="//", edgecolor="white", label="not recovered"))
    handles.append(Patch(color=COLORS[Verdict.BREACH], label="TTR budget"))
    fig.legend(handles=handles, loc="outside lower center", fontsize=8, ncols=len(handles), frameon=False)


def run_chart(entry: Mapping[str, Any]) -> bytes:
    """One run: its phases on one bar, the TTR budget and the wait."""
    budget = Budget.from_json(entry.get("budget"))
    phases = {str(k): float(v) for k, v in (entry.get("phases") or {}).items()}
    verdict = Verdict(entry["verdict"])
    ttr = entry.get("ttr_seconds")
    fig = Figure(figsize=(8, 2.6), layout="constrained")
    ax = fig.add_subplot()
    end = _bar(ax, 0, phases)
    alerts_end = _alerts(ax, phases)
    waited = cut_short(entry) or budget.give_up_after  # a wait stopped once the verdict was decided, or the whole
    if ttr is None and verdict is not Verdict.INVALID:
        _not_recovered(ax, 0, end, waited)
    if budget.ttr.max is not None:
        ax.axvline(budget.ttr.max, color=COLORS[Verdict.BREACH], linestyle="--", linewidth=1.5)
        ax.text(budget.ttr.max, 0.42, f" budget {budget.ttr.max:.0f}s", color=COLORS[Verdict.BREACH], fontsize=8)
    right = max(end, alerts_end, budget.give_up_after if ttr is None else 0, budget.ttr.max or 0, 1) * 1.08
    if budget.give_up_after <= right:  # a label beyond the axes would squeeze them to nothing
        ax.axvline(budget.give_up_after, color="#757575", linestyle=":", linewidth=1)
        ax.text(budget.give_up_after, -0.5, f" wait {budget.give_up_after:.0f}s", color="#757575", fontsize=8)
    ax.set_yticks([])
    ax.set_ylim(-0.6, 0.9)
    ax.set_xlim(0, right)
    ax.set_xlabel("seconds since injection")
    if ttr is not None:
        what = f"TTR {seconds(ttr)} ({verdict.value})"
    elif verdict is Verdict.INVALID:
        what = "invalid run (no TTR)"
    else:
        what = f"not recovered within {waited:.0f}s"
    ax.set_title(f"{entry['fault']} under {entry['recovery']}: {what}", color=COLORS[verdict], fontsize=10)
    _legend(fig, set(phases), ttr is None and verdict is not Verdict.INVALID)
    return _png(fig)


def matrix_chart(cells: list[Cell]) -> bytes:
    """Every fault x recovery as one bar (the cell's deciding run, phases stacked), grouped by fault."""
    rows: list[tuple[float, Cell]] = []
    y = 0.0
    previous = None
    for cell in cells:
        if previous is not None and cell.fault != previous:
            y += 0.6  # a gap between faults
        rows.append((y, cell))
        previous = cell.fault
        y += 1
    fig = Figure(
        figsize=(10, 2.0 + 0.42 * max(len(rows), 1) + 0.3 * len({c.fault for c in cells})), layout="constrained"
    )
    ax = fig.add_subplot()
    phases_seen: set[str] = set()
    any_not_recovered = False
    xmax = 1.0
    for y, cell in rows:
        run = cell.worst
        phases = run.phases
        phases_seen |= set(phases)
        end = _bar(ax, y, phases)
        label_at = end
        if cell.verdict is Verdict.INVALID and run.ttr is None:
            text = "invalid (no proof of fault)"
        elif run.ttr is None:
            any_not_recovered = True
            _not_recovered(ax, y, end, cell.budget.give_up_after)
            label_at = max(end, cell.budget.give_up_after)
            text = "not recovered"
        else:
            text = f"{seconds(cell.ttr_max)}" + (f" (p95 {seconds(cell.ttr_p95)})" if cell.ttr_p95 is not None else "")
            text += f" {cell.verdict.value}"
        if cell.budget.ttr.max is not None:
            ax.plot([cell.budget.ttr.max] * 2, [y - 0.4, y + 0.4], color=COLORS[Verdict.BREACH], linewidth=2)
            xmax = max(xmax, cell.budget.ttr.max)
        ax.annotate(
            text,
            (label_at, y),
            xytext=(5, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
            color=COLORS[cell.verdict],
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.85, "pad": 1},
        )
        xmax = max(xmax, label_at)
    ax.set_yticks([y for y, _ in rows], [f"{c.fault} / {c.recovery}" for _, c in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, xmax * 1.35)
    ax.set_xlabel("seconds since injection (bar: slowest run; red tick: TTR budget)")
    ax.set_title("Time to recover per fault x recovery mode", fontsize=11)
    ax.grid(axis="x", color="#eeeeee")
    ax.set_axisbelow(True)
    _legend(fig, phases_seen, any_not_recovered)
    return _png(fig)


GROUP_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2")
MARK_STYLES: dict[str, tuple[str, Literal["-", "--"]]] = {
    "injected": ("#c62828", "-"),
    "visible": ("#8fb8de", "--"),
    "recovered": ("#6ab04c", "--"),
}


def load_chart(series: Mapping[str, Any], marks: Mapping[str, float | None], title: str) -> bytes:
    """Delivery latency per group (a dot per delivery at its commit, a cross per failed one) above the faulted
    app's Ready endpoints, over seconds since the injection; injected / visible / recovered marked, the fault
    window shaded."""
    fig = Figure(figsize=(10, 5.2), layout="constrained")
    latency, capacity = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1.4))
    deliveries = list(series.get("deliveries") or [])
    groups = list(dict.fromkeys(str(d["group"]) for d in deliveries))
    handles: list[Any] = []
    for index, group in enumerate(groups):
        color = GROUP_COLORS[index % len(GROUP_COLORS)]
        done = [d for d in deliveries if d["group"] == group and d["ok"]]
        failed = [d for d in deliveries if d["group"] == group and not d["ok"]]
        handles.append(
            latency.scatter([d["at"] for d in done], [d["seconds"] for d in done], s=14, color=color, label=group)
        )
        if failed:
            latency.scatter(
                [d["at"] for d in failed], [d["seconds"] for d in failed], s=40, color=color, marker="x", linewidths=2
            )
    if any(not d["ok"] for d in deliveries):
        handles.append(latency.scatter([], [], s=40, color="#555555", marker="x", label="failed (waited)"))
    latency.set_ylabel("delivery latency (s)")
    latency.set_ylim(bottom=0)
    serving = [(float(t), int(n)) for t, n in series.get("serving") or []]
    end = float(series.get("load_to") or 0.0)
    if serving:
        xs = [t for t, _ in serving] + [end]
        ys = [n for _, n in serving] + [serving[-1][1]]
        capacity.step(xs, ys, where="post", color="#2e7d32")
        capacity.fill_between(xs, ys, step="post", color="#2e7d32", alpha=0.15)
        capacity.set_ylim(bottom=0, top=max(ys) + 1)
    else:
        capacity.text(0.5, 0.5, "the faulted app serves nothing", transform=capacity.transAxes, ha="center")
    capacity.set_ylabel("Ready endpoints")
    capacity.set_xlabel("seconds since injection")
    fault_end = series.get("fault_end")
    for ax in (latency, capacity):
        if fault_end is not None:
            ax.axvspan(0, float(fault_end), color=COLORS[Verdict.BREACH], alpha=0.06)
        for phase, (color, style) in MARK_STYLES.items():
            at = 0.0 if phase == "injected" else marks.get(phase)
            if at is not None:
                ax.axvline(float(at), color=color, linestyle=style, linewidth=1.2)
        ax.grid(axis="y", color="#eeeeee")
    for phase, (color, style) in MARK_STYLES.items():
        if phase == "injected" or marks.get(phase) is not None:
            handles.append(Line2D([], [], color=color, linestyle=style, label=phase))
    latency.set_xlim(float(series.get("load_from") or 0.0), max(end, 1.0))
    latency.set_title(title, fontsize=10)
    fig.legend(handles=handles, loc="outside lower center", fontsize=8, ncols=min(len(handles), 6), frameon=False)
    return _png(fig)


EVENT_COLORS = {"Warning": "#ef6c00", "Normal": "#757575"}
READY_COLORS = {"True": "#6ab04c", "False": "#c62828"}


def timeline_chart(timeline: Mapping[str, Any], alerts: Sequence[Mapping[str, Any]], title: str) -> bytes:
    """timeline_figure as PNG."""
    return _png(timeline_figure(timeline, alerts, title))


def timeline_figure(timeline: Mapping[str, Any], alerts: Sequence[Mapping[str, Any]], title: str) -> Figure:
    """One run's timeline on seconds since injection: the phases it reached, then each alert (due, paged, resolved;
    a due alert that never paged is a red cross), then the Ready transitions and the events the watch saw.

    `timeline` is Timeline.to_json(); `alerts` the summary entry's `alerts` list (runs with monitoring)."""
    marks = {str(k): float(v) for k, v in (timeline.get("since_injected") or {}).items() if v is not None}
    conditions = [c for c in timeline.get("conditions") or [] if c.get("type") == "Ready" and "at" in c]
    events = [e for e in timeline.get("events") or [] if isinstance(e.get("at"), int | float)]
    rows = ["phases", *(str(a.get("name")) for a in alerts), "Ready", "events"]
    fig = Figure(figsize=(10, 1.6 + 0.38 * len(rows)), layout="constrained")
    ax = fig.add_subplot()
    times = [0.0, *marks.values(), *(float(c["at"]) for c in conditions), *(float(e["at"]) for e in events)]
    for item in alerts:
        times += [float(item[k]) for k in ("fired_after", "resolved_after", "due_after") if item.get(k) is not None]
    right = max(max(times) * 1.05, 1.0)
    handles: list[Any] = []
    for phase in RECOVERY_PHASES:
        if phase in marks:
            color = MARK_STYLES["injected"][0] if phase == "injected" else PHASE_COLORS[phase]
            ax.axvline(marks[phase], color=color, linewidth=1, alpha=0.5)
            ax.plot(marks[phase], 0, marker="D", markersize=8, color=color, linestyle="none")
            label = f"{phase} {seconds(marks[phase])}"  # in the legend: close phases would hide each other's labels
            handles.append(Line2D([], [], color=color, marker="D", linestyle="none", label=label))
    for y, item in enumerate(alerts, start=1):
        fired, resolved, due = (item.get(k) for k in ("fired_after", "resolved_after", "due_after"))
        if due is not None:
            ax.plot(float(due), y, marker="|", markersize=14, markeredgewidth=2, color="#424242")
        if fired is None:
            ax.plot(float(due or 0.0), y, marker="x", markersize=10, markeredgewidth=2, color=COLORS[Verdict.BREACH])
            continue
        end = right if resolved is None else float(resolved)
        hatch = None if resolved is not None else "//"
        ax.barh(y, end - float(fired), left=float(fired), height=0.5, color=ALERT_COLOR, hatch=hatch, edgecolor="white")
    ready_row, events_row = len(alerts) + 1, len(alerts) + 2
    for record in conditions:
        color = READY_COLORS.get(str(record.get("status")), "#9e9e9e")
        ax.plot(float(record["at"]), ready_row, marker="o", markersize=6, color=color, linestyle="none")
    for event in events:
        color = EVENT_COLORS.get(str(event.get("type")), EVENT_COLORS["Normal"])
        ax.plot(float(event["at"]), events_row, marker="o", markersize=5, color=color, alpha=0.7, linestyle="none")
    if alerts:
        handles += [
            Patch(color=ALERT_COLOR, label="alert paging (hatched: never resolved)"),
            Line2D([], [], color="#424242", marker="|", markersize=10, linestyle="none", label="alert due"),
            Line2D([], [], color=COLORS[Verdict.BREACH], marker="x", linestyle="none", label="due, never paged"),
        ]
    handles += [
        Line2D([], [], color=c, marker="o", linestyle="none", label=f"Ready {s}") for s, c in READY_COLORS.items()
    ]
    handles.append(Line2D([], [], color=EVENT_COLORS["Warning"], marker="o", linestyle="none", label="Warning event"))
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set_ylim(len(rows) - 0.5, -0.7)
    ax.set_xlim(min(times) - right * 0.02, right)  # times holds the injection, 0
    ax.set_xlabel("seconds since injection")
    ax.grid(axis="x", color="#eeeeee")
    ax.set_axisbelow(True)
    ax.set_title(title, fontsize=10)
    fig.legend(handles=handles, loc="outside lower center", fontsize=8, ncols=min(len(handles), 5), frameon=False)
    return fig
