"""Optional server-side dry-run: every rendered object applied with dryRun=All, as Flux would apply it.

The API server is the final judge of what it refuses (admission webhooks, CRD schemas, immutable fields
on the live object, which can differ from the base revision). Objects are applied with server-side apply
under kustomize-controller's field manager, so field ownership matches what Flux will see; nothing is
persisted. A Namespace or CRD created by the same change cannot exist during a dry-run, so objects
needing one are reported as skipped rather than failed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from fluxmodel.immutable import api_group, rule_for_error
from foundation.errors import UserError
from validation.diff import object_key
from validation.findings import DRY_RUN, DRY_RUN_SKIPPED, ERROR, WARNING, Finding
from validation.render import Rendered

FIELD_MANAGER = "kustomize-controller"
_FIELD = re.compile(r"([\w.\[\]]+): (?:Invalid value|Forbidden|Required value|Unsupported value|Duplicate value)")
_NS_NOT_FOUND = re.compile(r'namespaces "([^"]+)" not found')


class Applier(Protocol):
    """Applies one object with dryRun=All; raises kubeapi's ApiError classes (UnknownKind for a missing kind)."""

    def apply(self, obj: dict[str, Any]) -> None: ...


class ClusterApplier:
    """Server-side apply with dryRun=All, under kustomize-controller's field manager."""

    def __init__(self, kubeconfig: Path | None) -> None:
        # Imported here: the kubernetes client takes a while to import and only --server-dry-run needs it.
        from kubeapi import connect

        where = str(kubeconfig) if kubeconfig else os.environ.get("KUBECONFIG") or "~/.kube/config"
        try:
            self._kube = connect(kubeconfig or where)
        except ValueError as e:
            raise UserError(f"{where}: cannot load a cluster from it ({e}); pass a valid --kubeconfig") from None

    def apply(self, obj: dict[str, Any]) -> None:
        self._kube.apply(obj, field_manager=FIELD_MANAGER, dry_run=True)


def dry_run(objects: Sequence[Rendered], applier: Applier, display: Callable[[Path], str]) -> list[Finding]:
    """Apply each distinct object (Namespaces and CRDs first) and turn every refusal into a finding."""
    # Imported here: the Kubernetes client is slow to import and only --server-dry-run needs it.
    from kubeapi.errors import ApiError, TemporaryApiError, UnknownKind

    unique: dict[tuple[str, str, str, str], Rendered] = {}
    for r in objects:
        unique.setdefault(object_key(r.obj), r)
    ordered = sorted(unique.values(), key=lambda r: (_rank(r.obj), object_key(r.obj)))
    namespaces = {k[3] for k in unique if k[:2] == ("", "Namespace")}
    crd_kinds = {_crd_kind(r.obj) for r in ordered if r.obj.get("kind") == "CustomResourceDefinition"}
    findings: list[Finding] = []
    for r in ordered:
        try:
            applier.apply(r.obj)
        except UnknownKind as e:
            if (api_group(str(r.obj.get("apiVersion", ""))), str(r.obj.get("kind", ""))) in crd_kinds:
                findings.append(_skipped(r, display, "its CRD is part of this change"))
            else:
                findings.append(_refused(r, display, "", f"the cluster serves no such kind ({e.message})"))
        except TemporaryApiError as e:
            if e.status == 0:
                raise UserError(f"API server: unreachable during dry-run ({e.message}); is the cluster up?") from None
            findings.append(api_error_finding(r, e.status, _first_line(e.message), display, namespaces))
        except ApiError as e:
            findings.append(api_error_finding(r, e.status, _first_line(e.message), display, namespaces))
    return findings


def api_error_finding(
    r: Rendered, status: int, message: str, display: Callable[[Path], str], new_namespaces: set[str]
) -> Finding:
    """One API refusal as a finding: which rule of the immutable table it is, if any, and the fix."""
    if status == 401:
        raise UserError(f"API server: unauthorized ({message}); pass a --kubeconfig with valid credentials")
    missing_ns = _NS_NOT_FOUND.search(message)
    if status == 404 and missing_ns and missing_ns.group(1) in new_namespaces:
        return _skipped(r, display, f"its namespace {missing_ns.group(1)} is part of this change")
    if status == 403:
        return _skipped(r, display, f"forbidden ({message})")
    match = _FIELD.search(message)
    field = re.sub(r"\[\d+\]", "", match.group(1)) if match else ""
    rule = rule_for_error(str(r.obj.get("kind", "")), message, str(r.obj.get("apiVersion", "")))
    if rule is None:
        return _refused(r, display, field, f"the API server refuses it (HTTP {status}): {message}")
    if not field and rule.fields:
        field = rule.fields[0]
    text = f"the API server refuses it [{rule.id}]: {message}. Why: {rule.why}. Fix: {rule.fix}"
    return _refused(r, display, field, text)


def _skipped(r: Rendered, display: Callable[[Path], str], why: str) -> Finding:
    return Finding.about(
        r.obj,
        file=display(r.file),
        rule=DRY_RUN_SKIPPED,
        severity=WARNING,
        field="",
        message=f"not checked: {why}",
    )


def _refused(r: Rendered, display: Callable[[Path], str], field: str, message: str) -> Finding:
    return Finding.about(r.obj, file=display(r.file), rule=DRY_RUN, severity=ERROR, field=field, message=message)


def _rank(obj: dict[str, Any]) -> int:
    return {"Namespace": 0, "CustomResourceDefinition": 1}.get(str(obj.get("kind", "")), 2)


def _crd_kind(obj: dict[str, Any]) -> tuple[str, str]:
    spec = obj.get("spec") or {}
    return (str(spec.get("group", "")), str((spec.get("names") or {}).get("kind", "")))


def _first_line(message: str) -> str:
    """Some refusals (PVC) append a multi-line diff of the spec: keep the one-line reason."""
    first, _, rest = message.partition("\n")
    return first + (" (the server's spec diff is omitted)" if rest.strip() else "")
