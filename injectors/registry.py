"""The fault catalog: every fault by name, grouped by family. Names are what SLO files and reports use."""

from __future__ import annotations

from foundation.errors import UserError
from injectors.base import Fault
from injectors.controlplane import HelmControllerCrash, KustomizeControllerCrash, SourceOutage
from injectors.dependency import DependencyChainBlocked, DependencyCycle, HelmDependencyCycle
from injectors.helm import HelmRetriesExhausted, HelmUpgradeBroken, HelmUpgradeUnready
from injectors.immutable import JobTemplate, ServiceClusterIP, StatefulSetClaims
from injectors.rollout import UnhealthyRollout
from injectors.selector import CommonLabelsPropagation, LabelsIncludeSelectors, SelectorChange
from injectors.staged import (
    StagedControllerKill,
    StagedGoodChange,
    StagedQuickCommits,
    StagedSelectorChange,
    StagedUnhealthyRollout,
)

CATALOG: tuple[Fault, ...] = (
    SelectorChange(),
    CommonLabelsPropagation(),
    LabelsIncludeSelectors(),
    ServiceClusterIP(),
    JobTemplate(),
    StatefulSetClaims(),
    HelmUpgradeBroken(),
    HelmUpgradeUnready(),
    HelmRetriesExhausted(),
    DependencyCycle(),
    HelmDependencyCycle(),
    DependencyChainBlocked(),
    KustomizeControllerCrash(),
    HelmControllerCrash(),
    SourceOutage(),
    UnhealthyRollout(),
    StagedSelectorChange(),
    StagedUnhealthyRollout(),
    StagedGoodChange(),
    StagedControllerKill(),
    StagedQuickCommits(),
)
FAULTS: dict[str, Fault] = {f.name: f for f in CATALOG}


def fault(name: str) -> Fault:
    try:
        return FAULTS[name]
    except KeyError:
        raise UserError(f"unknown fault {name!r}; the catalog has: {', '.join(FAULTS)}") from None


def families() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for f in CATALOG:
        out.setdefault(f.family, []).append(f.name)
    return out
