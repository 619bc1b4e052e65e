"""Decisions: policy, retries per object/action/target, backoff, waiting for Flux, escalation once."""

from __future__ import annotations

from typing import Any

from fluxmodel.kinds import ObjectRef
from recovery import engine
from recovery.backoff import wait_exponential, wait_fixed
from recovery.defaults import default_patterns
from recovery.health import Health, observe
from recovery.state import ObjectState

SELECTOR = (
    'Deployment/shop/web dry-run failed (Invalid): Deployment.apps "web" is invalid: spec.selector: Invalid value: '
    '{"matchLabels":{"app":"web","tier":"x"}}: field is immutable'
)
NOW = 1_000_000.0
REF = ObjectRef("Kustomization", "flux-system", "shop")


def kustomization(
    ready: str = "False",
    reason: str = "ReconciliationFailed",
    message: str = SELECTOR,
    *,
    generation: int = 1,
    observed: int = 1,
    suspend: bool = False,
    annotations: dict[str, str] | None = None,
    handled: str | None = None,
) -> dict[str, Any]:
    status: dict[str, Any] = {
        "conditions": [
            {
                "type": "Ready",
                "status": ready,
                "reason": reason,
                "message": message,
                "observedGeneration": observed,
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            }
        ],
        "observedGeneration": observed if ready == "True" else 0,
        "lastAppliedRevision": "main@sha1:" + "a" * 40,
        "lastAttemptedRevision": "main@sha1:" + "b" * 40,
    }
    if handled:
        status["lastHandledReconcileAt"] = handled
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {
            "name": "shop",
            "namespace": "flux-system",
            "generation": generation,
            "annotations": annotations or {},
        },
        "spec": {"suspend": suspend},
        "status": status,
    }


def health(obj: dict[str, Any], since: float = NOW - 60) -> Health:
    h = observe(obj, None, NOW)
    return Health(**{**h.__dict__, "since": since})


def decide(obj: dict[str, Any], state: ObjectState | None = None, **kwargs: Any) -> engine.Decision:
    return engine.decide(health(obj), default_patterns(), state or ObjectState(REF), NOW, **kwargs)


def test_a_matching_failure_is_acted_on_at_once() -> None:
    d = decide(kustomization())
    assert (d.verdict, d.action, d.pattern, d.attempt) == (engine.ACT, "recreate_deployment", "selector-immutable", 1)
    assert d.key == "recreate_deployment|Deployment/shop/web"


def test_healthy_progressing_suspended_and_unmatched_objects_are_left_alone() -> None:
    assert decide(kustomization("True", "ReconciliationSucceeded", "Applied")).verdict == engine.NONE
    assert decide(kustomization("Unknown", "Progressing", "Reconciliation in progress")).verdict == engine.NONE
    assert decide(kustomization(suspend=True)).why.startswith("suspended")
    assert decide(kustomization(message="kustomize build failed")).why == "no pattern matches"


def test_conditions_of_an_older_generation_are_not_acted_on() -> None:
    """The spec changed and Flux has not looked yet: the failure may already be fixed."""
    assert decide(kustomization(generation=3, observed=2)).verdict == engine.NONE


def test_manual_policy_is_reported_not_acted_on() -> None:
    obj = kustomization(annotations={"gitops.flux.io/recovery-policy": "manual"})
    assert engine.policy_is_manual(obj)
    d = decide(obj, manual=engine.policy_is_manual(obj))
    assert d.verdict == engine.MANUAL and d.action == "recreate_deployment"
    assert not engine.policy_is_manual(kustomization(annotations={"gitops.flux.io/recovery-policy": "auto"}))


def test_retries_are_counted_per_object_action_and_target_then_escalated_once() -> None:
    state = ObjectState(REF, attempts={"recreate_deployment|Deployment/shop/web": 3})
    d = decide(kustomization(), state)
    assert d.verdict == engine.ESCALATE and "3 of 3" in d.why
    state.escalated = d.key
    assert decide(kustomization(), state).verdict == engine.NONE
    other = SELECTOR.replace("Deployment/shop/web", "Deployment/shop/api").replace('"web"', '"api"')
    assert decide(kustomization(message=other), state).verdict == engine.ACT  # another object, its own count


def test_attempts_back_off_exponentially() -> None:
    key = "recreate_deployment|Deployment/shop/web"
    state = ObjectState(REF, attempts={key: 2}, last_action_at={key: NOW - 3})
    d = decide(kustomization(), state)
    assert d.verdict == engine.WAIT and d.retry_at == NOW - 3 + 10  # 5s * 2**(2-1)
    state.last_action_at[key] = NOW - 11
    assert decide(kustomization(), state).attempt == 3


def test_flux_must_handle_the_last_request_before_the_next_attempt() -> None:
    key = "recreate_deployment|Deployment/shop/web"
    state = ObjectState(
        REF, attempts={key: 1}, last_action_at={key: NOW - 100}, awaiting={"token": "t1", "since": NOW - 5}
    )
    d = decide(kustomization(handled="t0"), state)
    assert d.verdict == engine.WAIT and d.retry_at == NOW - 5 + engine.SETTLE_SECONDS
    assert decide(kustomization(handled="t1"), state).verdict == engine.ACT
    state.awaiting = {"token": "t1", "since": NOW - engine.SETTLE_SECONDS - 1}
    assert decide(kustomization(handled="t0"), state).verdict == engine.ACT  # Flux never answered: judge anyway


def test_awaiting_a_generation_or_a_revision() -> None:
    h = health(kustomization(generation=4, observed=4))
    assert engine.awaiting_satisfied({"generation": 3}, h)
    assert not engine.awaiting_satisfied({"generation": 4}, h)
    assert engine.awaiting_satisfied({"revision": "main@sha1:" + "b" * 40}, h)
    assert not engine.awaiting_satisfied({"revision": "main@sha1:" + "c" * 40}, h)


def test_blocked_dependents_wait_for_their_dependencies_without_spending_retries() -> None:
    obj = kustomization(reason="DependencyNotReady", message="dependency 'flux-system/root' is not ready")
    d = decide(obj, dependencies_ready=False)
    assert d.verdict == engine.NONE and d.action == "reconcile_dependents"
    assert decide(obj, dependencies_ready=True).verdict == engine.ACT


def test_stuck_for_delays_the_first_attempt() -> None:
    from recovery.patterns import parse

    patterns = parse("patterns: [{error_pattern: immutable, recovery_action: escalate, stuck_for: 5m}]", "t")
    d = engine.decide(health(kustomization(), since=NOW - 60), patterns, ObjectState(REF), NOW)
    assert d.verdict == engine.WAIT and d.retry_at == NOW - 60 + 300


def test_wait_strategies_compose_like_tenacity() -> None:
    wait = wait_exponential(multiplier=2, maximum=20) + wait_fixed(1)
    assert [wait(n) for n in range(6)] == [0, 3, 5, 9, 17, 21]
