"""The criteria the one judge weighs beside time-to-recover (see assertions.criterion). Add one here."""

from __future__ import annotations

from assertions.alert_criterion import AlertCoverage
from assertions.criterion import Criterion
from assertions.load_criterion import LoadCriterion
from assertions.reached import Reached

CRITERIA: tuple[Criterion, ...] = (Reached(), AlertCoverage(), LoadCriterion())


def by_key() -> dict[str, Criterion]:
    return {c.key: c for c in CRITERIA}
