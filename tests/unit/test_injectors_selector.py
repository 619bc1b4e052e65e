"""The selector faults build their `web` Deployment through one hook, so a variant (the load benchmark's pods that
start slowly) changes the workload of setup and fault alike without copying either."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from injectors import apps
from injectors.selector import CommonLabelsPropagation, LabelsIncludeSelectors, SelectorChange


class Recorder:
    """The parts of FaultContext the selector faults call, recording the commits and refused dry-runs."""

    namespace, path, app = "ns", "apps/app", "app"

    def __init__(self) -> None:
        self.commits: list[dict[str, str]] = []
        self.refused_objects: list[dict[str, Any]] = []

    def commit(self, message: str, write: dict[str, str]) -> str:
        self.commits.append(write)
        return "main@sha1:" + "a" * 40

    def refused(self, obj: dict[str, Any], field: str, message: str) -> bool:
        self.refused_objects.append(obj)
        return True

    def prove(self, proven: bool, what: str) -> None:
        assert proven, what

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None  # namespace, user data, source, Kustomization, reconcile


def marked(fault: type) -> Any:
    class Marked(fault):
        def web(self, ctx: Any, labels: dict[str, str]) -> dict[str, Any]:
            dep = super().web(ctx, labels)
            dep["metadata"]["annotations"] = {"variant": "slow"}
            return dep

    return Marked()


def deployments(ctx: Recorder) -> list[dict[str, Any]]:
    return [
        yaml.safe_load(files[f"{ctx.path}/deployment.yaml"])
        for files in ctx.commits
        if f"{ctx.path}/deployment.yaml" in files
    ]


@pytest.mark.parametrize("fault", [SelectorChange, CommonLabelsPropagation, LabelsIncludeSelectors])
def test_setup_and_fault_use_the_web_hook(fault: type) -> None:
    ctx: Any = Recorder()
    chosen = marked(fault)
    chosen.setup(ctx)
    chosen.inject(ctx)
    committed = deployments(ctx)
    assert committed, "no Deployment was committed"
    assert all(d["metadata"]["annotations"] == {"variant": "slow"} for d in committed)
    assert all(o["metadata"]["annotations"] == {"variant": "slow"} for o in ctx.refused_objects)
    assert committed[0]["spec"]["selector"]["matchLabels"] == {"app": "web"}


def test_the_default_web_is_the_common_workload() -> None:
    ctx: Any = Recorder()
    SelectorChange().setup(ctx)
    assert deployments(ctx) == [apps.deployment("web", "ns", {"app": "web"})]
