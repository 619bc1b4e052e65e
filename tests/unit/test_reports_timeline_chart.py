"""The run's timeline chart, drawn from a hand-built timeline: phases, alerts, Ready transitions and events."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from matplotlib.patches import Rectangle

from assertions.timeline import Timeline
from reports import charts

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ALERTS: list[dict[str, Any]] = [
    {"name": "FluxKustomizationNotReady", "fired_after": 31.0, "resolved_after": 75.0, "due_after": 12.0},
    {"name": "ResilienceRecoveryEscalated", "fired_after": None, "resolved_after": None, "due_after": 20.0},
    {"name": "FluxDependencyBlocked", "fired_after": 40.0, "resolved_after": None},
]


def timeline() -> dict[str, Any]:
    t = Timeline()
    for phase, at in {"injected": 100.0, "visible": 102.1, "acted": 104.2, "recovered": 118.7}.items():
        t.mark(phase, at)
    t.conditions = [
        {"object": "Kustomization/flux-system/apps", "at": 2.0, "type": "Ready", "status": "False"},
        {"object": "Kustomization/flux-system/apps", "at": 18.6, "type": "Ready", "status": "True"},
        {"object": "Kustomization/flux-system/apps", "at": 3.0, "type": "Reconciling", "status": "True"},
    ]
    t.events = [{"at": -1.5, "type": "Normal", "reason": "Progressing"}, {"at": 2.2, "type": "Warning"}]
    return t.to_json()


def legend(fig: Any) -> list[str]:
    return [text.get_text() for text in fig.legends[0].get_texts()]


def test_phases_alerts_ready_and_events_on_seconds_since_injection() -> None:
    fig = charts.timeline_figure(timeline(), ALERTS, "selector-change under operator")
    (ax,) = fig.axes
    rows = [t.get_text() for t in ax.get_yticklabels()]
    assert rows == ["phases", *(a["name"] for a in ALERTS), "Ready", "events"]
    assert ax.get_xlabel() == "seconds since injection"
    left, right = ax.get_xlim()
    assert left < -1.5 and right >= 75.0  # the event before the injection and the last resolution are shown
    labels = legend(fig)
    for label in ("injected 0.0s", "visible 2.1s", "acted 4.2s", "recovered 18.7s"):
        assert label in labels
    assert not any(label.startswith("detected") for label in labels)  # not reached: not drawn
    assert "due, never paged" in labels and "alert due" in labels
    paged = [p for p in ax.patches if isinstance(p, Rectangle)]  # one bar per alert that paged
    assert sorted((p.get_x(), p.get_x() + p.get_width()) for p in paged) == [(31.0, 75.0), (40.0, pytest.approx(right))]
    ready = float(rows.index("Ready"))
    points = sorted(tuple(xy) for line in ax.get_lines() for xy in np.asarray(line.get_xydata()).tolist())
    assert [x for x, y in points if y == ready] == [2.0, 18.6]  # only the Ready transitions


def test_an_empty_timeline_still_draws_and_the_png_is_one() -> None:
    assert charts.timeline_chart(Timeline().to_json(), [], "nothing happened").startswith(PNG_MAGIC)
    assert charts.timeline_chart(timeline(), ALERTS, "t").startswith(PNG_MAGIC)
    fig = charts.timeline_figure(Timeline().to_json(), [], "nothing happened")
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["phases", "Ready", "events"]
