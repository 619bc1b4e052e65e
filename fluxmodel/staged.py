"""The StagedKustomization spec (the design document's staged rollout), read once for everyone.

The stage controller (staging/), `resilience validate` (a tree's StagedKustomizations) and the harness all read
a spec through `parse`, and ask the same `problems` what the CRD's schema cannot refuse: a cycle among stages.
The CRD (recovery/manifests) refuses what a schema can: unknown check types, a dependsOn naming no stage, a
stage depending on itself, a stage name that is no DNS-1123 label; `problems` repeats those, so a manifest read
from Git is judged alike. `source_problem` says which sources a stage can be held back through (the controller
pins one GitRepository per stage), for the controller on the cluster's objects and validate on the tree's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from fluxmodel.conditions import revision_commit
from fluxmodel.graph import DependencyGraph
from fluxmodel.kinds import GIT_REPOSITORY, KUSTOMIZATION, STAGED_KUSTOMIZATION, ObjectRef

BUILD_SUCCESS: Final = "build-success"
COMPATIBILITY_CHECK: Final = "compatibility-check"
VALIDATION_CHECKS: Final = (BUILD_SUCCESS, COMPATIBILITY_CHECK)
POD_READY: Final = "pod-ready"
KUSTOMIZATION_READY: Final = "kustomization-ready"
HEALTH_CHECKS: Final = (POD_READY, KUSTOMIZATION_READY)
AUTOMATIC: Final = "automatic"
MANUAL: Final = "manual"
APPROVALS: Final = (AUTOMATIC, MANUAL)
DEFAULT_HEALTH_TIMEOUT: Final = 300.0  # the design's example writes 300s; the same when none is written

# A stage's phase for the revision it works on (status.stages[].phase).
PENDING: Final = "Pending"
CHECKING: Final = "Checking"
PROGRESSING: Final = "Progressing"
SOAKING: Final = "Soaking"
PASSED: Final = "Passed"
FAILED: Final = "Failed"
ROLLED_BACK: Final = "RolledBack"
PHASES: Final = (PENDING, CHECKING, PROGRESSING, SOAKING, PASSED, FAILED, ROLLED_BACK)

# Requests on the StagedKustomization: approve revision R for a manual stage; try a failed revision again.
APPROVE_PREFIX: Final = "approve.stages.gitops.flux.io/"
RETRY_ANNOTATION: Final = "stages.gitops.flux.io/retry"
# The GitRepository a StagedKustomization follows the branch with (its stages' sources are pinned).
HEAD_FOR_LABEL: Final = "stages.gitops.flux.io/head-for"

_DURATION = re.compile(r"^(?:([0-9]+(\.[0-9]+)?)(ms|s|m|h))+$")
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
DURATION_PATTERN: Final = _DURATION.pattern  # the CRD's pattern for timeout and soakTime
# A stage name is a DNS-1123 label (the CRD's pattern and maxLength): it is part of the approval annotation's key.
STAGE_NAME_PATTERN: Final = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
STAGE_NAME_MAX: Final = 63


def parse_duration(text: Any) -> float | None:
    """Seconds of a Go duration as Flux writes them (`300s`, `5m`, `1h30m`, `500ms`); None when it is not one."""
    if not isinstance(text, str) or not _DURATION.match(text):
        return None
    return sum(float(n) * _UNIT[unit] for n, unit in _PART.findall(text))


@dataclass(frozen=True)
class HealthCheck:
    type: str
    timeout: float = DEFAULT_HEALTH_TIMEOUT


@dataclass(frozen=True)
class Stage:
    """One stage: the Kustomization that applies it, what it waits for, what it checks, how long it soaks."""

    name: str
    kustomization: ObjectRef
    depends_on: tuple[str, ...] = ()
    validation_checks: tuple[str, ...] = ()
    health_checks: tuple[HealthCheck, ...] = ()
    soak: float = 0.0
    approval: str = AUTOMATIC

    @property
    def timeout(self) -> float:
        """How long the stage may take from applying a revision to every health check green."""
        return max((h.timeout for h in self.health_checks), default=DEFAULT_HEALTH_TIMEOUT)


# What `problems` and `source_problem` can report, as `resilience validate` names its rules (`staged-<code>`).
CYCLE: Final = "stage-cycle"
UNKNOWN_STAGE: Final = "unknown-stage"
INVALID: Final = "invalid-stage"
STAGE_NAME: Final = "stage-name"
SHARED_SOURCE: Final = "shared-source"
UNPINNABLE_SOURCE: Final = "unpinnable-source"


@dataclass(frozen=True)
class Problem:
    """Why a spec cannot promote, naming the stage: `code` is one of the codes above."""

    code: str
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class StagedSpec:
    ref: ObjectRef
    stages: tuple[Stage, ...]
    suspend: bool = False
    problems: tuple[Problem, ...] = field(default=())

    def stage(self, name: str) -> Stage:
        return next(s for s in self.stages if s.name == name)

    def order(self) -> list[Stage]:
        """Stages with every dependency first (ties in spec order); only meaningful without problems."""
        done: list[Stage] = []
        names: set[str] = set()
        pending = list(self.stages)
        while pending:
            ready = [s for s in pending if set(s.depends_on) <= names]
            if not ready:
                return done + pending  # a cycle: reported by `problems`
            done.append(ready[0])
            names.add(ready[0].name)
            pending.remove(ready[0])
        return done

    def downstream(self, name: str) -> list[Stage]:
        """Every stage that transitively depends on `name`, in order (a revision passing `name` goes there)."""
        graph = _graph(self)
        node = ObjectRef("Stage", self.ref.namespace, name)
        later = {r.name for r in graph.dependents_of(node)}
        return [s for s in self.order() if s.name in later]


def _graph(spec: StagedSpec) -> DependencyGraph:
    graph = DependencyGraph()
    for stage in spec.stages:
        node = ObjectRef("Stage", spec.ref.namespace, stage.name)
        graph.add_node(node)
        for dep in stage.depends_on:
            graph.add_edge(node, ObjectRef("Stage", spec.ref.namespace, dep))
    return graph


def is_staged(obj: Mapping[str, Any]) -> bool:
    """A StagedKustomization of the design's API group (any version)."""
    group = str(obj.get("apiVersion", "")).partition("/")[0]
    return obj.get("kind") == STAGED_KUSTOMIZATION.kind and group == STAGED_KUSTOMIZATION.group


def parse(obj: Mapping[str, Any], default_namespace: str = "default") -> StagedSpec:
    """The spec of a StagedKustomization, and every problem that keeps it from promoting, each naming a stage."""
    meta = obj.get("metadata") or {}
    ref = ObjectRef(STAGED_KUSTOMIZATION.kind, str(meta.get("namespace") or default_namespace), str(meta.get("name")))
    spec = _mapping(obj.get("spec"))
    problems: list[Problem] = []
    stages: list[Stage] = []
    raw_stages = spec.get("stages")
    if not isinstance(raw_stages, list) or not raw_stages:
        problems.append(Problem(INVALID, "spec.stages: name at least one stage"))
        raw_stages = []
    for i, raw in enumerate(raw_stages):
        stage = _stage(raw if isinstance(raw, Mapping) else {}, i, ref.namespace, problems)
        if stage is not None:
            stages.append(stage)
    parsed = StagedSpec(ref, tuple(stages), bool(spec.get("suspend") is True))
    problems += _graph_problems(parsed)
    return StagedSpec(ref, parsed.stages, parsed.suspend, tuple(dict.fromkeys(problems)))


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _stage(raw: Mapping[str, Any], index: int, namespace: str, problems: list[Problem]) -> Stage | None:
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        problems.append(Problem(INVALID, f"spec.stages[{index}]: a stage needs a name"))
        return None
    where = f"stage {name}"
    if len(name) > STAGE_NAME_MAX or not re.match(STAGE_NAME_PATTERN, name):
        problems.append(Problem(STAGE_NAME, _bad_name(name)))
    ks = _mapping(raw.get("kustomizationRef"))
    if not ks.get("name"):
        problems.append(
            Problem(INVALID, f"{where}: kustomizationRef.name is required (the Kustomization that applies the stage)")
        )
    kustomization = ObjectRef(KUSTOMIZATION.kind, str(ks.get("namespace") or namespace), str(ks.get("name") or ""))
    depends = [str(d) for d in raw.get("dependsOn") or []]
    checks: list[str] = []
    for entry in raw.get("validationChecks") or []:
        kind = _mapping(entry).get("type")
        if kind not in VALIDATION_CHECKS:
            problems.append(
                Problem(INVALID, f"{where}: validationChecks type {kind!r} is none of {', '.join(VALIDATION_CHECKS)}")
            )
        else:
            checks.append(str(kind))
    health: list[HealthCheck] = []
    for raw_check in raw.get("healthChecks") or []:
        entry = _mapping(raw_check)
        kind, timeout = entry.get("type"), entry.get("timeout")
        seconds = DEFAULT_HEALTH_TIMEOUT if timeout is None else parse_duration(timeout)
        if kind not in HEALTH_CHECKS:
            problems.append(
                Problem(INVALID, f"{where}: healthChecks type {kind!r} is none of {', '.join(HEALTH_CHECKS)}")
            )
        elif seconds is None or seconds <= 0:
            problems.append(
                Problem(INVALID, f"{where}: healthChecks {kind} timeout {timeout!r} is not a duration like 300s or 5m")
            )
        else:
            health.append(HealthCheck(str(kind), seconds))
    soak = parse_duration(raw.get("soakTime", "0s"))
    if soak is None:
        problems.append(
            Problem(INVALID, f"{where}: soakTime {raw.get('soakTime')!r} is not a duration like 60s or 10m")
        )
    approval = raw.get("approval", AUTOMATIC)
    if approval not in APPROVALS:
        problems.append(Problem(INVALID, f"{where}: approval {approval!r} is none of {', '.join(APPROVALS)}"))
    return Stage(
        name,
        kustomization,
        tuple(dict.fromkeys(depends)),
        tuple(dict.fromkeys(checks)),
        tuple(health),
        soak or 0.0,
        str(approval) if approval in APPROVALS else AUTOMATIC,
    )


def _graph_problems(spec: StagedSpec) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[str] = set()
    for stage in spec.stages:
        if stage.name in seen:
            problems.append(
                Problem(INVALID, f"stage {stage.name}: the name is used by another stage; names must be unique")
            )
        seen.add(stage.name)
        if stage.name in stage.depends_on:
            problems.append(Problem(UNKNOWN_STAGE, f"stage {stage.name}: dependsOn names the stage itself"))
        for dep in stage.depends_on:
            if dep not in {s.name for s in spec.stages}:
                problems.append(
                    Problem(
                        UNKNOWN_STAGE, f"stage {stage.name}: dependsOn names {dep!r}, which is no stage of this object"
                    )
                )
    kustomizations: dict[ObjectRef, str] = {}
    for stage in spec.stages:
        other = kustomizations.setdefault(stage.kustomization, stage.name)
        if other != stage.name and stage.kustomization.name:
            problems.append(
                Problem(
                    INVALID,
                    f"stage {stage.name}: applies {stage.kustomization} like stage {other}; each stage needs a "
                    "Kustomization of its own",
                )
            )
    for cycle in _graph(spec).cycles():
        if len(cycle) > 2:  # a self-dependency is reported above
            names = [ref.name for ref in cycle]
            problems.append(
                Problem(
                    CYCLE,
                    f"stage {names[0]}: dependsOn cycle {' -> '.join(names)}: no revision could ever enter these "
                    "stages; remove one dependsOn entry",
                )
            )
    return problems


def _bad_name(name: str) -> str:
    fixed = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:STAGE_NAME_MAX].rstrip("-")
    like = f" (like {fixed})" if fixed else ""
    return (
        f"stage {name!r}: the name is not a DNS-1123 label, which the API server refuses (the CRD's pattern: the "
        f"name is part of the annotation key {APPROVE_PREFIX}<stage>); rename it{like}: at most "
        f"{STAGE_NAME_MAX} lower-case letters, digits and '-', starting and ending with a letter or digit"
    )


def source_problem(stage: Stage, source: ObjectRef, readers: Mapping[ObjectRef, str]) -> Problem | None:
    """Why `stage` cannot be held back through `source` (what its Kustomization reads); `readers` maps the sources
    of the stages before it to their stage. A stage is held by pinning its own GitRepository, nothing else."""
    ks = stage.kustomization
    if source.kind != GIT_REPOSITORY.kind:
        kind = f"kind {source.kind}" if source.kind else "no kind"
        return Problem(
            UNPINNABLE_SOURCE,
            f"stage {stage.name}: Kustomization {ks.namespace}/{ks.name} reads a source of {kind}, which the stage "
            "controller cannot pin (only a GitRepository holds a stage back); point its sourceRef at a GitRepository "
            "of the stage's own",
        )
    other = readers.get(source)
    if other is not None and other != stage.name:
        return Problem(
            SHARED_SOURCE,
            f"stage {stage.name}: reads GitRepository {source.namespace}/{source.name} like stage {other}; give each "
            "stage a GitRepository of its own, so one can be held while the other moves",
        )
    return None


def approve_annotation(stage: str) -> str:
    """The annotation that approves a revision for a stage with `approval: manual` (value: the commit)."""
    return APPROVE_PREFIX + stage


def same_commit(revision: str | None, wanted: str | None) -> bool:
    """Whether `wanted` (a revision, a full or abbreviated commit of at least 7 digits) names `revision`."""
    commit = revision_commit(revision)
    text = str(wanted or "").strip()
    if not commit or not text:
        return False
    asked = revision_commit(text) or text
    return len(asked) >= 7 and commit.startswith(asked.lower())


def short(revision: str | None) -> str:
    """`main@sha1:0123456789ab...` as `main@0123456`, for messages and printer columns."""
    commit = revision_commit(revision)
    if not revision or not commit:
        return revision or "-"
    branch = str(revision).split("@", 1)[0] if "@" in str(revision) else ""
    return f"{branch}@{commit[:7]}" if branch else commit[:7]


def head_name(staged_name: str) -> str:
    """The GitRepository through which a StagedKustomization follows the branch head (in its namespace)."""
    return f"{staged_name[:240]}-head"
