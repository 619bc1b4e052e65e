"""Composable steady-state checks, in the style of tenacity's strategies.

    steady = kustomization_ready(ns, "web", revision=rev) & deployment_available("web-ns", "web")
    ok, detail = steady(reader)

A check reads objects through a Reader (the live API, or the watch cache that timestamps phases), so the same
expression decides "steady before injection" and "recovered after it".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from fluxmodel.conditions import (
    condition,
    is_ready,
    is_stalled,
    last_applied_revision,
    observed_current,
)
from fluxmodel.conditions import (
    deployment_available as _deployment_available,
)
from fluxmodel.kinds import HELM_RELEASE, KUSTOMIZATION
from fluxmodel.signatures import rolled_back


class Reader(Protocol):
    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None: ...


Outcome = tuple[bool, str]


@dataclass(frozen=True)
class Check:
    """A named predicate over a Reader; `&` combines checks (all must hold), `|` alternatives (one must)."""

    name: str
    fn: Callable[[Reader], Outcome]

    def __call__(self, reader: Reader) -> Outcome:
        return self.fn(reader)

    def __and__(self, other: Check) -> Check:
        def both(reader: Reader) -> Outcome:
            for check in (self, other):
                ok, detail = check(reader)
                if not ok:
                    return False, detail
            return True, f"{self.name} & {other.name}"

        return Check(f"{self.name} & {other.name}", both)

    def __or__(self, other: Check) -> Check:
        def either(reader: Reader) -> Outcome:
            ok, detail = self(reader)
            if ok:
                return True, detail
            ok, other_detail = other(reader)
            return (True, other_detail) if ok else (False, f"{detail}; nor {other_detail}")

        return Check(f"({self.name}) | ({other.name})", either)


def always() -> Check:
    return Check("always", lambda _r: (True, "nothing to check"))


@dataclass(frozen=True)
class AtLeast:
    """A Git revision or any later one that includes it (`includes(applied, wanted)`): other teams' commits on
    top of a run's head (under load) are delivered with it, so Flux applies their revision, not the run's."""

    revision: str | Callable[[], str]
    includes: Callable[[str, str], bool]

    def wanted(self) -> str:
        return self.revision() if callable(self.revision) else self.revision


Revision = str | Callable[[], str] | AtLeast | None


def _flux_ready(kind: str, api_version: str, namespace: str, name: str, revision: Revision) -> Check:
    label = f"{kind} {namespace}/{name} Ready" + (" at the expected revision" if revision else "")

    def check(reader: Reader) -> Outcome:
        obj = reader.get(api_version, kind, name, namespace)
        if obj is None:
            return False, f"{kind} {namespace}/{name} does not exist"
        if not is_ready(obj) or is_stalled(obj):
            ready = condition(obj, "Ready")
            return False, f"{kind} {namespace}/{name} not Ready: {ready.reason if ready else 'no status'}"
        applied = last_applied_revision(obj)
        if isinstance(revision, AtLeast):
            wanted = revision.wanted()
            if applied != wanted and (applied is None or not revision.includes(applied, wanted)):
                return False, f"{kind} {namespace}/{name} at {applied}, want {wanted} or later"
            return True, label
        want = revision() if callable(revision) else revision
        if want is not None and applied != want:
            return False, f"{kind} {namespace}/{name} at {applied}, want {want}"
        return True, label

    return Check(label, check)


def kustomization_ready(namespace: str, name: str, revision: Revision = None) -> Check:
    """Ready=True for the current generation (and at `revision`, Flux's `main@sha1:...`, if given).

    `revision` may be a callable, read at every check: the Git head after commits still to come; AtLeast also
    accepts a later revision that includes it.
    """
    return _flux_ready(KUSTOMIZATION.kind, KUSTOMIZATION.api_version, namespace, name, revision)


def helmrelease_ready(namespace: str, name: str, chart_version: Revision = None) -> Check:
    """Ready=True, not Stalled (and the latest release at `chart_version`, if given)."""
    return _flux_ready(HELM_RELEASE.kind, HELM_RELEASE.api_version, namespace, name, chart_version)


def helmrelease_reporting(
    namespace: str, name: str, chart_version: Revision = None, last_good: str | None = None
) -> Check:
    """Flux tells the truth about the release: Ready=True (at `chart_version`, if given), or (with `last_good`) its
    remediation rolled a failed upgrade back to `last_good` and says so."""
    ready = helmrelease_ready(namespace, name, chart_version)
    return ready if last_good is None else ready | helmrelease_rolled_back(namespace, name, last_good)


def helmrelease_rolled_back(namespace: str, name: str, last_good: str) -> Check:
    """The release's remediation rolled a failed upgrade back to `last_good` and says so: Ready=False or
    Remediated=True with reason RollbackSucceeded, for the current spec."""
    who = f"HelmRelease {namespace}/{name}"

    def check(reader: Reader) -> Outcome:
        obj = reader.get(HELM_RELEASE.api_version, HELM_RELEASE.kind, name, namespace)
        if obj is None or not observed_current(obj) or not rolled_back(obj):
            return False, f"{who} not rolled back by its remediation"
        deployed = last_applied_revision(obj)
        if deployed != last_good:
            return False, f"{who} rolled back to {deployed}, want {last_good}"
        return True, f"{who} rolled back to {last_good} and says so"

    return Check(f"{who} rolled back to {last_good} and saying so", check)


def spec_matches(
    api_version: str, kind: str, namespace: str, name: str, what: str, good: Callable[[Any], bool]
) -> Check:
    """The object exists and `good` holds for it: a workload at the spec of a good revision (`what` says which, as
    "at ...")."""
    label = f"{kind} {namespace}/{name} {what}"

    def check(reader: Reader) -> Outcome:
        obj = reader.get(api_version, kind, name, namespace)
        if obj is None:
            return False, f"{kind} {namespace}/{name} missing"
        return (True, label) if good(obj) else (False, f"{kind} {namespace}/{name} not {what}")

    return Check(label, check)


def deployment_available(namespace: str, name: str) -> Check:
    label = f"Deployment {namespace}/{name} Available"

    def check(reader: Reader) -> Outcome:
        obj = reader.get("apps/v1", "Deployment", name, namespace)
        if _deployment_available(obj):
            return True, label
        return (
            False,
            f"Deployment {namespace}/{name} not Available" if obj else f"Deployment {namespace}/{name} missing",
        )

    return Check(label, check)


def statefulset_ready(namespace: str, name: str) -> Check:
    label = f"StatefulSet {namespace}/{name} Ready"

    def check(reader: Reader) -> Outcome:
        obj = reader.get("apps/v1", "StatefulSet", name, namespace) or {}
        want = int((obj.get("spec") or {}).get("replicas", 1))
        status = obj.get("status") or {}
        ok = (
            bool(obj)
            and int(status.get("readyReplicas") or 0) == want
            and int(status.get("updatedReplicas") or 0) == want
        )
        return ok, label if ok else f"StatefulSet {namespace}/{name} not ready"

    return Check(label, check)


def exists(api_version: str, kind: str, namespace: str | None, name: str) -> Check:
    label = f"{kind} {namespace}/{name} exists"
    return Check(label, lambda r: (r.get(api_version, kind, name, namespace) is not None, label))
