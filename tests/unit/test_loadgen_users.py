"""The locust users themselves, in a process of their own (locust monkey-patches its importer with gevent): teams
commit at a steady rate whether or not Flux keeps up (open loop), every delivery becomes one locust request event,
done ones timed from the commit, late ones failed at the deadline; stopping lets the deliveries in flight end.
FakeKube plays the API server and a scripted greenlet plays Flux: it delivers one team, never the other."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SCRIPT = """
import itertools
import json
import threading
import time

from locust.env import Environment  # first: locust patches the process with gevent on import

from assertions.load_profiles import LoadProfile
from fluxmodel.kinds import GIT_REPOSITORY, KUSTOMIZATION
from loadgen import teams
from loadgen.deliveries import DELIVERY
from loadgen.locustrun import settle_on_stop
from loadgen.tracker import DeliveryTracker
from loadgen.users import World, team_classes
from testsupport.fakekube import FakeKube

FLUX = "flux-system"
planned = teams.plan("app-1a2b3c", LoadProfile("t", {"same-source": 2, "other-source": 0}))
kube = FakeKube()
for team in planned:
    kube.add({"apiVersion": KUSTOMIZATION.api_version, "kind": KUSTOMIZATION.kind,
              "metadata": {"name": team.kustomization, "namespace": FLUX}})
kube.add({"apiVersion": GIT_REPOSITORY.api_version, "kind": GIT_REPOSITORY.kind,
          "metadata": {"name": "app-1a2b3c", "namespace": FLUX}})


class Repository:
    def __init__(self):
        self.commits = []

    def commit(self, message, write=None):
        self.commits.append(dict(write or {}))
        return f"main@sha1:{len(self.commits)}"

    def includes(self, revision, commit):
        return int(revision.rpartition(":")[2]) >= int(commit.rpartition(":")[2])


repo = Repository()
for team in planned:  # the set-up commit, as the harness makes it
    repo.commit("setup", team.files("0"))


def flux():
    # Delivers same-1 (the newest revision holding its newest token, every 0.1 s); same-2 never.
    while True:
        time.sleep(0.1)
        for number in range(len(repo.commits), 0, -1):
            path = f"{planned[0].path}/configmap.yaml"
            if path in repo.commits[number - 1]:
                token = repo.commits[number - 1][path].split("delivery: ")[1].split()[0].strip("'\\"")
                kube.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": planned[0].configmap,
                            "namespace": planned[0].namespace}, "data": {teams.TOKEN_KEY: token}})
                kube.merge_patch(KUSTOMIZATION.api_version, KUSTOMIZATION.kind, planned[0].kustomization, FLUX,
                                 {"status": {"observedGeneration": 1, "lastAppliedRevision": f"main@sha1:{number}",
                                  "conditions": [{"type": "Ready", "status": "True", "reason": "Succeeded"}]}})
                break


tracker = DeliveryTracker(kube, repo, planned, FLUX).start()
world = World(kube, repo, tracker, FLUX, planned[0].namespace, deadline=1.0)
env = Environment(user_classes=team_classes(world, 0.3, planned), stop_timeout=5)
records = []
env.events.request.add_listener(
    lambda request_type, name, response_time, exception=None, context=None, **kw: records.append(
        {"type": request_type, "name": name, "ms": response_time, "error": str(exception) if exception else None,
         "ended": time.time(), **(context or {})}))
settle_on_stop(env, world, world.deadline)
threading.Thread(target=flux, daemon=True).start()
runner = env.create_local_runner()
runner.start(2, spawn_rate=2)
time.sleep(2.5)
runner.stop()
tracker.stop()
print(json.dumps({"records": records, "in_flight": len(world.in_flight), "commits": len(repo.commits)}))
"""


@pytest.mark.process
def test_teams_commit_at_their_pace_and_every_delivery_is_one_request_event(tmp_path: Path) -> None:
    script = tmp_path / "users.py"
    script.write_text(textwrap.dedent(SCRIPT))
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    records = out["records"]
    assert out["in_flight"] == 0  # stopping waited for every delivery in flight
    assert {r["type"] for r in records} == {"delivery"} and {r["name"] for r in records} == {"same-source"}
    delivered = [r for r in records if r["team"] == "same-1"]
    stuck = sorted((r for r in records if r["team"] == "same-2"), key=lambda r: r["ended"])
    assert delivered and all(r["error"] is None for r in delivered), delivered
    assert stuck and all(r["error"] == "same-2: not delivered within 1s" and r["ms"] >= 1000 for r in stuck)
    # Open loop: the stuck team committed again while its last delivery was still awaited (a closed loop would
    # wait out the deadline first), so its deliveries overlap.
    spans = [(r["ended"] - r["ms"] / 1000, r["ended"]) for r in stuck]
    assert any(later[0] < earlier[1] for earlier, later in itertools.pairwise(spans)), spans
    assert out["commits"] == 2 + len(records)
