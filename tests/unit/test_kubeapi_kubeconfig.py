"""Kubeconfig files as kubectl reads them: KUBECONFIG lists merged (first wins), errors naming where paths came from."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest
import yaml

from foundation.errors import UserError
from kubeapi import Kubeconfig, KubeconfigError, connect
from recovery.cli import register, run_recover


def write(path: Path, context: str, server: str, current: bool = True, cluster: dict[str, Any] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context, "cluster": {"server": server, **(cluster or {})}}],
        "users": [{"name": context, "user": {"token": f"token-{context}"}}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
    }
    if current:
        doc["current-context"] = context
    path.write_text(yaml.safe_dump(doc))
    return path


def test_a_list_is_merged_as_kubectl_does_first_file_wins(tmp_path: Path) -> None:
    a = write(tmp_path / "a", "prod", "https://prod.example:6443")
    b = write(tmp_path / "b", "dev", "https://dev.example:6443")
    listed = Kubeconfig.env(f"{tmp_path / 'missing'}:{a}:{b}")  # a missing file in a list is skipped
    assert listed.load().host == "https://prod.example:6443"  # the first file's current-context
    assert Kubeconfig.env(f"{b}:{a}").load().host == "https://dev.example:6443"
    dev = listed.load("dev")
    assert dev.host == "https://dev.example:6443" and dev.api_key["BearerToken"] == "Bearer token-dev"
    kube = connect(listed, "dev")
    assert kube.server == "https://dev.example:6443"
    kube.close()


def test_relative_certificate_paths_resolve_against_their_own_file(tmp_path: Path) -> None:
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    first = write(tmp_path / "first", "one", "https://one:6443")
    second = write(
        tmp_path / "certs" / "config", "two", "https://two:6443", cluster={"certificate-authority": "ca.crt"}
    )
    config = Kubeconfig.env(f"{first}:{second}").load("two")
    assert config.ssl_ca_cert == str(tmp_path / "certs" / "ca.crt")


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda d: Kubeconfig.env(f"{d / 'x'}:{d / 'y'}"), "none of these files exists"),
        (lambda d: Kubeconfig.env(":"), "names no file"),
        (lambda d: Kubeconfig.file(d, f"--kubeconfig {d}"), "not a file"),
        (lambda d: Kubeconfig.env(str(write(d / "k", "c", "localhost"))), "has server 'localhost'; expected a URL"),
        (lambda d: Kubeconfig.env(str(write(d / "k", "c", "https://h:1", current=False))), "sets no current-context"),
    ],
)
def test_errors_name_where_the_paths_came_from(tmp_path: Path, make: Any, fragment: str) -> None:
    source = make(tmp_path)
    with pytest.raises(KubeconfigError, match=fragment) as err:
        source.load()
    assert str(err.value).startswith(f"{source}: ") and "\n" not in str(err.value)


def recover(*argv: str) -> None:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    run_recover(parser.parse_args(["recover", "--metrics-addr", "off", *argv]))


def test_recover_names_the_variable_when_the_list_came_from_kubeconfig(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "bad"
    bad.write_text("not: [a kubeconfig")
    good = write(tmp_path / "good", "prod", "https://127.0.0.1:9")
    monkeypatch.setenv("KUBECONFIG", f"{bad}:{good}")
    with pytest.raises(UserError) as err:
        recover()
    message = str(err.value)
    assert message.startswith(f"{bad} (from KUBECONFIG={bad}:{good}): not a usable kubeconfig")
    assert "--kubeconfig" not in message.partition(";")[0]
    assert message.endswith("fix KUBECONFIG or pass --kubeconfig FILE")
    with pytest.raises(UserError, match=rf"^--kubeconfig {bad}: not a usable kubeconfig"):
        recover("--kubeconfig", str(bad))
    monkeypatch.setenv("KUBECONFIG", f"{good}")
    with pytest.raises(UserError, match=r"no context 'staging' \(it has: prod\); pick one with --context$"):
        recover("--context", "staging")
    monkeypatch.delenv("KUBECONFIG")
    with pytest.raises(UserError, match=r"^--context prod: no kubeconfig to pick it from; pass --kubeconfig"):
        recover("--context", "prod")


def test_a_malformed_section_is_named(tmp_path: Path) -> None:
    path = tmp_path / "k"
    path.write_text("clusters: x\ncontexts: []\n")
    with pytest.raises(KubeconfigError, match=r": not a usable kubeconfig: clusters is not a list$"):
        Kubeconfig.file(path).load()
