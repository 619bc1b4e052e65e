"""Time `resilience validate` on a generated GitOps tree next to plain `kubectl kustomize` over every dir.

The tree: N kustomizations (half app bases, half prod overlays with namespace, labels and a patch), a
clusters/prod directory of Flux Kustomizations with dependsOn chains, committed to git; then one
overlay is changed in the working tree. Each figure is the median wall time of --runs runs:

  resilience validate     the whole check (builds, immutable-field diff with HEAD, Flux graph), as a
                          user runs it (new process each time)
  kubectl kustomize (seq) one `kubectl kustomize DIR` per kustomization, in turn (the design's hook)
  kubectl kustomize (par) the same with one process per core at a time

Usage: .venv/bin/python benchmarks/validate.py [--kustomizations 200] [--runs 5] [--change image|selector]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
RESILIENCE = [sys.executable, "-m", "resilience.cli"]


def write(path: Path, *docs: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False), encoding="utf-8")


def app_objects(name: str) -> list[dict[str, Any]]:
    labels = {"app": name}
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "app", "image": f"registry.example/{name}:1.0.0"}]},
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name},
            "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8080}]},
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"{name}-settings"},
            "data": {"mode": "prod"},
        },
    ]


def generate(top: Path, kustomizations: int) -> list[Path]:
    """The tree; returns every kustomization directory."""
    apps = kustomizations // 2
    dirs: list[Path] = []
    flux: list[dict[str, Any]] = []
    for i in range(apps):
        name = f"app{i:03d}"
        base, prod = top / "apps" / name / "base", top / "apps" / name / "prod"
        objs = app_objects(name)
        for obj in objs:
            write(base / f"{obj['kind'].lower()}.yaml", obj)
        write(base / "kustomization.yaml", {"resources": [f"{o['kind'].lower()}.yaml" for o in objs]})
        patch = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {"replicas": 3},
        }
        write(prod / "replicas.yaml", patch)
        write(
            prod / "kustomization.yaml",
            {
                "namespace": name,
                "resources": ["../base"],
                "labels": [{"pairs": {"team": f"team{i % 7}"}, "includeSelectors": False}],
                "patches": [{"path": "replicas.yaml"}],
            },
        )
        dirs += [base, prod]
        depends = [{"name": f"app{i - 1:03d}"}] if i % 10 else [{"name": "infra"}]
        flux.append(
            {
                "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
                "kind": "Kustomization",
                "metadata": {"name": name, "namespace": "flux-system"},
                "spec": {
                    "interval": "10m",
                    "path": f"./apps/{name}/prod",
                    "prune": True,
                    "sourceRef": {"kind": "GitRepository", "name": "flux-system"},
                    "dependsOn": depends,
                },
            }
        )
    infra = dict(flux[0], metadata={"name": "infra", "namespace": "flux-system"})
    infra["spec"] = {k: v for k, v in flux[0]["spec"].items() if k != "dependsOn"} | {"path": "./infra"}
    write(top / "clusters" / "prod" / "apps.yaml", infra, *flux)
    return dirs


def git(top: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(top), *args], check=True, capture_output=True)


def change_one(top: Path, how: str) -> None:
    """Edit one overlay in the working tree: a new image (safe) or commonLabels (selector change)."""
    path = top / "apps" / "app042" / "prod" / "kustomization.yaml"
    spec = yaml.safe_load(path.read_text())
    if how == "image":
        spec["images"] = [{"name": "registry.example/app042", "newTag": "1.1.0"}]
    else:
        spec["commonLabels"] = {"tier": "web"}
    write(path, spec)


def timed(fn: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def run_validate(top: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*RESILIENCE, "validate", str(top), "--base", "HEAD", "--format", "text"],
        capture_output=True,
        text=True,
        check=False,
        cwd=top,
    )


def kustomize_each(kubectl: str, dirs: list[Path], workers: int) -> None:
    def one(d: Path) -> None:
        subprocess.run([kubectl, "kustomize", str(d)], check=True, capture_output=True)

    if workers == 1:
        for d in dirs:
            one(d)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(one, dirs))


def median_of(runs: int, fn: Any) -> tuple[float, list[float], Any]:
    times, last = [], None
    for _ in range(runs):
        elapsed, last = timed(fn)
        times.append(elapsed)
    return statistics.median(times), times, last


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kustomizations", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--change", choices=("image", "selector"), default="image")
    parser.add_argument("--kubectl", default=shutil.which("kubectl") or "kubectl")
    args = parser.parse_args()
    cores = os.cpu_count() or 1

    with tempfile.TemporaryDirectory(prefix="bench-validate-") as tmp:
        top = Path(tmp) / "gitops"
        dirs = generate(top, args.kustomizations)
        git(top, "init", "-q", "-b", "main")
        git(top, "-c", "user.email=bench@example.com", "-c", "user.name=bench", "add", "-A")
        git(top, "-c", "user.email=bench@example.com", "-c", "user.name=bench", "commit", "-q", "-m", "base")
        change_one(top, args.change)

        results = [
            ("resilience validate", *median_of(args.runs, lambda: run_validate(top))),
            ("kubectl kustomize (seq)", *median_of(args.runs, lambda: kustomize_each(args.kubectl, dirs, 1))),
            (
                f"kubectl kustomize (par {cores})",
                *median_of(args.runs, lambda: kustomize_each(args.kubectl, dirs, cores)),
            ),
        ]
        check = results[0][3]
        summary = check.stdout.strip().splitlines()[-1] if check.stdout.strip() else check.stderr.strip()

    print(f"tree: {len(dirs)} kustomizations, 1 changed ({args.change}); {cores} cores; median of {args.runs} runs")
    print(f"{'':26} {'median':>8} {'min':>8} {'max':>8}")
    for name, median, times, _ in results:
        print(f"{name:26} {median:7.2f}s {min(times):7.2f}s {max(times):7.2f}s")
    print(f"validate exit code {check.returncode}: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
