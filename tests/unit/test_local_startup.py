"""The local cluster's start-up pieces that need no cluster: the CRDs read from Flux's files, the bootstrap objects."""

from __future__ import annotations

from pathlib import Path

from clusters.bootstrap import DEMO_KUSTOMIZATION, Bootstrap
from clusters.local.startup import crd_documents


def test_crd_documents_keeps_only_the_custom_resource_definitions_of_every_file(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: as.example.com}\n"
        "---\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: not-a-crd}\n"
    )
    (tmp_path / "b.yaml").write_text(
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: bs.example.com}\n"
    )
    docs = crd_documents([tmp_path / "a.yaml", tmp_path / "b.yaml"])
    assert [d["metadata"]["name"] for d in docs] == ["as.example.com", "bs.example.com"]


def test_the_demo_kustomization_does_not_wait_for_health_the_bootstrap_checks_the_deployment_itself() -> None:
    objs = Bootstrap().objects("http://git", "http://charts")
    demo = next(o for o in objs if o["kind"] == "Kustomization" and o["metadata"]["name"] == DEMO_KUSTOMIZATION)
    assert demo["spec"]["wait"] is False
    assert Bootstrap().kustomization("other", "apps/other")["spec"]["wait"] is True  # others keep Flux's health wait
