"""What `resilience validate` reports: the Finding model and its text and JSON renderings.

Findings are data, so the pre-commit hook prints them, CI reads them as JSON, and tests compare them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

ERROR: Final = "error"
WARNING: Final = "warning"

# Rule ids of the checks this package adds to the immutable-field table's ids.
BUILD: Final = "kustomize-build"
REMOTE: Final = "remote-base"
OUTSIDE: Final = "outside-repository"
CYCLE: Final = "flux-dependson-cycle"
MISSING_DEP: Final = "flux-dependson-missing"
BASE_UNRENDERED: Final = "base-not-rendered"
DRY_RUN: Final = "server-dry-run"
DRY_RUN_SKIPPED: Final = "server-dry-run-skipped"
# StagedKustomizations: `staged-` + fluxmodel.staged's problem codes, and a stage whose Kustomization is not here.
STAGED_PREFIX: Final = "staged-"
STAGED_MISSING: Final = "staged-kustomization-missing"


@dataclass(frozen=True, order=True)
class Finding:
    """One problem: which rule, how bad, where (file and object) and a message with the why and the fix."""

    file: str
    rule: str
    severity: str
    api_version: str = ""
    kind: str = ""
    namespace: str = ""
    name: str = ""
    field: str = ""
    message: str = ""

    @classmethod
    def about(cls, obj: Mapping[str, Any], *, file: str, rule: str, severity: str, field: str, message: str) -> Finding:
        """A finding about one object, its identity taken from the manifest."""
        meta = obj.get("metadata") or {}
        return cls(
            file=file,
            rule=rule,
            severity=severity,
            api_version=str(obj.get("apiVersion", "")),
            kind=str(obj.get("kind", "")),
            namespace=str(meta.get("namespace") or ""),
            name=str(meta.get("name") or ""),
            field=field,
            message=message,
        )

    def to_json(self) -> dict[str, str]:
        data = asdict(self)
        return {
            "rule": data["rule"],
            "severity": data["severity"],
            "file": data["file"],
            "apiVersion": data["api_version"],
            "kind": data["kind"],
            "namespace": data["namespace"],
            "name": data["name"],
            "field": data["field"],
            "message": data["message"],
        }

    def to_text(self) -> str:
        what = " ".join(
            p
            for p in (
                self.kind,
                f"{self.namespace}/{self.name}" if self.namespace else self.name,
                self.field,
            )
            if p
        )
        where = f" {what}:" if what else ""
        return f"{self.file}: {self.severity} [{self.rule}]{where} {self.message}"


def display_path(path: Path, cwd: Path | None = None) -> str:
    """A path relative to the current directory when it is below it, else absolute; always printable."""
    here = (cwd or Path.cwd()).resolve()
    target = _resolved(path)
    try:
        shown = target.relative_to(here).as_posix() or "."
    except ValueError:
        rel = os.path.relpath(target, here)
        shown = rel if not rel.startswith("../../..") else target.as_posix()
    # A name that is not UTF-8 holds surrogate escapes, which a strict stdout or a JSON reader refuses.
    return shown.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _resolved(path: Path) -> Path:
    """The path with the symlinks of its directories resolved, not its own: a link is named as the user has it."""
    try:
        return path.parent.resolve() / path.name if path.name else path.resolve()
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop (Python < 3.13)
        return path.absolute()


def has_errors(findings: Iterable[Finding]) -> bool:
    return any(f.severity == ERROR for f in findings)


def render_json(findings: Iterable[Finding]) -> str:
    return json.dumps([f.to_json() for f in findings], indent=2)


def render_text(findings: list[Finding], summary: str) -> str:
    errors = sum(1 for f in findings if f.severity == ERROR)
    warnings = len(findings) - errors
    lines = [f.to_text() for f in findings]
    verdict = "FAILED" if errors else "passed"
    lines.append(f"validate {verdict}: {errors} error(s), {warnings} warning(s); {summary}")
    return "\n".join(lines)
