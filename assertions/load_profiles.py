"""Load profiles of the SLO file: how many teams deliver, how often, for how long around a fault.

    load_profiles:
      light:
        teams: {same-source: 3, other-source: 3}   # teams on the faulted app's GitRepository / on their own
        every: 10          # seconds between two commits of one team (its rate is 1/every)
        deadline: 60       # a delivery not Ready in the cluster by then has failed
        baseline: 30       # seconds of load before the injection
        after: 15          # seconds of load after recovery
        api: {users: 10, every: 0.5}   # optional: users listing, watching and patching the API server
        workers: 0         # locust worker processes (0: the users run in one process)

Profiles of the suite name one (`profiles.nightly.load: light`); `--load` picks one, `none`, or a locustfile.
They are validated with the rest of the SLO file (assertions.slo_schema), before any cluster is touched.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from assertions.load_criterion import GROUPS

NONE = "none"
MAX_TEAMS = 200
MAX_WORKERS = 64


@dataclass(frozen=True)
class LoadProfile:
    name: str
    teams: Mapping[str, int] = field(default_factory=lambda: dict.fromkeys(GROUPS, 1))
    every: float = 10.0
    deadline: float = 60.0
    baseline: float = 30.0
    after: float = 15.0
    api_users: int = 0
    api_every: float = 1.0
    workers: int = 0

    @property
    def team_count(self) -> int:
        return sum(self.teams.values())


def build(name: str, raw: Mapping[str, Any]) -> LoadProfile:
    """One profile from its validated mapping (assertions.slo_schema.LoadProfileIn); defaults for what is left out."""
    default = LoadProfile(name)
    teams = raw["teams"]
    api = raw.get("api") or {}
    return LoadProfile(
        name,
        {group: int(teams.get(group, 0)) for group in GROUPS},
        float(raw.get("every", default.every)),
        float(raw.get("deadline", default.deadline)),
        float(raw.get("baseline", default.baseline)),
        float(raw.get("after", default.after)),
        int(api.get("users", 0)),
        float(api.get("every", default.api_every)),
        int(raw.get("workers", 0)),
    )
