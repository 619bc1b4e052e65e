"""`resilience explain`: which pattern acts on a failure message, when, and what the operator then does.

Users need to see why the operator acts (or does not) before trusting it; this is the same matching code
the operator runs, on a message pasted from `kubectl describe` or `flux get`. A HelmRelease's first message
(`Helm upgrade failed ...`) usually matches nothing by itself: the operator acts once helm-controller has
spent its own remediation retries and says so on the Stalled condition, and the operator matches every
failing condition of an object. So an unmatched Helm failure is matched again together with the Stalled
failure helm-controller writes next; the verdict is `acts-now`, `acts-later` or `no-match` (exit 3 only then).
`flux_knobs` says which Flux knob on the object answers the failure and how the operator defers to it.
"""

from __future__ import annotations

from typing import Any

from fluxmodel import signatures as sig
from fluxmodel.kinds import HELM_RELEASE
from recovery import deference, runbooks
from recovery.actions import ACTIONS
from recovery.backoff import wait_exponential
from recovery.health import Failure
from recovery.patterns import Match, PatternSet

ACTS_NOW, ACTS_LATER, NO_MATCH = "acts-now", "acts-later", "no-match"

# helm-controller gives up on a Helm action (deference.helm_action) once spec.<action>.remediation.retries are
# spent and marks the release Stalled (RetriesExceeded, "Failed to <action> after <n> attempt(s)").
_REMEDIATION = {"upgrade": "rolls back (spec.upgrade.remediation.strategy, default rollback)", "install": "uninstalls"}


def explain(kind: str, message: str, patterns: PatternSet, reason: str = "", condition: str = "") -> dict[str, Any]:
    """The explanation of one failure; `verdict` says whether a pattern acts now, later or never."""
    failure = Failure(condition or "Ready", reason, message)
    out: dict[str, Any] = {
        "kind": kind,
        "reason": reason or None,
        "condition": failure.condition,
        "subject": failure.subject(kind)[:300],
        "patterns": patterns.source,
        "signatures": [s.name for s in sig.ALL if kind in s.kinds and s.message.search(message)],
        "failing_objects": [_named(t) for t in sig.failing_objects(message)],
    }
    out["runbook"] = runbooks.for_failure(kind, out["signatures"])
    if not reason:
        out["note"] = "no --reason given: the patterns' reason filters were not checked"
    match = patterns.match(kind, [failure])
    if match is not None:
        out.update(verdict=ACTS_NOW, matched=True, **_plan(kind, match, patterns, [failure]), when=_when_now(match))
        return out
    out.update(matched=False, checked=len(patterns.patterns))
    later = _later(kind, failure, patterns)
    out["verdict"] = ACTS_LATER if later else NO_MATCH
    if later:
        out["later"] = later
    return out


def _later(kind: str, failure: Failure, patterns: PatternSet) -> dict[str, Any] | None:
    """The pattern that acts once helm-controller stalls on this failure, as the operator would match it."""
    action = deference.helm_action(kind, failure) if kind == HELM_RELEASE.kind else None
    if action is None or sig.HELM_RETRIES_EXHAUSTED.message.search(failure.message):
        return None
    stalled = sig.HELM_RETRIES_EXHAUSTED
    then = Failure(stalled.condition_type, stalled.reasons[0], f"Failed to {action} after 1 attempt(s)")
    match = patterns.match(kind, [failure, then])  # the operator matches every failing condition of the object
    if match is None:
        return None
    shown = then.message.replace(" 1 ", " N ")
    wait = f" and it has failed for {match.pattern.stuck_for:g}s (stuck_for)" if match.pattern.stuck_for else ""
    return {
        "failure": {"condition": then.condition, "status": stalled.status, "reason": then.reason, "message": shown},
        "when": (
            f"when helm-controller marks the {kind} {then.condition}={stalled.status} with reason {then.reason} "
            f"({shown!r}), i.e. once spec.{action}.remediation.retries (default 0) are spent{wait}"
        ),
        "meanwhile": (
            f"helm-controller handles it alone: after each failed {action} it {_REMEDIATION[action]} and retries, "
            f"spec.{action}.remediation.retries times (default 0: the first failure already spends them; a negative "
            "value retries forever and the operator never acts); the operator only records the failure "
            "(stuck_seconds, failure_count metrics)"
        ),
        **_plan(kind, match, patterns, [failure, then]),
    }


def _when_now(match: Match) -> str:
    pattern = match.pattern
    when = "as soon as the object shows this failure for its current generation (Flux has seen the spec)"
    if pattern.stuck_for:
        when += f" and has failed for {pattern.stuck_for:g}s (stuck_for)"
    if pattern.recovery_action == "reconcile_dependents":
        when += ", once every dependsOn dependency is Ready"
    return when


def _plan(kind: str, match: Match, patterns: PatternSet, failures: list[Failure]) -> dict[str, Any]:
    pattern = match.pattern
    action = ACTIONS[pattern.recovery_action]
    wait = wait_exponential(multiplier=pattern.retry_interval)
    return {
        "pattern": {"index": patterns.patterns.index(pattern), **pattern.to_dict()},
        "matched_text": match.matched_text[:300],
        "span": list(match.span),
        "targets": [_named(t) for t in match.targets],
        "flux_knobs": deference.describe(kind, match, failures),
        "action": {
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
                "the object is outside the operator's --selector (not watched)",
            ],
        },
    }


def text(out: dict[str, Any]) -> str:
    """The explanation for people (`--format text`): the same facts as the JSON, a few lines."""
    lines = [out["subject"]]
    if out["signatures"]:
        lines.append(f"Flux signatures: {', '.join(out['signatures'])}")
    if out.get("note"):
        lines.append(f"Note: {out['note']}")
    if out["verdict"] == ACTS_NOW:
        lines.append(f"Acts now: {out['when']}.")
        lines += _text_plan(out)
    elif out["verdict"] == ACTS_LATER:
        later = out["later"]
        lines.append(f"Now: no pattern acts on this message ({out['checked']} checked, from {out['patterns']}).")
        lines.append(f"Acts later: {later['when']}.")
        lines.append(f"Meanwhile: {later['meanwhile']}.")
        lines += _text_plan(later)
    else:
        lines.append(
            f"No pattern acts on this failure ({out['checked']} checked, from {out['patterns']}), now or after "
            "Flux gives up: the operator leaves it to Flux."
        )
    if out.get("runbook"):
        lines.append(f"Runbook: {out['runbook']} (what to check, what the operator did, the manual fix)")
    return "\n".join(lines) + "\n"


def _text_plan(plan: dict[str, Any]) -> list[str]:
    pattern, action = plan["pattern"], plan["action"]
    backoff = ", ".join(f"{s:g}s" for s in action["backoff_seconds"]) or "none"
    lines = [
        f"Pattern: {pattern['name']} (#{pattern['index']}), matched {plan['matched_text']!r}",
        f"Action: {action['name']}, up to {action['max_retries']} attempt(s), backoff {backoff}",
    ]
    lines += [f"  - {step}" for step in action["steps"]]
    if plan["targets"]:
        lines.append("Targets: " + ", ".join(f"{t['kind']}/{t['namespace']}/{t['name']}" for t in plan["targets"]))
    knobs = plan["flux_knobs"]
    flux = f" ({knobs['flux']})" if knobs.get("flux") else ""
    lines.append(f"Flux knobs: {knobs['knobs']}{flux}; the operator {knobs['operator']}.")
    lines.append(f"Then: {action['then']}.")
    lines.append(f"Skipped when: {'; '.join(action['skipped_when'])}.")
    return lines


def _named(t: sig.NamedObject) -> dict[str, str]:
    return {"kind": t.kind, "namespace": t.namespace, "name": t.name, "apiVersion": t.api_version}
