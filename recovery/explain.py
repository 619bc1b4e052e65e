"""`resilience explain`: which pattern a failure message matches and what the operator would do, as JSON.

Users need to see why the operator acts (or does not) before trusting it; this is the same matching code
the operator runs, on a message pasted from `kubectl describe`.
"""

from __future__ import annotations

from typing import Any

from fluxmodel import signatures
from recovery.actions import ACTIONS
from recovery.backoff import wait_exponential
from recovery.health import Failure
from recovery.patterns import PatternSet


def explain(kind: str, message: str, patterns: PatternSet, reason: str = "", condition: str = "") -> dict[str, Any]:
    """The explanation of one failure; `matched` False when no pattern matches."""
    failure = Failure(condition or "Ready", reason, message)
    out: dict[str, Any] = {
        "kind": kind,
        "reason": reason or None,
        "subject": failure.subject(kind)[:300],
        "patterns": patterns.source,
        "signatures": [s.name for s in signatures.ALL if kind in s.kinds and s.message.search(message)],
        "failing_objects": [_named(t) for t in signatures.failing_objects(message)],
    }
    if not reason:
        out["note"] = "no --reason given: the patterns' reason filters were not checked"
    match = patterns.match(kind, [failure])
    if match is None:
        out.update(matched=False, checked=len(patterns.patterns))
        return out
    pattern = match.pattern
    index = patterns.patterns.index(pattern)
    action = ACTIONS[pattern.recovery_action]
    wait = wait_exponential(multiplier=pattern.retry_interval)
    out.update(
        matched=True,
        pattern={"index": index, **pattern.to_dict()},
        matched_text=match.matched_text[:300],
        span=list(match.span),
        targets=[_named(t) for t in match.targets],
        action={
            "name": action.name,
            "steps": action.plan(match),
            "max_retries": pattern.max_retries,
            "backoff_seconds": [wait(n) for n in range(1, pattern.max_retries)],
            "validation_required": pattern.validation_required,
            "cleanup_dependencies": pattern.cleanup_dependencies,
            "then": f"after {pattern.max_retries} failed attempt(s): escalate (RecoveryEscalated Event, "
            "gitops.flux.io/recovery-escalated annotation, metric) and stop",
            "skipped_when": [
                "gitops.flux.io/recovery-policy: manual on the object (reported, not acted on)",
                "spec.suspend: true",
                "--dry-run (logged only)",
            ],
        },
    )
    return out


def _named(t: signatures.NamedObject) -> dict[str, str]:
    return {"kind": t.kind, "namespace": t.namespace, "name": t.name, "apiVersion": t.api_version}
