"""What a local cluster keeps on disk and on sockets, without a cluster: names and paths (layout), certificates and
kubeconfigs (pki), the supervisor's control channel (control), the GitOps repository (gitops) and the chart
repository (charts, with the helm built by `resilience build`)."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import socket
import ssl
import subprocess
import tarfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import given
from hypothesis import strategies as st

from clusters.build import cached
from clusters.charts import ChartRepo, chart_source
from clusters.gitops import BRANCH, GitOpsRepo
from clusters.local.control import ControlServer, request
from clusters.local.layout import ClusterLayout, all_layouts, check_name
from clusters.local.pki import ClusterPki, Identity, write_kubeconfig, write_pki
from clusters.pins import component
from foundation.errors import HarnessError, UserError

# -- layout ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a", "7", "dev", "pytest-123-main", "a1-b2", "x" * 40, "0-0"])
def test_check_name_accepts_dns_label_style_names(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "-a", "a-", "A", "Dev", "a_b", "a.b", "a b", "x" * 41, "../etc", "a/b", "é", "a\tb"]
)
def test_check_name_refuses_other_names_with_the_rule(name: str) -> None:
    with pytest.raises(UserError) as info:
        check_name(name)
    message = str(info.value)
    assert message.startswith(f"bad cluster name {name!r}: use lower-case letters, digits and '-'")
    assert "at most 40 characters" in message


def test_check_name_refuses_a_trailing_newline() -> None:
    with pytest.raises(UserError):
        check_name("abc\n")


def _rule(name: str) -> bool:
    allowed = set("abcdefghijklmnopqrstuvwxyz0123456789-")
    return 1 <= len(name) <= 40 and set(name) <= allowed and not name.startswith("-") and not name.endswith("-")


@given(st.text(alphabet="abcz09-_A.", max_size=45))
def test_check_name_follows_the_documented_rule(name: str) -> None:
    try:
        check_name(name)
        accepted = True
    except UserError:
        accepted = False
    assert accepted == _rule(name)


def test_layout_paths_are_all_under_the_cluster_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESILIENCE_STATE", str(tmp_path / "state"))
    layout = ClusterLayout.named("dev")
    assert layout.root == tmp_path / "state" / "clusters" / "dev" and layout.name == "dev"
    paths = [
        layout.spec_file,
        layout.status_file,
        layout.restarts_file,
        layout.supervisor_pid_file,
        layout.pki_dir,
        layout.kubeconfig,
        layout.component_kubeconfig("kube-scheduler"),
        layout.log("etcd"),
        layout.pid_file("etcd"),
        layout.etcd_dir,
        layout.storage_dir,
        layout.git_dir,
        layout.charts_dir,
        layout.config_dir,
    ]
    assert all(layout.root in p.parents for p in paths)
    assert len(set(paths)) == len(paths)
    assert layout.control_socket.startswith("\0gitops-resilience:dev:")
    assert layout.control_socket != ClusterLayout.named("dev2").control_socket
    # A state directory deeper than a socket address can hold (107 bytes) still gets one, unique per directory.
    deep = [ClusterLayout(tmp_path / ("d" * 120) / str(i) / "dev") for i in range(2)]
    assert all(len(d.control_socket.encode()) < 108 for d in deep)
    assert deep[0].control_socket != deep[1].control_socket
    with pytest.raises(UserError, match="bad cluster name 'Dev'"):
        ClusterLayout.named("Dev")


def test_status_and_spec_round_trip_and_unreadable_files_read_empty(tmp_path: Path) -> None:
    layout = ClusterLayout(tmp_path / "c")
    layout.root.mkdir()
    assert layout.read_status() == {} and layout.read_spec() == {}
    layout.write_status({"phase": "ready", "phases": {"etcd": 1.5}})
    layout.write_spec({"ports": {"etcd-client": 2379}})
    assert layout.read_status() == {"phase": "ready", "phases": {"etcd": 1.5}}
    assert layout.read_spec() == {"ports": {"etcd-client": 2379}}
    assert sorted(p.name for p in layout.root.iterdir()) == ["cluster.json", "status.json"]  # no temporary left
    layout.status_file.write_text("{half")
    layout.spec_file.write_text("[1, 2]")
    assert layout.read_status() == {} and layout.read_spec() == {}


def test_all_layouts_lists_cluster_directories_sorted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESILIENCE_STATE", str(tmp_path))
    assert all_layouts() == []
    for name in ("b", "a"):
        (tmp_path / "clusters" / name).mkdir(parents=True)
    (tmp_path / "clusters" / "stray-file").write_text("")
    assert [layout.name for layout in all_layouts()] == ["a", "b"]


# -- pki -------------------------------------------------------------------------------------------------

SERVER = "https://127.0.0.1:6443"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> ClusterPki:
    identities = [Identity("admin", "system:masters"), Identity("kube-scheduler")]
    return write_pki(tmp_path_factory.mktemp("pki") / "pki", identities)


def cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def eku(certificate: x509.Certificate) -> list[x509.ObjectIdentifier]:
    return list(certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def public_bytes(key: Any) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def test_the_ca_is_a_self_signed_ca(pki: ClusterPki) -> None:
    ca = cert(pki.ca_cert)
    assert ca.subject == ca.issuer
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    ca.verify_directly_issued_by(ca)


@pytest.mark.parametrize("leaf", ["apiserver.crt", "admin.crt", "kube-scheduler.crt"])
def test_every_certificate_chains_to_the_ca_and_matches_its_key(pki: ClusterPki, leaf: str) -> None:
    ca, certificate = cert(pki.ca_cert), cert(pki.directory / leaf)
    certificate.verify_directly_issued_by(ca)
    assert not certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    key = serialization.load_pem_private_key((pki.directory / leaf).with_suffix(".key").read_bytes(), None)
    assert public_bytes(key.public_key()) == public_bytes(certificate.public_key())


def test_the_serving_certificate_is_for_loopback_and_the_kubernetes_service(pki: ClusterPki) -> None:
    serving = cert(pki.serving_cert)
    sans = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in sans.get_values_for_type(x509.IPAddress)
    assert {"localhost", "kubernetes.default.svc"} <= set(sans.get_values_for_type(x509.DNSName))
    assert eku(serving) == [ExtendedKeyUsageOID.SERVER_AUTH]


def test_client_certificates_carry_user_and_group(pki: ClusterPki) -> None:
    admin, scheduler = cert(pki.client_cert("admin")), cert(pki.client_cert("kube-scheduler"))
    assert admin.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "admin"
    assert [a.value for a in admin.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == ["system:masters"]
    assert scheduler.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME) == []
    assert eku(admin) == eku(scheduler) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_service_account_keys_are_a_pair_and_every_file_is_private(pki: ClusterPki) -> None:
    private = serialization.load_pem_private_key(pki.sa_key.read_bytes(), None)
    assert public_bytes(private.public_key()) == pki.sa_pub.read_bytes()
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in pki.directory.iterdir())


@pytest.mark.process
def test_a_mutual_tls_handshake_with_the_generated_files(pki: ClusterPki) -> None:
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(pki.serving_cert, pki.serving_key)
    server_ctx.load_verify_locations(pki.ca_cert)
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    client_ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
    client_ctx.load_cert_chain(pki.client_cert("admin"), pki.client_key("admin"))
    peer: dict[str, Any] = {}
    with socket.create_server(("127.0.0.1", 0)) as listener:

        def serve() -> None:
            conn, _ = listener.accept()
            with server_ctx.wrap_socket(conn, server_side=True) as tls:
                peer.update(tls.getpeercert() or {})
                tls.sendall(b"ok")

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        port = listener.getsockname()[1]
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            client_ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            assert tls.recv(2) == b"ok"
        thread.join(10)
    assert (("organizationName", "system:masters"),) in peer["subject"]


def test_the_kubeconfig_references_the_files_and_the_context(pki: ClusterPki, tmp_path: Path) -> None:
    path = write_kubeconfig(tmp_path / "kubeconfig", pki, SERVER, "admin", "dev")
    config = yaml.safe_load(path.read_text())
    assert config["current-context"] == "dev"
    assert config["contexts"] == [{"name": "dev", "context": {"cluster": "dev", "user": "admin"}}]
    assert config["clusters"][0]["cluster"] == {"server": SERVER, "certificate-authority": str(pki.ca_cert)}
    user = config["users"][0]
    assert user["name"] == "admin"
    assert user["user"] == {
        "client-certificate": str(pki.client_cert("admin")),
        "client-key": str(pki.client_key("admin")),
    }
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in user["user"].values())
    assert path.stat().st_mode & 0o777 == 0o600


def test_the_kubernetes_client_accepts_the_kubeconfig(pki: ClusterPki, tmp_path: Path) -> None:
    from kubernetes import config as kube_config

    path = write_kubeconfig(tmp_path / "kubeconfig", pki, SERVER, "admin", "dev")
    api = kube_config.new_client_from_config(config_file=str(path))
    try:
        assert api.configuration.host == SERVER
        assert Path(api.configuration.ssl_ca_cert).read_bytes() == pki.ca_cert.read_bytes()
    finally:
        api.close()


# -- control ---------------------------------------------------------------------------------------------


class FakeSupervisor:
    """What ControlServer uses of a Supervisor; records the calls."""

    def __init__(self) -> None:
        self.specs = {"kustomize-controller": object(), "gitserver": object()}
        self.calls: list[tuple[Any, ...]] = []

    def status(self) -> dict[str, Any]:
        return {"gitserver": {"running": True}}

    def kill(self, name: str, sig: int) -> int:
        self.calls.append(("kill", name, sig))
        if name == "gitserver":
            raise HarnessError("gitserver is not running")
        return 4242

    def hold(self, name: str, seconds: float | None) -> None:
        self.calls.append(("hold", name, seconds))

    def release(self, name: str) -> None:
        self.calls.append(("release", name))


@dataclass
class Control:
    server: ControlServer
    sup: FakeSupervisor
    address: str
    shutdowns: list[str]


def unused_address() -> str:
    return f"\0gitops-resilience-test:{uuid.uuid4()}"


@pytest.fixture
def control() -> Iterator[Control]:
    sup, shutdowns, where = FakeSupervisor(), [], unused_address()
    server = ControlServer(where, sup, lambda: shutdowns.append("down"))  # type: ignore[arg-type]
    yield Control(server, sup, where, shutdowns)
    server.close()


@pytest.mark.process
def test_handle_dispatches_every_op(control: Control) -> None:
    handle = control.server.handle
    assert handle({"op": "status"}) == {"gitserver": {"running": True}}
    assert handle({"op": "kill", "component": "kustomize-controller"}) == {"pid": 4242}
    assert handle({"op": "kill", "component": "kustomize-controller", "signal": 15}) == {"pid": 4242}
    assert handle({"op": "hold", "component": "gitserver", "seconds": "2.5"}) == {}
    assert handle({"op": "hold", "component": "gitserver"}) == {}
    assert handle({"op": "release", "component": "gitserver"}) == {}
    assert handle({"op": "shutdown"}) == {}
    assert control.sup.calls == [
        ("kill", "kustomize-controller", 9),
        ("kill", "kustomize-controller", 15),
        ("hold", "gitserver", 2.5),
        ("hold", "gitserver", None),
        ("release", "gitserver"),
    ]
    assert control.shutdowns == ["down"]


@pytest.mark.process
@pytest.mark.parametrize(
    ("req", "message"),
    [
        ({"op": "explode"}, "unknown control op 'explode'"),
        ({}, "unknown control op None"),
        ({"op": "kill", "component": "etcd"}, "unknown component 'etcd'; known: kustomize-controller, gitserver"),
        ({"op": "hold", "component": "nope", "seconds": 1}, "unknown component 'nope'; known: "),
    ],
)
def test_handle_refuses_unknown_ops_and_components(control: Control, req: dict[str, Any], message: str) -> None:
    with pytest.raises(HarnessError) as info:
        control.server.handle(req)
    assert str(info.value).startswith(message)
    assert control.sup.calls == [] and control.shutdowns == []


@pytest.mark.process
def test_request_over_a_real_socket(control: Control) -> None:
    control.server.start()
    assert request(control.address, "status") == {"gitserver": {"running": True}}
    assert request(control.address, "kill", component="kustomize-controller", signal=15) == {"pid": 4242}
    with pytest.raises(HarnessError, match=r"^gitserver is not running$"):
        request(control.address, "kill", component="gitserver")
    with pytest.raises(HarnessError, match=r"^unknown component 'etcd'"):
        request(control.address, "release", component="etcd")
    assert control.sup.calls == [("kill", "kustomize-controller", 15), ("kill", "gitserver", 9)]


@pytest.mark.process
def test_a_request_that_is_not_json_gets_an_error_answer(control: Control) -> None:
    control.server.start()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(control.address)
        sock.sendall(b"{not json")
        sock.shutdown(socket.SHUT_WR)
        answer = json.loads(sock.recv(65536))
    assert answer["ok"] is False and answer["error"]
    assert request(control.address, "status") == {"gitserver": {"running": True}}  # still serving


def test_request_without_a_supervisor_is_a_harness_error() -> None:
    with pytest.raises(HarnessError, match=r"^cluster supervisor not reachable \(.*\); is the cluster up\?$"):
        request(unused_address(), "status", timeout=2)


@pytest.mark.process
def test_a_closed_server_is_not_reachable(control: Control) -> None:
    control.server.start()
    assert request(control.address, "status")
    time.sleep(0.2)  # let the serving thread block in accept() again
    control.server.close()
    with pytest.raises(HarnessError, match="cluster supervisor not reachable"):
        request(control.address, "status", timeout=2)


# -- gitops ----------------------------------------------------------------------------------------------

REVISION = re.compile(rf"^{BRANCH}@sha1:[0-9a-f]{{40}}$")


@pytest.fixture
def repo(tmp_path: Path) -> GitOpsRepo:
    return GitOpsRepo.create(
        tmp_path / "git", "http://127.0.0.1:1/gitops.git", {"apps/web.yaml": "kind: Deployment\n", "README": "hi\n"}
    )


def bare_head(repo: GitOpsRepo) -> str:
    return subprocess.run(
        ["git", "--git-dir", str(repo.bare), "rev-parse", f"refs/heads/{BRANCH}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


@pytest.mark.process
def test_create_makes_one_commit_with_the_initial_files(repo: GitOpsRepo) -> None:
    assert REVISION.match(repo.revision())
    assert repo.revision() == f"{BRANCH}@sha1:{repo.sha()}"
    assert bare_head(repo) == repo.sha()
    assert repo.read("apps/web.yaml") == "kind: Deployment\n"
    assert repo.read("apps/missing.yaml") is None and repo.read("apps") is None


@pytest.mark.process
def test_commit_writes_deletes_and_returns_the_flux_revision_of_the_served_head(repo: GitOpsRepo) -> None:
    first = repo.revision()
    revision = repo.commit("Change", write={"apps/web.yaml": "v2\n", "apps/new/svc.yaml": "svc\n"}, delete=["README"])
    assert REVISION.match(revision) and revision != first
    assert revision == f"{BRANCH}@sha1:{bare_head(repo)}"
    assert repo.read("apps/web.yaml") == "v2\n" and repo.read("apps/new/svc.yaml") == "svc\n"
    assert repo.read("README") is None
    repo.commit("Remove a directory", delete=["apps/new", "never-existed.yaml"])
    assert not (repo.work / "apps" / "new").exists()
    assert REVISION.match(repo.commit("Nothing changed"))  # empty commits are allowed


@pytest.mark.process
def test_restore_brings_back_an_earlier_tree_on_top_of_history(repo: GitOpsRepo) -> None:
    initial = repo.sha()
    repo.commit("Fault", write={"apps/web.yaml": "broken\n", "apps/extra.yaml": "x\n"}, delete=["README"])
    revision = repo.restore(initial, "Revert the fault")
    assert REVISION.match(revision) and repo.sha() != initial
    assert repo.read("apps/web.yaml") == "kind: Deployment\n" and repo.read("README") == "hi\n"
    assert repo.read("apps/extra.yaml") is None and not (repo.work / "apps" / "extra.yaml").exists()
    assert bare_head(repo) == repo.sha()
    count = subprocess.run(
        ["git", "rev-list", "--count", "HEAD"], cwd=repo.work, capture_output=True, text=True, check=True
    )
    assert count.stdout.strip() == "3"


@pytest.mark.process
def test_the_work_tree_is_a_worktree_of_the_bare_repository_so_a_commit_needs_no_push(repo: GitOpsRepo) -> None:
    git = ["git", "-C", str(repo.work)]
    assert subprocess.run([*git, "remote"], capture_output=True, text=True, check=True).stdout == ""
    common = subprocess.run([*git, "rev-parse", "--git-common-dir"], capture_output=True, text=True, check=True)
    assert Path(common.stdout.strip()).resolve() == repo.bare.resolve()
    revision = repo.commit("Change", write={"apps/web.yaml": "v2\n"})
    assert revision == f"{BRANCH}@sha1:{bare_head(repo)}"
    assert not (repo.bare / "index").exists() and not (repo.work.parent / "seed").exists()


@pytest.mark.process
def test_a_repository_made_before_worktrees_is_still_pushed_to(tmp_path: Path) -> None:
    """Clusters outlive harness upgrades: a working clone with an `origin` (the earlier layout) pushes each commit."""
    bare, work = tmp_path / "gitops.git", tmp_path / "work"
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "a",
        "GIT_AUTHOR_EMAIL": "a@b",
        "GIT_COMMITTER_NAME": "a",
        "GIT_COMMITTER_EMAIL": "a@b",
        "HOME": str(tmp_path),
    }
    for argv in (
        ["git", "init", "-q", "--bare", f"--initial-branch={BRANCH}", str(bare)],
        ["git", "clone", "-q", str(bare), str(work)],
    ):
        subprocess.run(argv, env=env, check=True, capture_output=True)
    old = GitOpsRepo(bare, work, "http://127.0.0.1:1/gitops.git")
    revision = old.commit("First", write={"apps/web.yaml": "v1\n"})
    assert revision == f"{BRANCH}@sha1:{bare_head(old)}"
    assert old.restore(old.sha(), "Again") == f"{BRANCH}@sha1:{bare_head(old)}"


@pytest.mark.process
@pytest.mark.parametrize("rel", ["../outside.yaml", "apps/../../outside.yaml", "/etc/passwd", "."])
def test_a_path_escaping_the_repository_is_a_user_error(repo: GitOpsRepo, rel: str) -> None:
    before = repo.sha()
    with pytest.raises(UserError) as info:
        repo.commit("Escape", write={rel: "x"})
    assert str(info.value) == f"{rel}: path escapes the GitOps repository"
    with pytest.raises(UserError):
        repo.read(rel)
    assert repo.sha() == before
    assert not (repo.work.parent / "outside.yaml").exists()


@pytest.mark.process
def test_a_symlink_out_of_the_repository_does_not_let_a_write_escape(repo: GitOpsRepo, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (repo.work / "link").symlink_to(outside)
    with pytest.raises(UserError, match=r"^link/x\.yaml: path escapes the GitOps repository$"):
        repo.commit("Escape through a link", write={"link/x.yaml": "x"})
    assert not (outside / "x.yaml").exists()


@pytest.mark.process
def test_restore_of_an_unknown_revision_is_a_harness_error(repo: GitOpsRepo) -> None:
    with pytest.raises(HarnessError, match=r"^git read-tree -u --reset 0{40} failed in "):
        repo.restore("0" * 40, "Revert")


# -- charts ----------------------------------------------------------------------------------------------

HELM = cached(component("helm"))
needs_helm = pytest.mark.skipif(
    HELM is None, reason="helm is not built: run `resilience build` (charts are packaged with the pinned helm)"
)


@pytest.fixture
def charts(tmp_path: Path) -> ChartRepo:
    assert HELM is not None
    return ChartRepo(tmp_path / "charts", "http://127.0.0.1:1/charts", HELM.binary("helm"))


def chart_values(directory: Path, chart: str, version: str) -> dict[str, Any]:
    with tarfile.open(directory / f"{chart}-{version}.tgz") as tar:
        member = tar.extractfile(f"{chart}/values.yaml")
        assert member is not None
        return dict(yaml.safe_load(member.read()))


def test_chart_source_is_shipped() -> None:
    meta = yaml.safe_load((chart_source("demo-app") / "Chart.yaml").read_text())
    assert meta["name"] == "demo-app"


@pytest.mark.process
@needs_helm
def test_publish_packages_versions_with_values_and_indexes_them(charts: ChartRepo) -> None:
    assert charts.versions("demo-app") == []
    assert charts.publish("demo-app", "1.0.0") == "1.0.0"
    charts.publish("demo-app", "1.1.0", {"replicaCount": 5, "podBehavior": "never-ready"})
    assert sorted(charts.versions("demo-app")) == ["1.0.0", "1.1.0"]
    assert charts.versions("other") == []
    defaults = yaml.safe_load((chart_source("demo-app") / "values.yaml").read_text())
    assert chart_values(charts.directory, "demo-app", "1.0.0") == defaults
    assert chart_values(charts.directory, "demo-app", "1.1.0") == {
        **defaults,
        "replicaCount": 5,
        "podBehavior": "never-ready",
    }
    index = yaml.safe_load((charts.directory / "index.yaml").read_text())
    urls = [u for entry in index["entries"]["demo-app"] for u in entry["urls"]]
    assert sorted(urls) == [f"{charts.url}/demo-app-1.0.0.tgz", f"{charts.url}/demo-app-1.1.0.tgz"]
    assert {e["appVersion"] for e in index["entries"]["demo-app"]} == {"1.0.0", "1.1.0"}


@pytest.mark.process
@needs_helm
def test_a_bad_chart_version_is_a_harness_error_naming_the_helm_command(charts: ChartRepo) -> None:
    with pytest.raises(HarnessError, match=r"^helm package .* failed: .*"):
        charts.publish("demo-app", "not-semver")
    assert charts.versions("demo-app") == []


@pytest.mark.process
def test_a_failing_helm_is_a_harness_error(tmp_path: Path) -> None:
    fake = tmp_path / "helm"
    fake.write_text("#!/bin/sh\necho 'Error: the disk is on fire' >&2\nexit 1\n")
    fake.chmod(0o755)
    charts = ChartRepo(tmp_path / "charts", "http://127.0.0.1:1/charts", fake)
    with pytest.raises(HarnessError) as info:
        charts.reindex()
    assert (
        str(info.value)
        == f"helm repo index {tmp_path / 'charts'} --url {charts.url} failed: Error: the disk is on fire"
    )


def test_a_damaged_index_reads_as_no_versions(tmp_path: Path) -> None:
    charts = ChartRepo(tmp_path, "http://127.0.0.1:1/charts", tmp_path / "helm")
    (tmp_path / "index.yaml").write_text("apiVersion: v1\nentries:\n")
    assert charts.versions("demo-app") == []
    with contextlib.suppress(FileNotFoundError):
        (tmp_path / "index.yaml").unlink()
    assert charts.versions("demo-app") == []
