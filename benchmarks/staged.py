"""The cost of the gates: a 3-stage StagedKustomization of 10 apps against Flux alone applying the same commit.

One path in Git holds 10 apps (a Deployment each). Four Kustomizations apply it, each into a namespace and from a
GitRepository of its own: validation (build-success and compatibility-check, no waiting for pods), canary
(pod-ready), production (kustomization-ready), and, beside them, Flux alone (no stages). Each round commits a new
image for all 10 apps and asks the head GitRepository and Flux alone's source to fetch it at the same moment.
Everything is observed by this process (polling every 0.1 s, one clock). Printed per stage, in seconds: gate (from
the previous stage's Kustomization Ready at the commit, or the head fetching it, to this stage's GitRepository
pinned to it: the controller noticing, the validation checks, the pin; target: at most 2 s), apply (from the pin
to the stage's Kustomization Ready at the commit: source fetch, kustomize-controller's apply and its own health
checks: Flux's time, not the gates'); then production's notice (Ready to the StagedKustomization passing it),
commit to production Ready with stages and with Flux alone, and their ratio.

Usage: .venv/bin/python benchmarks/staged.py [--reuse-cluster NAME] [--apps 10] [--rounds 3] [--cap 300]
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from recovery_common import fmt, local_cluster, summary

from clusters.model import Cluster
from fluxmodel.annotations import reconcile_request
from fluxmodel.conditions import artifact_revision, is_ready, last_applied_revision
from fluxmodel.kinds import FLUX_NAMESPACE, GIT_REPOSITORY, KUSTOMIZATION, STAGED_KUSTOMIZATION
from fluxmodel.staged import head_name
from foundation.waiting import poll, wait_until
from injectors.apps import deployment, dump, kustomization_file
from testsupport.operatorprocess import OperatorProcess

STAGES = ("validation", "canary", "production")


def files(base: str, apps: int, image: str) -> dict[str, str]:
    out = {f"{base}/kustomization.yaml": dump(kustomization_file([f"app{i}" for i in range(apps)]))}
    for i in range(apps):
        dep = deployment(f"app{i}", "", replicas=1, image=image)
        out[f"{base}/app{i}/deployment.yaml"] = dump(dep)
        out[f"{base}/app{i}/kustomization.yaml"] = dump(kustomization_file(["deployment.yaml"]))
    return out


def staged_object(name: str) -> dict[str, Any]:
    return {
        "apiVersion": STAGED_KUSTOMIZATION.api_version,
        "kind": STAGED_KUSTOMIZATION.kind,
        "metadata": {"name": name, "namespace": FLUX_NAMESPACE},
        "spec": {
            "stages": [
                {
                    "name": "validation",
                    "kustomizationRef": {"name": f"{name}-validation"},
                    "validationChecks": [{"type": "build-success"}, {"type": "compatibility-check"}],
                },
                {
                    "name": "canary",
                    "kustomizationRef": {"name": f"{name}-canary"},
                    "dependsOn": ["validation"],
                    "healthChecks": [{"type": "pod-ready", "timeout": "120s"}],
                },
                {
                    "name": "production",
                    "kustomizationRef": {"name": f"{name}-production"},
                    "dependsOn": ["canary"],
                    "healthChecks": [{"type": "kustomization-ready", "timeout": "120s"}],
                },
            ]
        },
    }


class Bench:
    def __init__(self, cluster: Cluster, apps: int):
        self.cluster, self.kube, self.apps = cluster, cluster.kube, apps
        self.name = f"bst-{secrets.token_hex(3)}"
        self.path = f"apps/{self.name}"
        self.created: list[tuple[str, str, str, str | None]] = []

    def apply(self, obj: dict[str, Any]) -> None:
        self.kube.apply(obj)
        meta = obj["metadata"]
        self.created.append((obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace")))

    def setup(self) -> str:
        revision = self.cluster.git.commit(f"bench {self.name}", write=files(self.path, self.apps, "app:0"))
        for stage in (*STAGES, "flux"):
            ks_name = f"{self.name}-{stage}"
            self.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ks_name}})
            source = self.cluster.bootstrap.git_repository(self.cluster.git.url)
            source["metadata"]["name"] = ks_name
            self.apply(source)
            ks = self.cluster.bootstrap.kustomization(
                ks_name,
                self.path,
                wait=stage != "validation",
                timeout="2m",
                interval="10m",
                sourceRef={"kind": GIT_REPOSITORY.kind, "name": ks_name},
                targetNamespace=ks_name,
            )
            self.apply(ks)
        self.wait(lambda: all(self.ready_at(s, revision) for s in (*STAGES, "flux")), "every stage Ready")
        self.apply(staged_object(self.name))
        self.wait(lambda: self.staged_ready(revision), "the StagedKustomization to adopt every stage")
        return revision

    def ks(self, stage: str) -> dict[str, Any]:
        return (
            self.kube.get(KUSTOMIZATION.api_version, KUSTOMIZATION.kind, f"{self.name}-{stage}", FLUX_NAMESPACE) or {}
        )

    def ready_at(self, stage: str, revision: str) -> bool:
        ks = self.ks(stage)
        return is_ready(ks) and last_applied_revision(ks) == revision

    def status(self) -> dict[str, Any]:
        obj = self.kube.get(STAGED_KUSTOMIZATION.api_version, STAGED_KUSTOMIZATION.kind, self.name, FLUX_NAMESPACE)
        return dict((obj or {}).get("status") or {})

    def staged_ready(self, revision: str) -> bool:
        status = self.status()
        passed = [s.get("passedRevision") for s in status.get("stages") or []]
        return passed == [revision] * len(STAGES)

    def wait(self, done: Any, what: str, cap: float = 300.0) -> None:
        wait_until(done, cap, what, interval=0.2)

    def round(self, n: int, cap: float) -> dict[str, Any]:
        t0 = time.time()
        revision = self.cluster.git.commit(f"bench round {n}", write=files(self.path, self.apps, f"app:{n}"))
        for kind, name in (
            (GIT_REPOSITORY, head_name(self.name)),
            (GIT_REPOSITORY, f"{self.name}-flux"),
            (KUSTOMIZATION, f"{self.name}-flux"),
        ):
            self.kube.merge_patch(kind.api_version, kind.kind, name, FLUX_NAMESPACE, reconcile_request())
        seen: dict[str, float] = {}
        commit = revision.rpartition(":")[2]

        def observe() -> bool:
            now = time.time()
            head = self.kube.get(GIT_REPOSITORY.api_version, GIT_REPOSITORY.kind, head_name(self.name), FLUX_NAMESPACE)
            if "head" not in seen and artifact_revision(head or {}) == revision:
                seen["head"] = now
            for stage in STAGES:
                src = self.kube.get(
                    GIT_REPOSITORY.api_version, GIT_REPOSITORY.kind, f"{self.name}-{stage}", FLUX_NAMESPACE
                )
                if (
                    f"pin-{stage}" not in seen
                    and ((src or {}).get("spec") or {}).get("ref", {}).get("commit") == commit
                ):
                    seen[f"pin-{stage}"] = now
            for stage in (*STAGES, "flux"):
                if stage not in seen and self.ready_at(stage, revision):
                    seen[stage] = now
            if "passed" not in seen and self.staged_ready(revision):
                seen["passed"] = now
            return "flux" in seen and "passed" in seen

        poll(observe, cap, interval=0.1)
        out: dict[str, Any] = {"flux": _after(seen.get("flux"), t0)}
        previous = seen.get("head")
        for stage in STAGES:
            pinned, ready = seen.get(f"pin-{stage}"), seen.get(stage)
            out[stage] = {"gate": _between(previous, pinned), "apply": _between(pinned, ready)}
            previous = ready
        out["notice"] = _between(seen.get("production"), seen.get("passed"))
        out["staged"] = _after(seen.get("passed"), t0)
        return out

    def cleanup(self) -> None:
        for api_version, kind, name, namespace in reversed(self.created):
            self.kube.delete(api_version, kind, name, namespace)
        self.cluster.git.commit(f"bench {self.name} done", delete=[self.path])


def _between(start: float | None, end: float | None) -> float | None:
    return None if start is None or end is None else max(0.0, end - start)


def _after(when: float | None, t0: float) -> float | None:
    return None if when is None else when - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reuse-cluster", default=None)
    parser.add_argument("--apps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cap", type=float, default=300.0)
    args = parser.parse_args()
    rounds: list[dict[str, Any]] = []
    with local_cluster(args.reuse_cluster) as cluster:
        bench = Bench(cluster, args.apps)
        log = Path(tempfile.mkdtemp(prefix="staged-bench-")) / "stage.log"
        process = OperatorProcess(cluster.kubeconfig, "--lease-duration", "5", log=log, command="stage").start()
        try:
            bench.setup()
            print(f"  {bench.name}: 3 stages of {args.apps} apps adopted", file=sys.stderr, flush=True)
            for n in range(1, args.rounds + 1):
                rounds.append(bench.round(n, args.cap))
                print(f"  round {n}: {rounds[-1]}", file=sys.stderr, flush=True)
        finally:
            process.stop()
            bench.cleanup()
    print(f"\n3 stages x {args.apps} apps, {args.rounds} round(s); seconds over the rounds (cap {args.cap:.0f}s)\n")
    for stage in STAGES:
        print(f"{stage}:")
        for key, what in (
            ("gate", "gate (previous Ready, or head fetched -> pinned; <= 2 s)"),
            ("apply", "apply (pinned -> Ready: Flux's own fetch, apply, health)"),
        ):
            print(f"  {what:58} {summary([r[stage][key] for r in rounds if r[stage][key] is not None])}")
    notice = [r["notice"] for r in rounds if r["notice"] is not None]
    print(f"production Ready -> StagedKustomization passed it: {summary(notice)}")
    staged = [r["staged"] for r in rounds if r["staged"] is not None]
    flux = [r["flux"] for r in rounds if r["flux"] is not None]
    print(f"\ncommit -> production Ready, staged:     {summary(staged)}  ({len(staged)}/{len(rounds)} rounds)")
    print(f"commit -> production Ready, Flux alone: {summary(flux)}  ({len(flux)}/{len(rounds)} rounds)")
    ratios = [r["staged"] / r["flux"] for r in rounds if r["staged"] and r["flux"]]
    print(f"ratio staged / Flux alone: {', '.join(fmt(x, args.cap) for x in ratios) or '-'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
