"""Helpers for the recovery integration tests: the operator as a real process, with a state namespace of its own
(its Lease and reconciliation-state never meet another operator's), and a ServiceAccount's kubeconfig. The `app`
and `operator` fixtures are in conftest.py (a helper module: test modules import it, never each other)."""

from __future__ import annotations

import secrets
from pathlib import Path

import yaml

from clusters.model import Cluster
from testsupport.operatorprocess import OperatorProcess


class Operator(OperatorProcess):
    """An operator process and the state namespace `start_operator` made for it."""

    state_namespace: str


def start_operator(
    cluster: Cluster, tmp: Path, *args: str, state_namespace: str | None = None, kubeconfig: Path | None = None
) -> Operator:
    """`resilience recover` against the cluster, with a state namespace of its own (created here)."""
    ns = state_namespace or f"rc-state-{secrets.token_hex(3)}"
    cluster.kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    process = Operator(
        kubeconfig or cluster.kubeconfig,
        "--state-namespace",
        ns,
        "--log-format",
        "text",
        *args,
        log=tmp / f"operator-{ns}.log",
    )
    process.state_namespace = ns
    process.start()
    return process


def service_account_kubeconfig(cluster: Cluster, namespace: str, name: str, tmp_path: Path) -> Path:
    from kubernetes.client import AuthenticationV1TokenRequest, CoreV1Api, V1TokenRequestSpec

    request = AuthenticationV1TokenRequest(spec=V1TokenRequestSpec(audiences=[], expiration_seconds=3600))
    status = CoreV1Api(cluster.kube.api).create_namespaced_service_account_token(name, namespace, request).status
    assert status is not None
    token = status.token
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    context = next(c for c in admin["contexts"] if c["name"] == (cluster.context or admin["current-context"]))
    server = next(c for c in admin["clusters"] if c["name"] == context["context"]["cluster"])
    path = tmp_path / f"{name}.kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "sa",
                "clusters": [{"name": "c", "cluster": server["cluster"]}],
                "users": [{"name": "sa", "user": {"token": token}}],
                "contexts": [{"name": "sa", "context": {"cluster": "c", "user": "sa"}}],
            }
        )
    )
    return path
