"""Recovery modes: parsing --recovery values (errors name the value and where it came from), what flux-native
does to Flux objects, and the command/manifest modes' processes and objects (fake cluster, real processes)."""

from __future__ import annotations

import copy
import json
import signal
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from fluxmodel.annotations import RECOVERY_MODE_LABEL
from foundation.errors import HarnessError, UserError
from foundation.processes import alive
from injectors.apps import helm_release
from injectors.helm import HelmRetriesExhausted
from kubeapi import LabelSelector
from monitoring.stack.handle import MONITOR_JOB, OPERATOR_JOB, STAGES_JOB, Monitoring
from scenarios import recoveries
from scenarios.recoveries import (
    BUILTIN,
    Command,
    FluxNative,
    FluxTuned,
    Manifest,
    Operator,
    RecoveryMode,
    Staged,
    parse,
)

BAD_CHOICE = "use one of none, flux-native, flux-tuned, operator, staged, command:<cmd>, manifest:<path>"


# -- parse -----------------------------------------------------------------------------------------------


def test_builtins() -> None:
    assert type(parse("none")) is RecoveryMode and parse("none").name == "none"
    assert type(parse("flux-native")) is FluxNative and parse("flux-native").name == "flux-native"
    assert type(parse("operator")) is Operator and parse("operator").name == "operator"
    assert type(parse("staged")) is Staged and parse("staged").name == "staged"
    assert type(parse("flux-tuned")) is FluxTuned and parse("flux-tuned").name == "flux-tuned"
    assert BUILTIN == ("none", "flux-native", "flux-tuned", "operator", "staged")


def test_a_command_keeps_its_spec_as_name_and_splits_its_command_line() -> None:
    mode = parse("command:./recover.sh --namespace 'flux system'")
    assert isinstance(mode, Command)
    assert mode.name == "command:./recover.sh --namespace 'flux system'"
    assert mode.argv == ["./recover.sh", "--namespace", "flux system"]


@pytest.mark.parametrize("spec", ["command:", "command:   "])
def test_a_command_without_a_command_line_is_refused(spec: str) -> None:
    with pytest.raises(UserError) as info:
        parse(spec, "RESILIENCE_RECOVERY")
    assert str(info.value) == f"Invalid recovery {spec!r} from RESILIENCE_RECOVERY: command: needs a command line"


def test_a_command_line_with_an_unclosed_quote_is_refused() -> None:
    with pytest.raises(UserError) as info:
        parse("command:fix 'it", "RESILIENCE_RECOVERY")
    assert str(info.value) == 'Invalid recovery "command:fix \'it" from RESILIENCE_RECOVERY: No closing quotation'


@pytest.mark.parametrize("spec", ["operatr", "", "Operator", "flux_native", "cmd:x", "manifest"])
def test_unknown_values_name_the_value_the_source_and_the_choices(spec: str) -> None:
    with pytest.raises(UserError) as info:
        parse(spec, "profile quick")
    assert str(info.value) == f"Invalid recovery {spec!r} from profile quick: {BAD_CHOICE}"


def test_the_default_source_is_the_option() -> None:
    with pytest.raises(UserError, match=r"^Invalid recovery 'x' from --recovery: "):
        parse("x")


MANIFEST = """\
apiVersion: v1
kind: Namespace
metadata: {name: recovery}
---
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: healer, namespace: recovery}
spec: {replicas: 1}
"""


def test_a_manifest_holds_its_documents(tmp_path: Path) -> None:
    path = tmp_path / "healer.yaml"
    path.write_text(MANIFEST)
    mode = parse(f"manifest:{path}")
    assert isinstance(mode, Manifest)
    assert mode.name == f"manifest:{path}" and mode.path == path
    assert [o["kind"] for o in mode.objects] == ["Namespace", "Deployment"]


def test_a_manifest_path_may_start_with_a_tilde(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "healer.yaml").write_text(MANIFEST)
    mode = parse("manifest:~/healer.yaml")
    assert isinstance(mode, Manifest) and mode.path == tmp_path / "healer.yaml"


def test_a_missing_manifest_names_the_source_and_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(UserError) as info:
        parse(f"manifest:{missing}", "RESILIENCE_RECOVERY")
    message = str(info.value)
    assert message.startswith(f"Invalid recovery 'manifest:{missing}' from RESILIENCE_RECOVERY: {missing}: ")
    assert "No such file or directory" in message and "\n" not in message


@pytest.mark.parametrize(
    "content",
    [
        "apiVersion: v1\nmetadata: {name: x}\n",  # no kind
        "kind: ConfigMap\nmetadata: {name: x}\n",  # no apiVersion
        "apiVersion: v1\nkind: ConfigMap\n---\n- a list\n",  # a document that is not an object
        "apiVersion: v1\nkind: ''\n",
    ],
    ids=["no-kind", "no-api-version", "a-list", "empty-kind"],
)
def test_a_manifest_document_without_kind_is_refused(tmp_path: Path, content: str) -> None:
    path = tmp_path / "healer.yaml"
    path.write_text(content)
    with pytest.raises(UserError) as info:
        parse(f"manifest:{path}", "--recovery")
    assert str(info.value) == (
        f"Invalid recovery 'manifest:{path}' from --recovery: {path} holds a document without apiVersion/kind"
    )


def test_a_manifest_that_is_not_yaml_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "healer.yaml"
    path.write_text("kind: [unclosed\n")
    with pytest.raises(UserError, match=rf"^Invalid recovery 'manifest:{path}' from --recovery: {path}: "):
        parse(f"manifest:{path}")


# -- decorate --------------------------------------------------------------------------------------------

KUSTOMIZATION = {"kind": "Kustomization", "metadata": {"name": "app"}, "spec": {"interval": "1m", "prune": True}}
HELMRELEASE = {
    "kind": "HelmRelease",
    "metadata": {"name": "web"},
    "spec": {"install": {"remediation": {"retries": 2}}, "upgrade": {"strategy": {"name": "RemediateOnFailure"}}},
}
RETRY = {"name": "RetryOnFailure", "retryInterval": "30s"}


def test_flux_native_forces_kustomizations() -> None:
    decorated = FluxNative("flux-native").decorate(copy.deepcopy(KUSTOMIZATION))
    assert decorated["spec"] == {"interval": "1m", "prune": True, "force": True}
    assert decorated["metadata"]["labels"] == {RECOVERY_MODE_LABEL: "flux-native"}


def test_flux_native_retries_helm_releases_on_failure() -> None:
    decorated = FluxNative("flux-native").decorate(copy.deepcopy(HELMRELEASE))
    assert decorated["spec"]["install"] == {"remediation": {"retries": 2}, "strategy": RETRY}
    assert decorated["spec"]["upgrade"] == {"strategy": RETRY}
    assert decorated["spec"]["install"]["strategy"] is not decorated["spec"]["upgrade"]["strategy"]
    bare = FluxNative("flux-native").decorate({"kind": "HelmRelease", "metadata": {"name": "x"}})
    assert bare["spec"] == {"install": {"strategy": RETRY}, "upgrade": {"strategy": RETRY}}


@pytest.mark.parametrize(
    "o",
    [
        {"kind": "GitRepository", "metadata": {"name": "src"}, "spec": {"url": "http://x"}},
        {"kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 2}},
    ],
)
def test_flux_native_leaves_other_kinds_alone_but_for_the_mode_label(o: dict[str, Any]) -> None:
    assert FluxNative("flux-native").decorate(copy.deepcopy(o)) == labelled(o, "flux-native")


def test_flux_native_leaves_an_object_without_spec_alone_but_for_the_mode_label() -> None:
    config_map = {"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "b"}}
    assert FluxNative("flux-native").decorate(copy.deepcopy(config_map)) == labelled(config_map, "flux-native")


def labelled(obj: dict[str, Any], mode: str) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    out["metadata"].setdefault("labels", {})[RECOVERY_MODE_LABEL] = mode
    return out


@pytest.mark.parametrize(("spec", "label"), [("none", "none"), ("operator", "operator"), ("command:true", "command")])
def test_other_modes_only_label_a_runs_objects_with_the_mode(spec: str, label: str) -> None:
    """The label scopes the operator to its own runs (--selector resilience.gitops.io/recovery=operator)."""
    for o in (KUSTOMIZATION, HELMRELEASE):
        assert parse(spec).decorate(copy.deepcopy(o)) == labelled(o, label)


def test_on_a_shared_cluster_each_workers_operator_recovers_only_its_own_sessions_runs() -> None:
    mine, theirs = parse("operator"), parse("operator")
    assert isinstance(mine, Operator) and isinstance(theirs, Operator)
    mine.session, theirs.session = "shared.gw0", "shared.gw1"
    selector = LabelSelector.parse(mine.selector())
    assert mine.selector() == "resilience.gitops.io/recovery=operator,resilience.gitops.io/session=shared.gw0"
    for obj in (KUSTOMIZATION, HELMRELEASE):
        assert selector.matches(mine.decorate(copy.deepcopy(obj))["metadata"]["labels"])
        assert not selector.matches(theirs.decorate(copy.deepcopy(obj))["metadata"]["labels"])
        assert not selector.matches(parse("none").decorate(copy.deepcopy(obj))["metadata"]["labels"])


# -- processes and objects beside the cluster ------------------------------------------------------------


def fake_cluster(tmp_path: Path, kube: Any = None) -> Any:
    return SimpleNamespace(kubeconfig=tmp_path / "kubeconfig", context=None, kube=kube, monitoring=None)


@pytest.mark.process
@pytest.mark.slow
def test_a_command_runs_with_the_clusters_kubeconfig_until_stopped(tmp_path: Path) -> None:
    script = "echo kubeconfig=$KUBECONFIG; trap 'echo stopped politely; exit 0' TERM; while :; do sleep 0.05; done"
    mode = parse(f'command:sh -c "{script}"')
    mode.start(fake_cluster(tmp_path), tmp_path / "run")
    try:
        assert mode.process is not None
        pid = mode.process.pid
        mode.check_alive()
        assert mode.log == tmp_path / "run" / "recovery-command.log"
        assert f"kubeconfig={tmp_path / 'kubeconfig'}" in mode.log_tail()
    finally:
        mode.stop()
    assert mode.process is None
    assert "stopped politely" in mode.log_tail()  # SIGTERM first
    deadline = time.monotonic() + 10
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pid)
    mode.stop()  # twice is fine


@pytest.mark.process
@pytest.mark.slow
def test_a_command_that_exits_is_a_harness_error_with_its_log(tmp_path: Path) -> None:
    mode = parse("command:sh -c 'echo cannot reach the API >&2; exit 3'")
    with pytest.raises(HarnessError) as info:
        mode.start(fake_cluster(tmp_path), tmp_path / "run")
    assert str(info.value) == (
        "recovery \"command:sh -c 'echo cannot reach the API >&2; exit 3'\" exited with 3: cannot reach the API"
    )


@pytest.mark.process
@pytest.mark.slow
def test_a_killed_command_is_noticed(tmp_path: Path) -> None:
    mode = parse("command:sleep 100")
    mode.start(fake_cluster(tmp_path), tmp_path / "run")
    assert mode.process is not None
    mode.process.signal(signal.SIGKILL)
    mode.process.wait(10)
    with pytest.raises(HarnessError, match=r"^recovery 'command:sleep 100' exited with -9: "):
        mode.check_alive()
    mode.stop()


def test_modes_without_a_process_are_always_alive_and_have_no_log() -> None:
    mode = parse("none")
    mode.check_alive()
    mode.stop()
    assert mode.log_tail() == "(no log)"


class FakeKube:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("apply", obj["kind"], obj["metadata"]["name"]))
        return obj

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> bool:
        self.calls.append(("delete", api_version, kind, name, namespace))
        return True


def test_a_manifest_is_applied_at_start_and_deleted_last_first_at_stop(tmp_path: Path) -> None:
    path = tmp_path / "healer.yaml"
    path.write_text(MANIFEST)
    mode = parse(f"manifest:{path}")
    mode.stop()  # never started: nothing to delete
    kube = FakeKube()
    mode.start(fake_cluster(tmp_path, kube), tmp_path / "run")
    mode.stop()
    assert kube.calls == [
        ("apply", "Namespace", "recovery"),
        ("apply", "Deployment", "healer"),
        ("delete", "apps/v1", "Deployment", "healer", "recovery"),
        ("delete", "v1", "Namespace", "recovery", None),
    ]


@pytest.mark.process
@pytest.mark.parametrize(("spec", "job"), [("operator", OPERATOR_JOB), ("staged", STAGES_JOB)])
def test_with_monitoring_a_process_is_scraped_under_its_job_and_its_successor_replaces_it_after_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spec: str, job: str
) -> None:
    monkeypatch.setattr(recoveries, "_resilience_argv", lambda *_: ["sleep", "60"])
    monkeypatch.setattr(recoveries, "_await_ready", lambda *_: None)
    targets = tmp_path / "targets"
    handle = Monitoring("http://p", "http://a", "http://r", tmp_path / "n.jsonl", targets, "rules.yaml", True)
    kube = SimpleNamespace(get=lambda *_: {"kind": "CustomResourceDefinition"})  # the CRD is there
    cluster: Any = SimpleNamespace(**vars(fake_cluster(tmp_path, kube)) | {"monitoring": handle, "name": "c"})
    mode = parse(spec)
    mode.start(cluster, tmp_path / "run")
    try:
        assert mode.process is not None
        first = mode.process.pid
        assert [p.name for p in (targets / job).iterdir()] == [f"{spec}-{first}.json"]
        monitors = sorted((targets / MONITOR_JOB).glob("*.json")) if (targets / MONITOR_JOB).exists() else []
        assert len(monitors) == (1 if spec == "staged" else 0)  # the stage controller exports no Flux metrics
        assert mode.crash() == first and mode.process.pid != first
        assert [p.name for p in (targets / job).iterdir()] == [f"{spec}-{mode.process.pid}.json"]
        assert sorted((targets / MONITOR_JOB).glob("*.json")) == monitors  # the monitor was not crashed
        (target,) = (targets / job).iterdir()
        assert json.loads(target.read_text())[0]["labels"] == {"recovery": spec}
    finally:
        mode.stop()
    assert not list(targets.rglob("*.json"))


def test_flux_natives_knobs_stay_on_the_object_they_decorate() -> None:
    """A class-level release spec shared its `upgrade` mapping with every release built from it: flux-native's
    RetryOnFailure then rode into the next run of the fault under the operator (which the isolation check made
    invalid)."""
    spec = HelmRetriesExhausted.release_spec
    before = copy.deepcopy(spec)
    decorated = FluxNative("flux-native").decorate(helm_release("web", "ns", "flux-system", "1.0.0", **spec))
    assert decorated["spec"]["upgrade"]["strategy"]["name"] == "RetryOnFailure"
    assert HelmRetriesExhausted.release_spec == before
    assert "strategy" not in helm_release("web", "ns", "flux-system", "1.0.0", **spec)["spec"]["upgrade"]
