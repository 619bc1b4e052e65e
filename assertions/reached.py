"""How far a bad revision got: per stage, how many of its objects ever carried it (the `reached` measurement).

A stage's Kustomization counts once it attempted the revision (its status, or a kustomize-controller Event
naming the revision: seen, not assumed); each workload in the stage's namespace counts once it carried the bad
change (the fault says what that looks like). So `reached.production: 0` means production's Kustomization never
even tried the revision, not merely that it failed to apply it. Criterion `reached` judges the figure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from assertions.criterion import Criterion
from fluxmodel.conditions import last_applied_revision, last_attempted_revision
from fluxmodel.kinds import KUSTOMIZATION, ObjectRef


@dataclass(frozen=True)
class StageWatch:
    """One stage as the run set it up: its Flux Kustomization and the namespace its objects land in."""

    name: str
    kustomization: ObjectRef
    namespace: str


@dataclass
class ReachedTracker:
    """Fed every watch event of the run; `figure()` is {stage: objects that carried the bad revision}."""

    stages: list[StageWatch]
    bad_revision: Callable[[], str | None]
    bad_object: Callable[[dict[str, Any]], bool]
    seen: dict[str, set[str]] = field(default_factory=dict)

    def observe(self, obj: dict[str, Any]) -> None:
        bad = self.bad_revision()
        if not bad:
            return
        kind = str(obj.get("kind") or "")
        meta = obj.get("metadata") or {}
        for stage in self.stages:
            found = self.seen.setdefault(stage.name, set())
            ks = stage.kustomization
            if kind == KUSTOMIZATION.kind and ObjectRef.of(obj) == ks:
                if bad in (last_attempted_revision(obj), last_applied_revision(obj)):
                    found.add(str(ks))
            elif kind == "Event":
                involved = obj.get("involvedObject") or {}
                names = (involved.get("kind"), involved.get("namespace"), involved.get("name"))
                revisions = [v for k, v in (meta.get("annotations") or {}).items() if str(k).endswith("/revision")]
                if names == (ks.kind, ks.namespace, ks.name) and (bad in revisions or bad in str(obj.get("message"))):
                    found.add(str(ks))
            elif meta.get("namespace") == stage.namespace and self.bad_object(obj):
                found.add(f"{kind}/{stage.namespace}/{meta.get('name')}")

    def figure(self) -> dict[str, int]:
        return {stage.name: len(self.seen.get(stage.name, ())) for stage in self.stages}

    def where(self) -> dict[str, list[str]]:
        """Which objects, per stage (for the report's attachment)."""
        return {name: sorted(ids) for name, ids in self.seen.items() if ids}


class Reached(Criterion):
    """Objects per stage that carried the bad revision; budget: the most allowed per stage, e.g. {production: 0}.

    Never excused for a baseline: a bad revision in production is not a matter of time."""

    key = "reached"
    excusable = False

    def budget_problem(self, raw: Any) -> str | None:
        return _counts_problem(raw, "a mapping of stage name to the most objects allowed, like {production: 0}")

    def measurement_problem(self, value: Any) -> str | None:
        return _counts_problem(value, "a mapping of stage name to objects that carried the bad revision")

    def problems(self, measured: Any, budget: Any | None) -> list[str]:
        out = []
        for stage, limit in sorted((budget or {}).items()):
            if stage not in (measured or {}):
                out.append(f"the bad revision's reach into {stage} was not measured, although the budget judges it")
                continue
            count = int(measured[stage])
            if count > int(limit):
                out.append(f"the bad revision reached {stage}: {count} object(s) > {limit}")
        return out


def _counts_problem(value: Any, expected: str) -> str | None:
    ok = isinstance(value, Mapping) and all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 0 for k, v in value.items()
    )
    return None if ok else f"expected {expected}, got {value!r}"
