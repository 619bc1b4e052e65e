"""A stage's checks on a revision: validation checks before it applies, health checks after.

`build-success` renders the stage's Kustomization path at the revision with `resilience validate`'s renderer
(validation.render); `compatibility-check` sends what would be applied to the API server as a server-side dry
run under kustomize-controller's field manager (validation.dryrun) and runs the immutable-field rules
(fluxmodel.immutable) against the live objects. Both cover the stage and every stage after it, so a change
that would stall production stops at the first gate, before any stage applied it. Health checks look at what
the stage's Kustomization applied: `kustomization-ready` (Ready at the revision) and `pod-ready` (every workload
in its inventory runs the current spec with all replicas ready).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

from ctlruntime.api import KubeApi
from fluxmodel.conditions import is_ready, last_applied_revision, last_attempted_revision, workload_ready
from fluxmodel.immutable import immutable_changes
from fluxmodel.inventory import entries
from fluxmodel.kinds import ObjectRef
from fluxmodel.staged import (
    BUILD_SUCCESS,
    COMPATIBILITY_CHECK,
    KUSTOMIZATION_READY,
    POD_READY,
    Stage,
    StagedSpec,
    short,
)
from foundation.errors import UserError
from kubeapi import ApiError, UnknownKind
from staging.content import ArtifactError, Artifacts
from staging.status import CheckResult
from validation.dryrun import FIELD_MANAGER, dry_run
from validation.findings import ERROR
from validation.render import Kustomize, Rendered
from validation.tree import KUSTOMIZATION_FILES, raw_objects

# Kinds without a namespace: Flux's targetNamespace leaves them alone.
CLUSTER_SCOPED = frozenset(
    {
        "Namespace",
        "CustomResourceDefinition",
        "ClusterRole",
        "ClusterRoleBinding",
        "PersistentVolume",
        "StorageClass",
        "PriorityClass",
        "IngressClass",
        "RuntimeClass",
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "APIService",
    }
)
MESSAGE_LIMIT = 600
DRY_RUN_WORKERS = 8  # API requests in flight for one compatibility-check


class DryRunApplier:
    """validation.dryrun's Applier on the controller's own client (or one impersonating kustomize-controller)."""

    def __init__(self, kube: KubeApi):
        self.kube = kube

    def apply(self, obj: dict[str, Any]) -> None:
        self.kube.apply(obj, field_manager=FIELD_MANAGER, dry_run=True)


class StageChecks:
    """pipeline.Checks for one StagedKustomization, against the live cluster."""

    def __init__(
        self,
        spec: StagedSpec,
        kube: KubeApi,
        artifacts: Artifacts,
        sources: Callable[[], Iterable[dict[str, Any]]],
        kustomization: Callable[[ObjectRef], dict[str, Any] | None],
        kustomize: Kustomize | None = None,
        dry_run_kube: KubeApi | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self.spec, self.kube, self.artifacts = spec, kube, artifacts
        self.sources, self.kustomization = sources, kustomization
        self.kustomize = kustomize or Kustomize(jobs=1)
        self.dry_run_kube = dry_run_kube or kube
        self.clock = clock

    # -- validation ----------------------------------------------------------------------------------------
    def validate(self, stage: Stage, revision: str) -> list[CheckResult]:
        if not stage.validation_checks:
            return []
        now = self.clock()
        try:
            tree = self.artifacts.tree(revision, self.sources())
        except (ArtifactError, OSError) as e:
            return [
                CheckResult(t, None, f"artifact of {short(revision)} unusable, retrying: {e}", now)
                for t in stage.validation_checks
            ]
        if tree is None:
            why = f"waiting for a source artifact of {short(revision)}"
            return [CheckResult(t, None, why, now) for t in stage.validation_checks]
        targets = [stage, *self.spec.downstream(stage.name)]
        rendered, broken = self._render(targets, tree)
        out = []
        if BUILD_SUCCESS in stage.validation_checks:
            ok_text = f"{len(targets)} stage path(s) build at {short(revision)}: {len(rendered)} object(s)"
            out.append(CheckResult(BUILD_SUCCESS, not broken, "; ".join(broken)[:MESSAGE_LIMIT] or ok_text, now))
        if COMPATIBILITY_CHECK in stage.validation_checks:
            if broken:
                out.append(CheckResult(COMPATIBILITY_CHECK, False, "not checked: the build fails", now))
            else:
                out.append(self._compatible(rendered, tree, revision, now))
        return out

    def _render(self, stages: list[Stage], tree: Path) -> tuple[list[Rendered], list[str]]:
        """Every stage's objects as its Kustomization would apply them, and what keeps a stage from building.
        All roots go to kustomize in one batch (validate's renderer): stages of one path build once."""
        roots: dict[str, tuple[Path, str | None, str]] = {}
        broken: list[str] = []
        for stage in stages:
            spec = (self.kustomization(stage.kustomization) or {}).get("spec") or {}
            rel = str(spec.get("path") or ".")
            root = Path(os.path.normpath(tree / rel.lstrip("/")))
            if tree not in (root, *root.parents) or not root.is_dir():
                broken.append(f"stage {stage.name}: path {rel} is not a directory of the repository")
                continue
            if not any((root / name).is_file() for name in KUSTOMIZATION_FILES):
                _generate_kustomization(root)
            roots[stage.name] = (root, spec.get("targetNamespace"), rel)
        try:
            built = self.kustomize.build(sorted({root for root, _, _ in roots.values()}))
        except UserError as e:
            return [], [*broken, str(e)]
        rendered: list[Rendered] = []
        for name, (root, target, rel) in roots.items():
            result = built[root]
            if result.error:
                broken.append(f"stage {name}: path {rel}: kustomize build fails: {result.error}")
            else:
                rendered += [Rendered(_namespaced(r.obj, target), r.file, r.unit) for r in result.objects]
        return rendered, broken

    def _compatible(self, rendered: list[Rendered], tree: Path, revision: str, now: float) -> CheckResult:
        """validation.dryrun on slices of the objects in parallel (each slice with every Namespace and CRD, so an
        object whose namespace the change creates is still skipped, not failed), and the immutable rules."""
        workers = max(1, min(DRY_RUN_WORKERS, len(rendered) // 4))
        first = [r for r in rendered if r.obj.get("kind") in ("Namespace", "CustomResourceDefinition")]
        rest = [r for r in rendered if r not in first]
        slices = [first + rest[i::workers] for i in range(workers)]
        applier = DryRunApplier(self.dry_run_kube)
        try:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                findings = [
                    f
                    for part in pool.map(lambda s: dry_run(s, applier, lambda p: _relative(p, tree)), slices)
                    for f in part
                ]
                changes = [c for part in pool.map(self._immutable, [r.obj for r in rendered]) for c in part]
        except UserError as e:
            return CheckResult(COMPATIBILITY_CHECK, None, f"dry run not possible now, retrying: {e}", now)
        errors = dict.fromkeys(f for f in findings if f.severity == ERROR)
        problems = [f"{f.kind}/{f.namespace}/{f.name}: {f.message}" for f in errors] + changes
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            return CheckResult(COMPATIBILITY_CHECK, False, (problems[0] + more)[:MESSAGE_LIMIT], now)
        text = (
            f"{len(rendered)} object(s) at {short(revision)} accepted by the API server's dry run; no immutable change"
        )
        return CheckResult(COMPATIBILITY_CHECK, True, text, now)

    def _immutable(self, obj: dict[str, Any]) -> list[str]:
        meta = obj.get("metadata") or {}
        try:
            live = self.dry_run_kube.get(
                str(obj.get("apiVersion")), str(obj.get("kind")), str(meta.get("name")), meta.get("namespace")
            )
        except UnknownKind:
            return []
        except ApiError:
            return []  # the dry run has reported what the server refuses
        if live is None:
            return []
        ref = f"{obj.get('kind')}/{meta.get('namespace') or '-'}/{meta.get('name')}"
        return [f"{ref}: {change.message}" for change in immutable_changes(live, obj)]

    # -- health --------------------------------------------------------------------------------------------
    def health(self, stage: Stage, revision: str, kustomization: dict[str, Any] | None) -> list[CheckResult]:
        now = self.clock()
        ks = kustomization or {}
        out = []
        for check in stage.health_checks:
            if check.type == KUSTOMIZATION_READY:
                applied = last_applied_revision(ks)
                ok = is_ready(ks) and applied == revision
                out.append(CheckResult(check.type, ok, f"Ready at {short(applied)}" if ok else _not_ready(ks), now))
            elif check.type == POD_READY:
                out.append(self._pods(ks, revision, now))
        return out

    def _pods(self, ks: dict[str, Any], revision: str, now: float) -> CheckResult:
        if last_attempted_revision(ks) != revision:
            return CheckResult(POD_READY, False, f"the Kustomization has not attempted {short(revision)} yet", now)
        waiting, count = [], 0
        for entry in entries(ks):
            if entry.ref.kind not in ("Deployment", "StatefulSet", "DaemonSet", "Pod"):
                continue
            count += 1
            obj = self.kube.get(entry.api_version, entry.ref.kind, entry.ref.name, entry.ref.namespace or None)
            if not workload_ready(obj):
                waiting.append(f"{entry.ref.kind}/{entry.ref.namespace}/{entry.ref.name}")
        if waiting:
            return CheckResult(POD_READY, False, f"not ready: {', '.join(waiting[:5])}", now)
        return CheckResult(POD_READY, True, f"{count} workload(s) ready", now)


def _not_ready(ks: dict[str, Any]) -> str:
    ready = (ks.get("status") or {}).get("conditions") or []
    cond = next((c for c in ready if c.get("type") == "Ready"), None)
    if cond is None:
        return "the Kustomization reports no Ready condition yet"
    return f"Ready={cond.get('status')} {cond.get('reason')}: {str(cond.get('message'))[:300]}"


def _namespaced(obj: dict[str, Any], target: str | None) -> dict[str, Any]:
    """The object as Flux applies it with spec.targetNamespace (namespaced kinds only)."""
    if not target or obj.get("kind") in CLUSTER_SCOPED:
        return obj
    return {**obj, "metadata": {**(obj.get("metadata") or {}), "namespace": target}}


def _generate_kustomization(root: Path) -> None:
    """What Flux does for a path without a kustomization: every manifest below it (a directory holding a
    kustomization is included as one)."""
    resources: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        directory = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        if directory != root and any(name in filenames for name in KUSTOMIZATION_FILES):
            resources.append(os.path.relpath(directory, root))
            dirnames[:] = []
            continue
        for name in sorted(filenames):
            path = directory / name
            if path.suffix in (".yaml", ".yml") and raw_objects(path, strict=False):
                resources.append(os.path.relpath(path, root))
    body = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": resources}
    (root / KUSTOMIZATION_FILES[0]).write_text(yaml.safe_dump(body), encoding="utf-8")


def _relative(path: Path, tree: Path) -> str:
    try:
        return path.relative_to(tree).as_posix()
    except ValueError:
        return path.name
