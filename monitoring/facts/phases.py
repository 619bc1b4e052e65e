"""A run's alerts as timeline phases: which fired for its objects and when, and which the faults it saw made due.

The measurement is the summary entry's `alerts` list (judged by assertions.alert_criterion), one item per alert:
`{"name", "fired_after", "resolved_after"}` in seconds from the injection, as the receiver got them (the page, not
Prometheus' own clock), plus `due_after` when the run's own observation of its objects (Ready conditions, dependsOn,
the operator's Events, the stages of StagedKustomizations, all on the timeline) made the alert's promise due: the
condition had held for the rule's threshold and `for`. A promise that became due early enough for its notification
to arrive while the run still watched, and never fired, is listed with `fired_after: null`: a monitoring blind spot.

An alert names a run when its `namespace`/`name` labels name one of the run's objects; an alert without them
(the operator's counters carry only kind/action/why) names the run whose recovery mode's exporter raised it
(the `recovery` target label) while the run was under way: scenarios run one at a time per cluster.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from fluxmodel.annotations import OPERATOR_COMPONENT, STAGES_COMPONENT
from fluxmodel.graph import DependencyGraph
from fluxmodel.kinds import ObjectRef
from fluxmodel.staged import ROLLED_BACK as STAGE_ROLLED_BACK
from monitoring.facts.notification import Notification
from monitoring.facts.rules import BLOCKING, CYCLE, ESCALATED, NOT_READY, PROMISES, ROLLED_BACK, Promise

ESCALATED_REASON = "RecoveryEscalated"
# The components whose RecoveryEscalated Events count: the operator's and the stage controller's.
ESCALATING = (OPERATOR_COMPONENT, STAGES_COMPONENT)


class Timeline(Protocol):
    """What the alert phases read of a run's timeline (assertions.timeline.Timeline) and mark on it."""

    marks: dict[str, float]
    conditions: list[dict[str, Any]]
    events: list[dict[str, Any]]
    dependencies: list[dict[str, Any]]
    stages: list[dict[str, Any]]

    def mark(self, phase: str, at: float | None = None) -> float: ...


# Whether an object (kind, namespace, name) is one of the run's (assertions.isolation.owned_by_run).
Owns = Callable[[str, str | None, str | None], bool]


@dataclass(frozen=True)
class Interval:
    """Seconds since injection during which a condition held; `end` None: it still held when the watch ended."""

    start: float
    end: float | None = None

    def lasts(self, seconds: float, watch_end: float) -> bool:
        return (self.end if self.end is not None else watch_end) - self.start >= seconds


def _ref(text: str) -> ObjectRef:
    kind, namespace, name = text.split("/", 2)
    return ObjectRef(kind, namespace, name)


def not_ready(timeline: Timeline) -> dict[str, list[Interval]]:
    """Per watched object, when its Ready condition was not True (each run starts from a steady, Ready state)."""
    out: dict[str, list[Interval]] = {}
    open_since: dict[str, float] = {}
    for record in sorted(timeline.conditions, key=lambda r: float(r["at"])):
        if record.get("type") != "Ready":
            continue
        ref, at = str(record["object"]), float(record["at"])
        if record.get("status") != "True":
            open_since.setdefault(ref, at)
        elif ref in open_since:
            out.setdefault(ref, []).append(Interval(open_since.pop(ref), at))
    for ref, start in open_since.items():
        out.setdefault(ref, []).append(Interval(start))
    return out


def _graphs(timeline: Timeline) -> list[tuple[float, DependencyGraph]]:
    """The dependsOn graph of the watched objects after each change, in time order."""
    latest: dict[str, list[str]] = {}
    out = []
    for record in sorted(timeline.dependencies, key=lambda r: float(r["at"])):
        latest[str(record["object"])] = [str(d) for d in record.get("dependsOn") or []]
        graph = DependencyGraph()
        for obj, deps in latest.items():
            graph.add_node(_ref(obj))
            for dep in deps:
                graph.add_edge(_ref(obj), _ref(dep))
        out.append((float(record["at"]), graph))
    return out


def cycles(timeline: Timeline) -> dict[str, list[Interval]]:
    """Per object, when it was on a dependsOn cycle among the watched objects."""
    out: dict[str, list[Interval]] = {}
    open_since: dict[str, float] = {}
    for at, graph in _graphs(timeline):
        members = {str(ref) for cycle in graph.cycles() for ref in cycle}
        for ref in members - set(open_since):
            open_since[ref] = at
        for ref in set(open_since) - members:
            out.setdefault(ref, []).append(Interval(open_since.pop(ref), at))
    for ref, start in open_since.items():
        out.setdefault(ref, []).append(Interval(start))
    return out


def blocking(timeline: Timeline) -> dict[str, list[Interval]]:
    """Per object, when it was not Ready while another watched object dependsOn it (dependents as they were when
    it stopped being Ready)."""
    graphs = _graphs(timeline)
    out: dict[str, list[Interval]] = {}
    for ref, intervals in not_ready(timeline).items():
        for interval in intervals:
            graph = next((g for at, g in reversed(graphs) if at <= interval.start), graphs[0][1] if graphs else None)
            if graph is not None and graph.dependents_of(_ref(ref)):
                out.setdefault(ref, []).append(interval)
    return out


def escalations(timeline: Timeline) -> dict[str, list[Interval]]:
    """Per object, the RecoveryEscalated Events of the operator, or of the stage controller (a StagedKustomization's
    failed revision counts under the operator's metric), on it (the counter the rule reads stays raised)."""
    out: dict[str, list[Interval]] = {}
    for event in timeline.events:
        if event.get("reason") == ESCALATED_REASON and event.get("component") in ESCALATING:
            out.setdefault(str(event["object"]), []).append(Interval(float(event["at"])))
    return out


def rollbacks(timeline: Timeline) -> dict[str, list[Interval]]:
    """Per StagedKustomization, when the watch saw one of its stages rolled back (the counter the rule reads stays
    raised)."""
    out: dict[str, list[Interval]] = {}
    for record in timeline.stages:
        if record.get("phase") == STAGE_ROLLED_BACK:
            out.setdefault(str(record["object"]), []).append(Interval(float(record["at"])))
    return out


_CONDITIONS: dict[str, Callable[[Timeline], dict[str, list[Interval]]]] = {
    NOT_READY: not_ready,
    CYCLE: cycles,
    BLOCKING: blocking,
    ESCALATED: escalations,
    ROLLED_BACK: rollbacks,
}


@dataclass(frozen=True)
class Due:
    """When a promise became due (seconds since injection), and whether its page had to arrive while watched."""

    at: float
    must_have_fired: bool


def due(timeline: Timeline, watch_end: float, delivery: float) -> dict[str, Due]:
    """Every promised alert the run's ground truth made due, by alert name (the earliest occasion)."""
    out: dict[str, Due] = {}
    for promise in PROMISES:
        occasion = _earliest(promise, _CONDITIONS[promise.condition](timeline), watch_end, delivery)
        if occasion is not None:
            out[promise.alert] = occasion
    return out


def _earliest(promise: Promise, held: Mapping[str, list[Interval]], watch_end: float, delivery: float) -> Due | None:
    best: Due | None = None
    for ref, intervals in held.items():
        if _ref(ref).kind not in promise.kinds:
            continue
        for interval in intervals:
            if not interval.lasts(promise.holds_for, watch_end):
                continue
            at = round(interval.start + promise.holds_for, 3)
            must = interval.lasts(promise.holds_for + delivery, watch_end)
            if best is None or at < best.at:
                best = Due(at, must)
    return best


Names = Callable[[Mapping[str, str]], bool]


def names_run(owns: Owns, recovery: str) -> Names:
    """Whether an alert's labels name the run: one of its objects, else (no object labels) its recovery's exporter."""

    def names(labels: Mapping[str, str]) -> bool:
        if labels.get("namespace") or labels.get("name"):
            return owns(str(labels.get("kind", "")), labels.get("namespace"), labels.get("name"))
        return labels.get("recovery") == recovery

    return names


def fired(notifications: Iterable[Notification], injected_wall: float, names: Names) -> dict[str, dict[str, Any]]:
    """Per alert name: when its first page for the run arrived, and when its last firing instance was resolved
    (None while any still fires), in seconds since the injection."""
    first: dict[str, float] = {}
    state: dict[str, dict[str, tuple[str, float]]] = {}  # name -> fingerprint -> (status, received)
    for note in sorted(notifications, key=lambda n: n.received):
        if note.received < injected_wall:
            continue
        at = round(note.received - injected_wall, 3)
        for alert in note.alerts:
            labels = alert.get("labels") or {}
            name, status = str(labels.get("alertname", "")), str(alert.get("status", ""))
            if not name or not names(labels):
                continue
            instances = state.setdefault(name, {})
            key = str(alert.get("fingerprint") or sorted(labels.items()))
            if status == "firing":
                first.setdefault(name, at)
                if instances.get(key, ("",))[0] != "firing":
                    instances[key] = ("firing", at)
            elif status == "resolved" and key in instances and instances[key][0] == "firing":
                instances[key] = ("resolved", at)
    out = {}
    for name, at in first.items():
        latest = list(state[name].values())
        resolved = None if any(s == "firing" for s, _ in latest) else max(t for _, t in latest)
        out[name] = {"name": name, "fired_after": at, "resolved_after": resolved}
    return out


def in_flight(firing: Iterable[Mapping[str, str]], names: Names) -> set[str]:
    """The alerts Prometheus has firing (their labels) that name the run: their pages may still be on their way
    through Alertmanager's group wait when the run is over."""
    return {str(labels["alertname"]) for labels in firing if labels.get("alertname") and names(labels)}


def measurement(pages: Mapping[str, dict[str, Any]], due_alerts: Mapping[str, Due]) -> list[dict[str, Any]]:
    """The `alerts` list: what fired (with `due_after` when it was due), then what was due, had to page, and did not."""
    items = []
    for name, page in sorted(pages.items(), key=lambda kv: kv[1]["fired_after"]):
        item = dict(page)
        if name in due_alerts:
            item["due_after"] = due_alerts[name].at
        items.append(item)
    for name, occasion in sorted(due_alerts.items(), key=lambda kv: kv[1].at):
        if name not in pages and occasion.must_have_fired:
            items.append({"name": name, "fired_after": None, "resolved_after": None, "due_after": occasion.at})
    return items


def mark(timeline: Timeline, items: Iterable[Mapping[str, Any]]) -> None:
    """`alerted` at the first page, `alert-resolved` once every alert that paged was resolved."""
    injected = timeline.marks.get("injected")
    pages = [i for i in items if i.get("fired_after") is not None]
    if injected is None or not pages:
        return
    timeline.mark("alerted", injected + min(float(i["fired_after"]) for i in pages))
    if all(i.get("resolved_after") is not None for i in pages):
        timeline.mark("alert-resolved", injected + max(float(i["resolved_after"]) for i in pages))
