"""Helpers for the validate tests: fixture GitOps repositories (real git) and manifest builders (a helper module:
the test_validate_* modules import it, never each other)."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from resilience.cli import main

KUBECTL = shutil.which("kubectl")
needs_kubectl = pytest.mark.skipif(
    KUBECTL is None, reason="kubectl not on PATH: validate builds with kubectl's embedded kustomize"
)
needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git not on PATH")


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def findings(self) -> list[dict[str, str]]:
        data = json.loads(self.out)
        assert isinstance(data, list)
        return data

    def rules(self) -> list[str]:
        return sorted(f["rule"] for f in self.findings)


class Repo:
    """A throwaway git repository holding a GitOps tree."""

    def __init__(self, path: Path, *, init: bool = True) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        if not init:  # just a directory tree with the file helpers
            return
        self.git("init", "-q", "-b", "main")
        self.git("config", "user.email", "test@example.com")
        self.git("config", "user.name", "test")
        self.git("config", "commit.gpgsign", "false")

    def git(self, *args: str) -> str:
        proc = subprocess.run(["git", *args], cwd=self.path, capture_output=True, text=True, check=True)
        return proc.stdout

    def write(self, rel: str, text: str) -> Path:
        path = self.path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    def write_yaml(self, rel: str, *docs: dict[str, Any]) -> Path:
        return self.write(rel, yaml.safe_dump_all(docs, sort_keys=False))

    def kustomization(self, rel_dir: str, **spec: Any) -> Path:
        return self.write_yaml(f"{rel_dir}/kustomization.yaml", spec)

    def commit(self, message: str = "change") -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD").strip()

    def status(self) -> str:
        return self.git("status", "--porcelain", "--ignored")

    def validate(self, *args: str, fmt: str = "json", path: str | None = None) -> Result:
        """Run `resilience validate` in-process from the repository's top."""
        out, err = io.StringIO(), io.StringIO()
        argv = ["validate", path or str(self.path), "--format", fmt, *args]
        with contextlib.chdir(self.path), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
        return Result(code, out.getvalue(), err.getvalue())


def app_root(repo: Repo, *objects: dict[str, Any], rel: str = "apps/web", **spec: Any) -> None:
    """A root kustomization listing one file per object."""
    names = []
    for i, obj in enumerate(objects):
        name = f"{obj['kind'].lower()}-{i}.yaml"
        repo.write_yaml(f"{rel}/{name}", obj)
        names.append(name)
    repo.kustomization(rel, resources=names, **spec)


def meta(name: str, namespace: str | None = None, **extra: Any) -> dict[str, Any]:
    m: dict[str, Any] = {"name": name}
    if namespace:
        m["namespace"] = namespace
    m.update(extra)
    return m


def pod_template(labels: dict[str, str], image: str = "nginx:1.27") -> dict[str, Any]:
    return {"metadata": {"labels": dict(labels)}, "spec": {"containers": [{"name": "main", "image": image}]}}


def workload(
    kind: str = "Deployment",
    name: str = "web",
    labels: dict[str, str] | None = None,
    selector: dict[str, str] | None = None,
    image: str = "nginx:1.27",
    **spec: Any,
) -> dict[str, Any]:
    labels = labels or {"app": name}
    body: dict[str, Any] = {
        "selector": {"matchLabels": dict(selector or labels)},
        "template": pod_template(labels, image),
    }
    body.update(spec)
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": meta(name), "spec": body}


def statefulset(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "serviceName": "db",
        "replicas": 1,
        "volumeClaimTemplates": [
            {
                "metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
            }
        ],
    }
    base.update(spec)
    return workload("StatefulSet", "db", **base)


def service(**spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"selector": {"app": "web"}, "ports": [{"port": 80}]}
    body.update(spec)
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta("web"), "spec": body}


def job(image: str = "busybox:1.36", labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    tmpl = pod_template(labels or {"job": "migrate"}, image)
    tmpl["spec"]["restartPolicy"] = "Never"
    body: dict[str, Any] = {"template": tmpl}
    body.update(spec)
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta("migrate"), "spec": body}


def pvc(storage: str = "10Gi", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "storageClassName": "standard",
        "resources": {"requests": {"storage": storage}},
    }
    body.update(spec)
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta("data"), "spec": body}


def configmap(data: dict[str, str], immutable: bool | None = None, kind: str = "ConfigMap") -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": kind, "metadata": meta("settings"), "data": dict(data)}
    if immutable is not None:
        obj["immutable"] = immutable
    return obj


def flux_kustomization(
    name: str, namespace: str = "flux-system", depends: list[dict[str, str]] | None = None, **spec: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "interval": "10m",
        "path": f"./apps/{name}",
        "prune": True,
        "sourceRef": {"kind": "GitRepository", "name": "flux-system"},
    }
    if depends is not None:
        body["dependsOn"] = depends
    body.update(spec)
    return {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": meta(name, namespace),
        "spec": body,
    }


def helm_release(
    name: str, namespace: str | None = "apps", depends: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "interval": "10m",
        "chart": {"spec": {"chart": name, "sourceRef": {"kind": "HelmRepository", "name": "charts"}}},
    }
    if depends is not None:
        body["dependsOn"] = depends
    return {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": meta(name, namespace),
        "spec": body,
    }
