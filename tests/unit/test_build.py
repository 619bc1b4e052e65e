"""clusters.build without the network: the wrapper go.mod from sample `go mod edit -json` output, the cache key,
half-built cache entries, and build failures explained (a fake `go` stands in for the toolchain)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clusters import build as build_mod
from clusters.build import (
    STAMP,
    _explain,
    _go_env,
    build,
    build_args,
    build_component,
    cache_size_line,
    cached,
    component_dir,
    go_caches,
    go_executable,
    recipe_key,
    require,
    wrapper_go_mod,
)
from clusters.pins import COMPONENTS, GoComponent, component
from foundation.errors import HarnessError, UserError

KUBERNETES = GoComponent(
    name="kubernetes",
    module="k8s.io/kubernetes",
    version="v1.36.3",
    packages={"kube-apiserver": "k8s.io/kubernetes/cmd/kube-apiserver"},
    local_replace_version="v0.36.3",
)
FLUX = GoComponent(
    name="kustomize-controller",
    module="github.com/fluxcd/kustomize-controller",
    version="v1.9.4",
    packages={"kustomize-controller": "github.com/fluxcd/kustomize-controller"},
    crd_dir="config/crd/bases",
)
ETCD = GoComponent(
    name="etcd", module="go.etcd.io/etcd/server/v3", version="v3.6.16", packages={"etcd": "go.etcd.io/etcd/server/v3"}
)
DEMO = GoComponent(
    name="demo",
    module="example.com/demo",
    version="v1.2.3",
    packages={"demo": "example.com/demo/cmd/demo", "democtl": "example.com/demo/cmd/democtl"},
    crd_dir="config/crd/bases",
)


def go_mod_json(requires: dict[str, str], replaces: list[tuple[str, str, str | None]], go: str = "1.25.0") -> dict:
    """What `go mod edit -json` prints: Require entries and Replace entries (a local one has no New.Version)."""
    return {
        "Module": {"Path": "upstream"},
        "Go": go,
        "Require": [{"Path": p, "Version": v} for p, v in requires.items()],
        "Replace": [
            {"Old": {"Path": old}, "New": {"Path": new, **({"Version": version} if version else {})}}
            for old, new, version in replaces
        ],
    }


def directives(go_mod: str) -> list[str]:
    return [line for line in go_mod.splitlines() if line.startswith(("require ", "replace "))]


# -- wrapper_go_mod ---------------------------------------------------------------------------------------


def test_kubernetes_staging_replaces_become_proxy_replaces_at_the_local_replace_version() -> None:
    upstream = go_mod_json(
        {"k8s.io/api": "v0.0.0", "k8s.io/client-go": "v0.0.0", "github.com/spf13/cobra": "v1.9.1"},
        [
            ("k8s.io/api", "./staging/src/k8s.io/api", None),
            ("k8s.io/client-go", "./staging/src/k8s.io/client-go", None),
        ],
        go="1.26.0",
    )
    go_mod = wrapper_go_mod(KUBERNETES, upstream)
    assert go_mod.splitlines()[0] == "module resilience.build/kubernetes"
    assert "go 1.26.0" in go_mod.splitlines()
    assert directives(go_mod) == [
        "require k8s.io/kubernetes v1.36.3",
        "replace k8s.io/api => k8s.io/api v0.36.3",
        "replace k8s.io/client-go => k8s.io/client-go v0.36.3",
    ]
    assert "./staging" not in go_mod and go_mod.endswith("\n")


def test_a_local_replace_at_v0_0_0_without_a_pinned_version_is_a_harness_error_naming_it() -> None:
    upstream = go_mod_json({"k8s.io/api": "v0.0.0"}, [("k8s.io/api", "./staging/src/k8s.io/api", None)])
    with pytest.raises(HarnessError, match=r"^etcd: k8s\.io/api is replaced locally at v0\.0\.0"):
        wrapper_go_mod(ETCD, upstream)


def test_flux_style_local_api_replace_becomes_a_require_at_the_upstream_version() -> None:
    api = "github.com/fluxcd/kustomize-controller/api"
    upstream = go_mod_json({api: "v1.9.4", "sigs.k8s.io/kustomize/api": "v0.20.1"}, [(api, "./api", None)])
    assert directives(wrapper_go_mod(FLUX, upstream)) == [
        "require github.com/fluxcd/kustomize-controller v1.9.4",
        f"require {api} v1.9.4",
    ]


def test_etcd_style_local_replaces_of_modules_not_required_are_dropped() -> None:
    upstream = go_mod_json(
        {"go.etcd.io/etcd/api/v3": "v3.6.16"},
        [
            ("go.etcd.io/etcd/api/v3", "../api", None),
            ("go.etcd.io/etcd/v3", "./FORBIDDEN_DEPENDENCY", None),
            ("go.etcd.io/etcd/etcdctl/v3", "./FORBIDDEN_DEPENDENCY", None),
        ],
    )
    go_mod = wrapper_go_mod(ETCD, upstream)
    assert "FORBIDDEN_DEPENDENCY" not in go_mod
    assert directives(go_mod) == [
        "require go.etcd.io/etcd/server/v3 v3.6.16",
        "require go.etcd.io/etcd/api/v3 v3.6.16",
    ]


def test_version_replaces_are_copied_even_for_modules_not_required() -> None:
    upstream = go_mod_json(
        {"github.com/a/b": "v1.0.0"},
        [("github.com/a/b", "github.com/fork/b", "v1.0.1"), ("github.com/c/d", "github.com/c/d", "v0.3.0")],
    )
    assert directives(wrapper_go_mod(FLUX, upstream))[1:] == [
        "replace github.com/a/b => github.com/fork/b v1.0.1",
        "replace github.com/c/d => github.com/c/d v0.3.0",
    ]


def test_an_upstream_without_require_or_replace_gives_just_the_module() -> None:
    go_mod = wrapper_go_mod(DEMO, {"Go": "1.22", "Require": None, "Replace": None})
    assert directives(go_mod) == ["require example.com/demo v1.2.3"]


def test_a_version_specific_replace_keeps_its_old_version() -> None:
    upstream = go_mod_json({}, [])
    upstream["Replace"] = [
        {"Old": {"Path": "github.com/a/b", "Version": "v1.0.0"}, "New": {"Path": "github.com/a/b", "Version": "v1.0.1"}}
    ]
    assert "replace github.com/a/b v1.0.0 => github.com/a/b v1.0.1" in directives(wrapper_go_mod(DEMO, upstream))


module_path = st.from_regex(r"\A[a-z]{1,8}\.io/[a-z]{1,8}(/v[2-9])?\Z")
version = st.from_regex(r"\Av[0-9]\.[0-9]{1,2}\.[0-9]{1,2}\Z")


@given(
    requires=st.dictionaries(module_path, st.one_of(st.just("v0.0.0"), version), max_size=6),
    local=st.sets(module_path, max_size=6),
)
def test_every_local_replace_is_resolved_and_no_local_path_survives(requires: dict[str, str], local: set[str]) -> None:
    upstream = go_mod_json(requires, [(m, f"./staging/{m}", None) for m in sorted(local)])
    out = directives(wrapper_go_mod(KUBERNETES, upstream))
    assert not any("./" in line for line in out)
    for module in local:
        if module not in requires:
            assert not any(module in line.split() for line in out)
        elif requires[module] == "v0.0.0":
            assert f"replace {module} => {module} v0.36.3" in out
        else:
            assert f"require {module} {requires[module]}" in out
    assert len(out) == 1 + len(local & set(requires))


# -- the cache -------------------------------------------------------------------------------------------


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RESILIENCE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.parametrize(
    "change",
    [
        {"version": "v1.2.4"},
        {"module": "example.com/demo2"},
        {"packages": {"demo": "example.com/demo/cmd/other"}},
        {"ldflags": ("-X main.version=v1.2.3",)},
        {"local_replace_version": "v0.2.3"},
        {"crd_dir": "config/crd"},
        {"tags": ("remove_all_sd",)},
    ],
    ids=lambda change: next(iter(change)),
)
def test_recipe_key_changes_when_a_pin_changes(change: dict[str, Any]) -> None:
    changed = dataclasses.replace(DEMO, **change)
    assert recipe_key(changed) != recipe_key(DEMO)
    assert re.fullmatch(r"[0-9a-f]{10}", recipe_key(changed))


def test_recipe_key_is_stable_and_ignores_what_does_not_change_the_build() -> None:
    assert recipe_key(DEMO) == recipe_key(dataclasses.replace(DEMO))
    assert recipe_key(dataclasses.replace(DEMO, needed_for=("test",))) == recipe_key(DEMO)


def test_changing_the_tags_changes_the_cache_directory(cache: Path) -> None:
    tagged = dataclasses.replace(DEMO, tags=("remove_all_sd",))
    assert component_dir(tagged) != component_dir(DEMO)
    assert component_dir(dataclasses.replace(tagged, tags=("remove_all_sd", "enable_dns_sd"))) != component_dir(tagged)


def test_a_component_without_tags_keeps_the_key_it_had_before_tags_existed() -> None:
    # The recipe as it was hashed before the field: the cached builds of untagged components stay valid.
    before = {
        "module": DEMO.module,
        "version": DEMO.version,
        "packages": DEMO.packages,
        "ldflags": DEMO.ldflags,
        "local_replace_version": DEMO.local_replace_version,
        "crd_dir": DEMO.crd_dir,
        "recipe": 1,
    }
    assert recipe_key(DEMO) == hashlib.sha256(json.dumps(before, sort_keys=True).encode()).hexdigest()[:10]


def test_build_args_pass_the_tags_and_the_release_ldflags() -> None:
    tagged = dataclasses.replace(DEMO, tags=("remove_all_sd", "enable_dns_sd"), ldflags=("-X main.v=1",))
    assert build_args(tagged) == [
        "build", "-trimpath", "-tags", "remove_all_sd,enable_dns_sd", "-ldflags", "-s -w -X main.v=1"
    ]  # fmt: skip
    assert "-tags" not in build_args(DEMO)


def test_prometheus_drops_the_optional_service_discoveries_and_kubernetes_uses_its_release_tags() -> None:
    for name in ("prometheus", "prometheus-server"):
        assert component(name).tags == ("remove_all_sd",)
    assert component("kubernetes").tags == ("selinux", "notest", "grpcnotrace")


# -- Go's caches -----------------------------------------------------------------------------------------


def test_go_caches_default_to_the_cache_root(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOCACHE", raising=False)
    monkeypatch.setenv("GOMODCACHE", "")  # empty is unset, as for go itself
    assert go_caches() == {"GOCACHE": cache / "go" / "build", "GOMODCACHE": cache / "go" / "mod"}
    env = _go_env()
    assert env["GOCACHE"] == str(cache / "go" / "build") and env["GOMODCACHE"] == str(cache / "go" / "mod")
    assert env["GOFLAGS"].split() == ["-mod=mod", "-modcacherw"]  # the cache root can be deleted with rm -r


def test_go_caches_set_in_the_environment_are_honoured(
    cache: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GOCACHE", str(tmp_path / "gocache"))
    monkeypatch.setenv("GOMODCACHE", str(tmp_path / "gomod"))
    env = _go_env()
    assert env["GOCACHE"] == str(tmp_path / "gocache") and env["GOMODCACHE"] == str(tmp_path / "gomod")


def test_the_cache_size_line_names_each_part_and_its_size(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOCACHE", raising=False)
    monkeypatch.delenv("GOMODCACHE", raising=False)
    (cache / "upstream" / "demo" / "bin").mkdir(parents=True)
    with (cache / "upstream" / "demo" / "bin" / "demo").open("wb") as binary:
        binary.truncate(260_000_000)  # sparse: its size without writing it
    (cache / "go" / "mod").mkdir(parents=True)
    assert cache_size_line() == (
        f"cache {cache}: components 0.3 GB ({cache / 'upstream'}), GOCACHE 0.0 GB ({cache / 'go' / 'build'}), "
        f"GOMODCACHE 0.0 GB ({cache / 'go' / 'mod'})"
    )


def test_component_dir_is_under_the_cache_and_names_component_version_and_key(cache: Path) -> None:
    directory = component_dir(DEMO)
    assert directory.parent == cache / "upstream"
    assert directory.name == f"demo-v1.2.3-{recipe_key(DEMO)}"


def fill(directory: Path, stamp: str | None, binaries: tuple[str, ...]) -> None:
    (directory / "bin").mkdir(parents=True, exist_ok=True)
    for name in binaries:
        (directory / "bin" / name).write_text("#!/bin/sh\n")
    if stamp is not None:
        (directory / STAMP).write_text(stamp)


@pytest.mark.parametrize(
    ("stamp", "binaries"),
    [
        (None, ("demo", "democtl")),
        ('{"seconds": 3}', ("demo",)),
        ('{"seconds": 3}', ()),
        ("not json", ("demo", "democtl")),
    ],
    ids=["no-stamp", "one-binary-missing", "no-binaries", "corrupt-stamp"],
)
def test_cached_is_none_for_a_half_built_directory(cache: Path, stamp: str | None, binaries: tuple[str, ...]) -> None:
    fill(component_dir(DEMO), stamp, binaries)
    assert cached(DEMO) is None


def test_cached_finds_a_complete_build_with_its_binaries_and_crds(cache: Path) -> None:
    directory = component_dir(DEMO)
    fill(directory, json.dumps({"seconds": 12.5}), ("demo", "democtl"))
    (directory / "crds").mkdir()
    for name in ("b.yaml", "a.yaml", "notes.txt"):
        (directory / "crds" / name).write_text("")
    done = cached(DEMO)
    assert done is not None
    assert done.seconds == 12.5 and done.directory == directory
    assert done.binary("demo") == directory / "bin" / "demo"
    assert [p.name for p in done.crds] == ["a.yaml", "b.yaml"]


def test_a_pin_change_makes_the_old_build_invisible(cache: Path) -> None:
    fill(component_dir(DEMO), "{}", ("demo", "democtl"))
    assert cached(DEMO) is not None
    assert cached(dataclasses.replace(DEMO, version="v1.2.4")) is None


def test_require_of_a_cluster_component_names_the_build_command_and_the_cache(cache: Path) -> None:
    with pytest.raises(UserError) as info:
        require("etcd")
    message = str(info.value)
    assert "etcd" in message and "run `resilience build` (or `make setup`)" in message
    assert str(cache) in message and "\n" not in message


def test_require_builds_a_component_no_cluster_needs_on_first_use(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """promtool is not part of a cluster: the first test that needs it builds it, with the usual progress."""
    built: list[str] = []

    def fake_build(comp: GoComponent, go: str, log_dir: Path) -> Any:
        built.append(comp.name)
        fill(component_dir(comp), json.dumps({"seconds": 3.0}), tuple(comp.packages))
        return cached(comp)

    monkeypatch.setattr(build_mod, "build_component", fake_build)
    monkeypatch.setattr(build_mod, "go_executable", lambda: "go")
    lines: list[str] = []
    done = require("prometheus", progress=lines.append)
    assert built == ["prometheus"] and done.binary("promtool").is_file()
    assert lines[0].startswith("[1/1] prometheus ") and "building (log: " in lines[0]
    assert lines[1].endswith("built in 3s")
    assert require("prometheus", progress=lines.append) == done and built == ["prometheus"]


def test_build_for_a_purpose_adds_its_components_to_the_cluster_ones(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for comp in COMPONENTS:
        fill(component_dir(comp), "{}", tuple(comp.packages))
    cluster = [b.component.name for b in build(progress=lambda _line: None)]
    tests = [b.component.name for b in build(purpose="test", progress=lambda _line: None)]
    assert "prometheus" not in cluster and "actionlint" not in cluster and "etcd" in cluster
    assert tests == [*cluster, "prometheus", "prometheus-server", "alertmanager", "actionlint"]
    chaos = [b.component.name for b in build(purpose="chaos", progress=lambda _line: None)]
    assert chaos == [*cluster, "prometheus", "prometheus-server", "alertmanager"]
    with pytest.raises(UserError, match=r"--for 'nope': unknown purpose; choose one of cluster, test, chaos"):
        build(purpose="nope", progress=lambda _line: None)


def test_build_with_unknown_components_lists_the_known_ones(cache: Path) -> None:
    with pytest.raises(UserError) as info:
        build(["etcd", "nope", "kubectl"], progress=lambda _line: None)
    message = str(info.value)
    assert message.startswith("unknown component(s) kubectl, nope: choose from ")
    for c in COMPONENTS:
        assert c.name in message
    assert not (cache / "logs").exists() or not any((cache / "logs").iterdir())


def test_go_executable_missing_is_a_user_error_naming_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RESILIENCE_GO", str(tmp_path / "no-such-go"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(UserError, match="RESILIENCE_GO=/path/to/go"):
        go_executable()


# -- explaining failures ---------------------------------------------------------------------------------

OFFLINE = (
    "go: downloading example.com/demo v1.2.3\n"
    'go: example.com/demo@v1.2.3: Get "https://proxy.golang.org/example.com/demo/@v/v1.2.3.info":\n'
    "dial tcp: lookup proxy.golang.org on 127.0.0.53:53: no such host\n"
)
COMPILE = (
    "go: downloading example.com/demo v1.2.3\n"
    "# example.com/demo/cmd/demo\n"
    "./main.go:10:2: undefined: foo\n"
    "./main.go:11:2: undefined: bar\n"
)


@pytest.mark.parametrize(
    "marker",
    [
        "dial tcp 1.2.3.4:443: i/o timeout",
        "proxyconnect tcp: refused",
        "Temporary failure in name resolution",
        "lookup proxy.golang.org: no such host",
        "connect: network is unreachable",
    ],
)
def test_network_errors_are_user_errors_naming_goproxy(
    marker: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GOPROXY", "https://goproxy.example,direct")
    error = _explain(DEMO, f"go: something\n{marker}\n", tmp_path / "demo.log")
    assert isinstance(error, UserError)
    message = str(error)
    assert message.startswith(
        "demo v1.2.3: the Go module proxy is unreachable (GOPROXY=https://goproxy.example,direct)"
    )
    assert marker in message and str(tmp_path / "demo.log") in message and "\n" not in message


def test_network_error_without_goproxy_names_the_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("GOPROXY", raising=False)
    error = _explain(DEMO, OFFLINE, tmp_path / "demo.log")
    assert isinstance(error, UserError)
    assert "GOPROXY=https://proxy.golang.org,direct" in str(error)


def test_compile_errors_are_harness_errors_with_the_last_lines_and_the_log(tmp_path: Path) -> None:
    error = _explain(DEMO, COMPILE, tmp_path / "demo.log")
    assert type(error) is HarnessError
    assert str(error) == (
        "demo v1.2.3: build failed: # example.com/demo/cmd/demo | ./main.go:10:2: undefined: foo | "
        f"./main.go:11:2: undefined: bar (full log: {tmp_path / 'demo.log'})"
    )


# -- build_component and build with a fake go ------------------------------------------------------------

FAKE_GO = """#!{python}
import json, os, sys
from pathlib import Path
args = sys.argv[1:]
mode = os.environ["FAKE_GO_MODE"]
Path(os.environ["FAKE_GO_CALLS"]).open("a").write(" ".join(args) + "\\n")
caches = os.environ["GOCACHE"] + " " + os.environ["GOMODCACHE"]
Path(os.environ["FAKE_GO_CALLS"] + ".env").open("a").write(caches + "\\n")
upstream = Path(os.environ["FAKE_GO_UPSTREAM"])
if args[:3] == ["mod", "download", "-json"]:
    if mode == "offline":
        print(json.dumps({{"Path": "example.com/demo", "Error": {offline!r}}}))
        sys.exit(1)
    print(json.dumps({{"Path": "example.com/demo", "GoMod": str(upstream / "go.mod"), "Dir": str(upstream)}}))
elif args[:3] == ["mod", "edit", "-json"]:
    print(json.dumps({{"Go": "1.25.0", "Require": [{{"Path": "example.com/demo/api", "Version": "v1.2.3"}}],
                      "Replace": [{{"Old": {{"Path": "example.com/demo/api"}}, "New": {{"Path": "./api"}}}}]}}))
elif args[0] == "build":
    if mode == "compile-error" and args[-1].endswith("democtl"):
        sys.stderr.write({compile!r})
        sys.exit(1)
    out = Path(args[args.index("-o") + 1])
    out.write_text("go.mod:\\n" + Path("go.mod").read_text())
else:
    sys.exit("unexpected: " + " ".join(args))
"""


@pytest.fixture
def fake_go(cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    upstream = tmp_path / "upstream"
    (upstream / "config" / "crd" / "bases").mkdir(parents=True)
    for name in ("demo.example.com_widgets.yaml", "kustomization.yaml"):
        (upstream / "config" / "crd" / "bases" / name).write_text("kind: CustomResourceDefinition\n")
    go = tmp_path / "go"
    go.write_text(FAKE_GO.format(python=sys.executable, offline=OFFLINE, compile=COMPILE))
    go.chmod(0o755)
    monkeypatch.setenv("FAKE_GO_MODE", "ok")
    monkeypatch.setenv("FAKE_GO_CALLS", str(tmp_path / "calls"))
    monkeypatch.setenv("FAKE_GO_UPSTREAM", str(upstream))
    monkeypatch.setenv("RESILIENCE_GO", str(go))
    monkeypatch.delenv("GOPROXY", raising=False)
    monkeypatch.setattr(build_mod, "COMPONENTS", (DEMO,))
    return go


def leftovers(cache: Path) -> list[str]:
    upstream = cache / "upstream"
    return sorted(p.name for p in upstream.iterdir() if not p.name.endswith(".lock")) if upstream.exists() else []


@pytest.mark.process
def test_build_component_lands_binaries_crds_and_stamp(fake_go: Path, cache: Path) -> None:
    logs = cache / "logs"
    logs.mkdir(parents=True)
    done = build_component(DEMO, str(fake_go), logs)
    assert done.directory == component_dir(DEMO)
    assert cached(DEMO) is not None
    built = done.binary("demo").read_text()
    assert "module resilience.build/demo" in built and "require example.com/demo/api v1.2.3" in built
    assert [p.name for p in done.crds] == ["demo.example.com_widgets.yaml"]
    assert json.loads((done.directory / STAMP).read_text())["component"] == "demo"
    assert leftovers(cache) == [done.directory.name]
    assert "$ go build" in (logs / "demo.log").read_text()


@pytest.mark.process
def test_build_shows_progress_and_a_second_run_is_a_no_op(fake_go: Path, cache: Path, tmp_path: Path) -> None:
    lines: list[str] = []
    first = build(["demo"], progress=lines.append)
    assert [d.component for d in first] == [DEMO]
    assert lines[0].startswith("[1/1] demo v1.2.3: building (log: ") and lines[1].startswith("[1/1] demo v1.2.3: built")
    calls = (tmp_path / "calls").read_text()
    lines.clear()
    fake_go.unlink()  # a cached build needs no toolchain
    second = build(["demo"], progress=lines.append)
    assert lines == ["[1/1] demo v1.2.3: cached"]
    assert second[0].directory == first[0].directory
    assert (tmp_path / "calls").read_text() == calls


@pytest.mark.process
def test_a_build_passes_the_tags_and_shares_go_caches_in_the_cache_root(
    fake_go: Path, cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GOCACHE", raising=False)
    monkeypatch.delenv("GOMODCACHE", raising=False)
    tagged = dataclasses.replace(DEMO, tags=("remove_all_sd",))
    monkeypatch.setattr(build_mod, "COMPONENTS", (tagged,))
    lines: list[str] = []
    build(["demo"], progress=lines.append)
    builds = [line for line in (tmp_path / "calls").read_text().splitlines() if line.startswith("build ")]
    assert len(builds) == 2 and all(
        line.startswith("build -trimpath -tags remove_all_sd -ldflags -s -w -o ") for line in builds
    )
    assert set((tmp_path / "calls.env").read_text().splitlines()) == {
        f"{cache / 'go' / 'build'} {cache / 'go' / 'mod'}"
    }
    assert lines[-1].startswith(f"cache {cache}: components ")


@pytest.mark.process
def test_an_unreachable_proxy_is_a_user_error_and_leaves_nothing_behind(
    fake_go: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_GO_MODE", "offline")
    with pytest.raises(UserError) as info:
        build(["demo"], progress=lambda _line: None)
    message = str(info.value)
    assert "demo v1.2.3: the Go module proxy is unreachable" in message and "no such host" in message
    assert str(cache / "logs" / "demo.log") in message
    assert cached(DEMO) is None and leftovers(cache) == []


@pytest.mark.process
def test_a_compile_error_is_a_harness_error_and_no_half_build_is_cached(
    fake_go: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_GO_MODE", "compile-error")
    with pytest.raises(HarnessError) as info:
        build(["demo"], progress=lambda _line: None)
    assert type(info.value) is HarnessError
    assert "undefined: bar" in str(info.value) and f"(full log: {cache / 'logs' / 'demo.log'})" in str(info.value)
    assert "undefined: bar" in (cache / "logs" / "demo.log").read_text()
    assert cached(DEMO) is None and leftovers(cache) == []


def test_the_real_pins_all_have_distinct_cache_directories(cache: Path) -> None:
    assert len({component_dir(c) for c in COMPONENTS}) == len(COMPONENTS)
    assert component("kubernetes").local_replace_version == "v0." + component("kubernetes").version.split(".", 1)[1]
