"""What the load process is told (a JSON file beside its outputs): the cluster, the teams, the pace.

Everything a user needs is in it, so a worker on another machine runs from the same file (with the cluster's
kubeconfig and repository reachable at the same paths).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadgen.teams import Team

# The load process's files in its output directory (spec.json is this file), and its exit code for a bad
# locustfile: what the harness and the process (loadgen.locustrun) agree on, without the harness importing locust.
REQUESTS = "requests.jsonl"
STATE = "state.json"
CSV_PREFIX = "locust"
HTML = "locust-report.html"
PROCESS = "process.json"
CHECK_EXIT = 2


@dataclass(frozen=True)
class LoadSpec:
    kubeconfig: str
    context: str | None
    git: dict[str, str]  # bare, work, url: clusters.gitops.GitOpsRepo
    flux_namespace: str
    namespace: str  # the teams' namespace (the API-pressure users' ConfigMaps go there too)
    teams: list[Team]
    every: float
    deadline: float
    api_users: int = 0
    api_every: float = 1.0
    locustfile: str | None = None
    out: str = "."
    env: dict[str, str] = field(default_factory=dict)  # for a user's locustfile: where the faulted app is

    def to_json(self) -> dict[str, Any]:
        body = dict(self.__dict__)
        body["teams"] = [t.to_json() for t in self.teams]
        return body

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> LoadSpec:
        return cls(**{**raw, "teams": [Team.from_json(t) for t in raw["teams"]]})

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        return path

    @classmethod
    def read(cls, path: Path) -> LoadSpec:
        return cls.from_json(json.loads(path.read_text()))
