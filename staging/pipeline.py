"""Promotion decisions for one StagedKustomization: which revision each stage works on, and what to pin.

Pure and clock-injected: the controller gathers the world (the head revision, each stage's Kustomization and
GitRepository), this decides against the status and returns a Plan (pins, notices, when to look again), and
the controller writes the status before it pins anything. The rules, each a sentence of the manual:

- A revision enters a stage only once every stage it depends on passed that same revision (a root stage takes
  the head), and only a revision that came through the head after the one the stage holds (newest wins; no
  stage ever goes back to an older revision it did not fail).
- Validation checks run first; a refusal marks the revision failed and nothing is applied. Then the stage's
  source is pinned to it; health checks must all pass within their timeouts, then stay green for the soak.
- A failure after applying rolls the stage back to its last passed revision. A failed revision never enters a
  later stage; a newer commit starts a new attempt, and only an explicit retry request tries it again.
- A stage in flight finishes its revision before it takes the next, so a revision is applied once per stage.
- Every stage's source is pinned, at every look, to the revision the stage holds: whatever moved it (Flux's
  drift correction, someone's patch, the operator's rollback) is undone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from fluxmodel.conditions import condition, last_applied_revision, last_attempted_revision, observed_current
from fluxmodel.kinds import ObjectRef, source_ref
from fluxmodel.staged import (
    CHECKING,
    FAILED,
    MANUAL,
    PASSED,
    PENDING,
    PROGRESSING,
    RETRY_ANNOTATION,
    ROLLED_BACK,
    SOAKING,
    Stage,
    StagedSpec,
    approve_annotation,
    same_commit,
    short,
    source_problem,
)
from recovery.actions.sources import held_by_stages, pin_holder, pinned_commit
from staging.status import (
    INVALID,
    NOT_FOUND,
    PROGRESSING_REASON,
    REVISION_FAILED,
    SOURCE_PROBLEM,
    SUCCEEDED,
    SUSPENDED,
    CheckResult,
    PipelineStatus,
    StageStatus,
)

APPLIED = "applied"  # the implicit first check of every stage: its Kustomization applied the revision
POLL_IN_FLIGHT = 1.0  # seconds between looks at a stage applying or soaking (workloads are not watched)
# Failures of a Kustomization at a revision that no waiting fixes (its health checks are ours to time).
APPLY_FAILURES = ("ReconciliationFailed", "BuildFailed")


@dataclass(frozen=True)
class StageWorld:
    """A stage's objects as they are now (None: not found)."""

    kustomization: dict[str, Any] | None
    source: dict[str, Any] | None


@dataclass(frozen=True)
class World:
    head: str | None  # the branch head's revision, from the head GitRepository
    stages: Mapping[str, StageWorld]
    annotations: Mapping[str, str]
    now: float
    holder: str  # this StagedKustomization as PINNED_BY names it


class Checks(Protocol):
    def validate(self, stage: Stage, revision: str) -> list[CheckResult]:
        """The stage's validation checks on `revision` (for it and every stage after it); None: not decided yet."""
        ...

    def health(self, stage: Stage, revision: str, kustomization: dict[str, Any] | None) -> list[CheckResult]:
        """The stage's health checks now; a check not passed yet is passed=False."""
        ...


@dataclass(frozen=True)
class Pin:
    stage: str
    source: ObjectRef
    revision: str
    bad: str = ""


@dataclass(frozen=True)
class Notice:
    """Something to tell: an Event, a metric and, for failures, an escalation."""

    kind: str  # promoting | passed | failed | rolled-back
    stage: str
    revision: str
    message: str
    check: str = ""
    seconds: float | None = None

    @property
    def warning(self) -> bool:
        return self.kind in ("failed", "rolled-back")


@dataclass
class Plan:
    pins: list[Pin] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    requeue: float | None = None


def reconcile(spec: StagedSpec, status: PipelineStatus, world: World, checks: Checks) -> Plan:
    """Advance every stage as far as it can go now; the status is updated in place."""
    plan, now = Plan(), world.now
    if spec.problems:
        more = f" (and {len(spec.problems) - 1} more)" if len(spec.problems) > 1 else ""
        status.set_ready("False", INVALID, str(spec.problems[0]) + more + "; nothing is promoted", now)
        return plan
    problem = config_problem(spec, world)
    if problem is not None:
        status.set_ready("False", problem[0], problem[1] + "; nothing is promoted", now)
        return plan
    if spec.suspend:
        status.set_ready("Unknown", SUSPENDED, "spec.suspend is true: no revision moves", now)
        return plan
    if world.head:
        status.latest = world.head
        status.see(world.head)
    _retry(status, world)
    order = spec.order()
    for stage in order:
        _adopt(stage, status, world)
    for _ in range(3 * len(order) + 1):  # each pass moves a revision at least one stage on, or nothing moves
        moved = [_step(stage, spec, status, world, checks, plan) for stage in order]
        if not any(moved):
            break
    _hold(order, status, world, plan)
    _ready(order, status, world)
    plan.requeue = _requeue(order, status, now)
    return plan


def config_problem(spec: StagedSpec, world: World) -> tuple[str, str] | None:
    """What in the cluster keeps the stages from being held back (reason, message naming the stage)."""
    sources: dict[ObjectRef, str] = {}
    for stage in spec.stages:
        sw = world.stages.get(stage.name) or StageWorld(None, None)
        if sw.kustomization is None:
            return NOT_FOUND, (
                f"stage {stage.name}: Kustomization {stage.kustomization.namespace}/{stage.kustomization.name} not "
                "found; create it or fix kustomizationRef"
            )
        src = source_ref(sw.kustomization)
        unpinnable = source_problem(stage, src, sources)
        if unpinnable is not None:
            return SOURCE_PROBLEM, unpinnable.message
        sources[src] = stage.name
        if sw.source is None:
            return SOURCE_PROBLEM, f"stage {stage.name}: GitRepository {src.namespace}/{src.name} not found"
        commit, holder = pinned_commit(sw.source), pin_holder(sw.source)
        if commit and not holder:
            return SOURCE_PROBLEM, (
                f"stage {stage.name}: GitRepository {src.namespace}/{src.name} is pinned to {commit} by someone "
                "else (spec.ref.commit without gitops.flux.io/pinned-by); remove spec.ref.commit, the stage pins it"
            )
        if holder != world.holder and held_by_stages(sw.source):
            return SOURCE_PROBLEM, f"stage {stage.name}: GitRepository {src.namespace}/{src.name} is held by {holder}"
    return None


def _retry(status: PipelineStatus, world: World) -> None:
    wanted = world.annotations.get(RETRY_ANNOTATION)
    if not wanted or wanted == status.handled_retry:
        return
    status.handled_retry = wanted
    retried = [f for f in status.failed if same_commit(str(f.get("revision")), wanted)]
    status.failed = [f for f in status.failed if f not in retried]
    for f in retried:
        status.record(world.now, revision=f.get("revision"), result="RetryRequested", reason=RETRY_ANNOTATION)


def _adopt(stage: Stage, status: PipelineStatus, world: World) -> None:
    """A stage seen for the first time holds what its Kustomization last applied (or what its source has)."""
    if stage.name in status.stages:
        return
    sw = world.stages[stage.name]
    ks = sw.kustomization or {}
    applied = last_applied_revision(ks)
    artifact = ((sw.source or {}).get("status") or {}).get("artifact") or {}
    st = status.stage(stage.name)
    st.changed = world.now
    if applied:
        st.passed_revision, st.passed_at, st.phase = applied, world.now, PASSED
        st.message = f"adopted at {short(applied)}, the revision its Kustomization last applied"
    else:
        st.revision = artifact.get("revision") or None
        st.message = "adopted before its Kustomization applied anything; held at its source's revision"
    status.record(world.now, stage=stage.name, revision=applied or st.revision, result="Adopted")


def _candidate(stage: Stage, status: PipelineStatus, world: World) -> str | None:
    if not stage.depends_on:
        return world.head
    passed = {status.stage(d).passed_revision for d in stage.depends_on}
    return passed.pop() if len(passed) == 1 else None


def _phase(st: StageStatus, phase: str, now: float, message: str) -> None:
    if st.phase != phase:
        st.changed = now
    st.phase, st.message = phase, message


def _step(stage: Stage, spec: StagedSpec, status: PipelineStatus, world: World, checks: Checks, plan: Plan) -> bool:
    """Move one stage on if it can; True when it changed phase or revision."""
    st = status.stage(stage.name)
    if st.phase == PROGRESSING:
        return _progress(stage, st, status, world, checks, plan)
    if st.phase == SOAKING:
        return _soak(stage, st, status, world, checks, plan)
    candidate = _candidate(stage, status, world)
    if candidate is None or candidate == st.passed_revision or not status.newer(candidate, st.passed_revision):
        if candidate is None and st.phase == PENDING and stage.depends_on:
            st.message = f"waiting for {', '.join(stage.depends_on)} to pass one revision"
        return False
    failure = status.failure(candidate)
    if failure is not None:
        where = f"stage {failure.get('stage')} ({failure.get('check')})"
        text = f"{short(candidate)} failed in {where}; waiting for a newer commit"
        if st.phase in (PENDING, CHECKING):
            _phase(st, PENDING, world.now, text)
        return False
    if stage.approval == MANUAL and not same_commit(candidate, world.annotations.get(approve_annotation(stage.name))):
        text = f"{short(candidate)} awaits approval: annotate {approve_annotation(stage.name)}={candidate}"
        changed = st.phase != PENDING or st.revision != candidate
        st.revision = candidate
        _phase(st, PENDING, world.now, text)
        return changed
    st.revision, st.checks = candidate, []
    _phase(st, CHECKING, world.now, f"checking {short(candidate)}")
    results = checks.validate(stage, candidate)
    st.checks = results
    refused = next((r for r in results if r.passed is False), None)
    if refused is not None:
        text = f"{short(candidate)} refused by {refused.type}: {refused.message}"
        _phase(st, FAILED, world.now, text + "; nothing was applied")
        status.mark_failed(candidate, stage.name, refused.type, refused.message, world.now)
        status.record(world.now, stage=stage.name, revision=candidate, result=FAILED, check=refused.type, message=text)
        plan.notices.append(Notice("failed", stage.name, candidate, text, check=refused.type))
        return True
    if any(r.passed is None for r in results):
        st.message = "; ".join(r.message for r in results if r.passed is None)
        return False
    st.started, st.soak_started = world.now, None
    came = "head" if not stage.depends_on else ", ".join(stage.depends_on)
    text = f"applying {short(candidate)} (passed {came}; was at {short(st.passed_revision)})"
    _phase(st, PROGRESSING, world.now, text)
    previous = st.passed_revision
    status.record(world.now, stage=stage.name, revision=candidate, previous=previous, result="Applying", message=text)
    plan.notices.append(Notice("promoting", stage.name, candidate, text))
    return True


def _health(stage: Stage, st: StageStatus, world: World, checks: Checks) -> list[CheckResult]:
    ks = world.stages[stage.name].kustomization
    revision = str(st.revision)
    applied = last_applied_revision(ks or {}) == revision and observed_current(ks or {})
    first = CheckResult(APPLIED, applied, f"Kustomization at {short(last_applied_revision(ks or {}))}", world.now)
    return [first, *checks.health(stage, revision, ks)]


def _apply_failure(ks: dict[str, Any] | None, revision: str) -> str | None:
    """The Kustomization failed to apply `revision` in a way no waiting fixes (a refused or unbuildable object)."""
    ready = condition(ks or {}, "Ready")
    if ks is None or ready is None or ready.true or last_attempted_revision(ks) != revision:
        return None
    return f"{ready.reason}: {ready.message}" if ready.reason in APPLY_FAILURES and observed_current(ks) else None


def _progress(stage: Stage, st: StageStatus, status: PipelineStatus, world: World, checks: Checks, plan: Plan) -> bool:
    results = _health(stage, st, world, checks)
    st.checks = results
    if all(r.passed for r in results):
        if stage.soak > 0:
            st.soak_started = world.now
            _phase(st, SOAKING, world.now, f"{short(st.revision)} healthy; soaking for {stage.soak:g}s")
            return True
        _pass(stage, st, status, world, plan)
        return True
    elapsed = world.now - (st.started or world.now)
    fatal = _apply_failure(world.stages[stage.name].kustomization, str(st.revision))
    timeouts = {h.type: h.timeout for h in stage.health_checks}
    # A configured check names the failure better than the implicit `applied` (which a Kustomization waiting for
    # its own health checks also misses).
    late = sorted(
        (r for r in results if not r.passed and elapsed > timeouts.get(r.type, stage.timeout)),
        key=lambda r: r.type == APPLIED,
    )
    if fatal is not None:
        _roll_back(stage, st, status, world, plan, APPLIED, f"the Kustomization failed: {fatal}")
    elif late:
        _roll_back(stage, st, status, world, plan, late[0].type, f"not passed within {elapsed:.0f}s: {late[0].message}")
    else:
        waiting = "; ".join(f"{r.type}: {r.message}" for r in results if not r.passed)
        st.message = f"applying {short(st.revision)} ({elapsed:.0f}s): {waiting}"
        return False
    return True


def _soak(stage: Stage, st: StageStatus, status: PipelineStatus, world: World, checks: Checks, plan: Plan) -> bool:
    results = _health(stage, st, world, checks)
    st.checks = results
    failing = next((r for r in results if not r.passed), None)
    if failing is not None:
        _roll_back(stage, st, status, world, plan, failing.type, f"failed while soaking: {failing.message}")
        return True
    if world.now - (st.soak_started or world.now) >= stage.soak:
        _pass(stage, st, status, world, plan)
        return True
    return False


def _pass(stage: Stage, st: StageStatus, status: PipelineStatus, world: World, plan: Plan) -> None:
    revision = str(st.revision)
    seconds = world.now - (st.started or world.now)
    st.passed_revision, st.passed_at = revision, world.now
    _phase(st, PASSED, world.now, f"{short(revision)} passed in {seconds:.1f}s")
    status.record(world.now, stage=stage.name, revision=revision, result=PASSED, seconds=round(seconds, 3))
    plan.notices.append(Notice("passed", stage.name, revision, st.message, seconds=seconds))


def _roll_back(
    stage: Stage, st: StageStatus, status: PipelineStatus, world: World, plan: Plan, check: str, why: str
) -> None:
    revision = str(st.revision)
    status.mark_failed(revision, stage.name, check, why, world.now)
    if st.passed_revision:
        text = f"{short(revision)} failed {check} ({why}); rolled back to {short(st.passed_revision)}"
        _phase(st, ROLLED_BACK, world.now, text)
    else:
        text = f"{short(revision)} failed {check} ({why}); no earlier revision passed this stage, it stays there"
        _phase(st, FAILED, world.now, text)
    status.record(world.now, stage=stage.name, revision=revision, result=st.phase, check=check, message=text)
    plan.notices.append(Notice("rolled-back" if st.passed_revision else "failed", stage.name, revision, text, check))


def _hold(order: list[Stage], status: PipelineStatus, world: World, plan: Plan) -> None:
    """Pin every stage's source to the revision the stage holds, whatever moved it."""
    for stage in order:
        st, sw = status.stage(stage.name), world.stages[stage.name]
        want = st.held
        if want is None or sw.kustomization is None or sw.source is None:
            continue
        if not same_commit(want, pinned_commit(sw.source)) or pin_holder(sw.source) != world.holder:
            bad = st.revision if st.phase in (ROLLED_BACK, FAILED) and st.revision != want else ""
            plan.pins.append(Pin(stage.name, source_ref(sw.kustomization), want, str(bad or "")))


def _ready(order: list[Stage], status: PipelineStatus, world: World) -> None:
    head, now = world.head, world.now
    failure = status.failure(head)
    if head is None:
        status.set_ready("Unknown", PROGRESSING_REASON, "waiting for the head GitRepository to fetch the branch", now)
    elif failure is not None:
        holds = ", ".join(f"{s.name} at {short(status.stage(s.name).held)}" for s in order)
        status.set_ready(
            "False",
            REVISION_FAILED,
            f"{short(head)} failed in stage {failure.get('stage')} ({failure.get('check')}: {failure.get('message')}); "
            f"stages hold {holds}; push a fix, or annotate {RETRY_ANNOTATION}=<commit> to try it again",
            now,
        )
    elif all(status.stage(s.name).phase == PASSED and status.stage(s.name).passed_revision == head for s in order):
        status.set_ready("True", SUCCEEDED, f"all {len(order)} stages passed {short(head)}", now)
    else:
        busy = [f"{s.name} {status.stage(s.name).phase}" for s in order if status.stage(s.name).phase != PASSED]
        status.set_ready("Unknown", PROGRESSING_REASON, f"promoting {short(head)}: {', '.join(busy) or 'pending'}", now)


def _requeue(order: list[Stage], status: PipelineStatus, now: float) -> float | None:
    delays = []
    for stage in order:
        st = status.stage(stage.name)
        if st.phase == PROGRESSING:
            delays.append(POLL_IN_FLIGHT)
        elif st.phase == SOAKING:
            left = (st.soak_started or now) + stage.soak - now
            delays.append(max(0.05, min(POLL_IN_FLIGHT, left)))
        elif st.phase == CHECKING:
            delays.append(2.0)
    return min(delays) if delays else None
