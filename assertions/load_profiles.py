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
They are read with the rest of the SLO file, before any cluster is touched.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from assertions.load_criterion import GROUPS
from foundation.errors import UserError

NONE = "none"
KEYS: tuple[str, ...] = ("teams", "every", "deadline", "baseline", "after", "api", "workers")
MAX_TEAMS = 200
MAX_WORKERS = 64

Fail = Callable[[str, str], UserError]


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


def _seconds(value: Any, where: str, fail: Fail, zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        ok = False
    else:
        ok = value >= 0 if zero else value > 0
    if not ok:
        raise fail(where, f"expected a finite number of seconds {'>= 0' if zero else '> 0'}, got {value!r}")
    return float(value)


def _whole(value: Any, where: str, fail: Fail, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise fail(where, f"expected a whole number from {low} to {high}, got {value!r}")
    return value


def _mapping(value: Any, where: str, fail: Fail, allowed: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise fail(where, f"expected a mapping, got {value!r}")
    for key in value:
        if key not in allowed:
            raise fail(f"{where}.{key}", f"unknown key (expected {', '.join(allowed)})")
    return value


def parse_profile(name: str, raw: Any, where: str, fail: Fail) -> LoadProfile:
    """One profile; `fail(key path, problem)` makes the error (naming the SLO file)."""
    if name == NONE:
        raise fail(where, f"{NONE!r} means no load and cannot be defined")
    body = _mapping(raw, where, fail, KEYS)
    if "teams" not in body:
        raise fail(where, f"missing teams (a mapping of {', '.join(GROUPS)} to a number of teams)")
    teams = _mapping(body["teams"], f"{where}.teams", fail, GROUPS)
    counts = {g: _whole(teams.get(g, 0), f"{where}.teams.{g}", fail, 0, MAX_TEAMS) for g in GROUPS}
    if not sum(counts.values()):
        raise fail(f"{where}.teams", "no teams: name at least one team in a group")
    default = LoadProfile(name)
    api = _mapping(body.get("api") or {}, f"{where}.api", fail, ("users", "every"))
    if api and "users" not in api:
        raise fail(f"{where}.api", "missing users (how many users press on the API server)")
    return LoadProfile(
        name,
        counts,
        _seconds(body.get("every", default.every), f"{where}.every", fail),
        _seconds(body.get("deadline", default.deadline), f"{where}.deadline", fail),
        _seconds(body.get("baseline", default.baseline), f"{where}.baseline", fail),
        _seconds(body.get("after", default.after), f"{where}.after", fail, zero=True),
        _whole(api.get("users", 0), f"{where}.api.users", fail, 1, MAX_TEAMS) if api else 0,
        _seconds(api.get("every", default.api_every), f"{where}.api.every", fail),
        _whole(body.get("workers", 0), f"{where}.workers", fail, 0, MAX_WORKERS),
    )


def parse(raw: Any, fail: Fail) -> dict[str, LoadProfile]:
    """Every profile under `load_profiles`."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise fail("load_profiles", f"expected a mapping of profile name -> settings, got {raw!r}")
    return {str(n): parse_profile(str(n), body, f"load_profiles.{n}", fail) for n, body in raw.items()}
