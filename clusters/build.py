"""Build the pinned upstream releases from the Go module proxy into a per-user cache.

No release binary or image can be downloaded on the machines this runs on, only Go modules. Each component is
built from a generated wrapper module that requires the upstream module at its pin and mirrors the upstream
go.mod's replace directives (local ones resolved to proxy versions), so `go build <package>` compiles exactly
the upstream build list. A component lands in the cache by an atomic rename, so an interrupted or failed build
never leaves a half-written binary; a stamp file makes the second run a no-op. Unless GOCACHE / GOMODCACHE are
set, Go's build and module caches live in the same cache root (go/build, go/mod), so one component reuses the
packages another compiled and one directory holds everything a CI cache needs to keep.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clusters.paths import cache_root
from clusters.pins import COMPONENTS, PURPOSES, GoComponent, components_for
from foundation.errors import HarnessError, UserError

STAMP = "build.json"
# Words in `go` output that mean the module proxy could not be reached, as opposed to a compile error.
_NETWORK_MARKERS = (
    "dial tcp",
    "no such host",
    "connection refused",
    "i/o timeout",
    "proxyconnect",
    "TLS handshake timeout",
    "network is unreachable",
    "Temporary failure in name resolution",
)


@dataclass(frozen=True)
class BuiltComponent:
    """A component present in the cache: where its binaries and CRDs are."""

    component: GoComponent
    directory: Path
    seconds: float

    def binary(self, name: str) -> Path:
        return self.directory / "bin" / name

    @property
    def crds(self) -> list[Path]:
        return sorted((self.directory / "crds").glob("*.yaml"))


def recipe_key(component: GoComponent) -> str:
    """A short hash of what changes the build (not the Go version: built binaries stay valid)."""
    recipe = {
        "module": component.module,
        "version": component.version,
        "packages": component.packages,
        "ldflags": component.ldflags,
        "local_replace_version": component.local_replace_version,
        "crd_dir": component.crd_dir,
        "recipe": 1,
    }
    if component.tags:  # only when set, so adding the field kept the cached builds of untagged components
        recipe["tags"] = component.tags
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:10]


def cache_key(purpose: str | None = None) -> str:
    """A CI cache key for the built components a purpose needs: it changes exactly when a pin or a build recipe
    does (and differs between operating systems and architectures), so CI rebuilds only then."""
    if purpose is not None and purpose not in PURPOSES:
        raise UserError(f"--for {purpose!r}: unknown purpose; choose one of {', '.join(PURPOSES)}")
    recipes = sorted(f"{c.name}-{c.version}-{recipe_key(c)}" for c in components_for(purpose or "cluster"))
    digest = hashlib.sha256(json.dumps(recipes).encode()).hexdigest()[:16]
    return f"gitops-resilience-upstream-{sys.platform}-{platform.machine()}-{digest}"


def component_dir(component: GoComponent) -> Path:
    return cache_root() / "upstream" / f"{component.name}-{component.version}-{recipe_key(component)}"


def cached(component: GoComponent) -> BuiltComponent | None:
    """The cached build of a component, or None when it has not been built (or was built only halfway)."""
    directory = component_dir(component)
    try:
        stamp = json.loads((directory / STAMP).read_text())
    except (OSError, ValueError):
        return None
    if not all((directory / "bin" / name).is_file() for name in component.packages):
        return None
    return BuiltComponent(component, directory, float(stamp.get("seconds", 0.0)))


def go_executable() -> str:
    """The Go toolchain to build with: $RESILIENCE_GO or `go` on PATH."""
    go = os.environ.get("RESILIENCE_GO") or shutil.which("go")
    if not go or not Path(go).exists():
        raise UserError(
            "Go toolchain not found (no `go` on PATH): install Go >= 1.26 or set RESILIENCE_GO=/path/to/go; "
            "it builds the pinned Kubernetes and Flux releases"
        )
    return go


def go_caches() -> dict[str, Path]:
    """Go's build and module caches: GOCACHE / GOMODCACHE when set, else beside the built components."""
    defaults = {"GOCACHE": cache_root() / "go" / "build", "GOMODCACHE": cache_root() / "go" / "mod"}
    return {name: Path(os.environ.get(name) or default) for name, default in defaults.items()}


def _go_env(workdir: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("GOTOOLCHAIN", "local")
    env.update({name: str(path) for name, path in go_caches().items()})
    env["CGO_ENABLED"] = "0"
    # -modcacherw: a module cache inside the cache root can be deleted with it (rm -r, a CI cache).
    env["GOFLAGS"] = "-mod=mod -modcacherw"
    env.pop("GOWORK", None)
    if workdir is not None:
        env["PWD"] = str(workdir)
    return env


class _GoFailed(Exception):
    def __init__(self, output: str) -> None:
        super().__init__(output)
        self.output = output


def _run_go(go: str, args: Sequence[str], cwd: Path, log: Path) -> str:
    with log.open("a") as out:
        out.write(f"$ go {' '.join(args)}\n")
        out.flush()
        proc = subprocess.run([go, *args], cwd=cwd, env=_go_env(cwd), capture_output=True, text=True)
        out.write(proc.stderr)
        if proc.returncode != 0:
            # `go mod download -json` reports its error in the JSON on stdout.
            out.write(proc.stdout)
            raise _GoFailed(proc.stderr + _json_error(proc.stdout))
        return proc.stdout


def _json_error(stdout: str) -> str:
    try:
        return str(json.loads(stdout).get("Error") or "")
    except (ValueError, AttributeError):
        return ""


def _download(go: str, module: str, version: str, cwd: Path, log: Path) -> dict[str, Any]:
    info: dict[str, Any] = json.loads(_run_go(go, ["mod", "download", "-json", f"{module}@{version}"], cwd, log))
    if info.get("Error"):
        raise _GoFailed(str(info["Error"]))
    return info


def wrapper_go_mod(component: GoComponent, upstream: dict[str, Any]) -> str:
    """go.mod of the wrapper module, from the upstream go.mod as printed by `go mod edit -json`."""
    required = {r["Path"]: r["Version"] for r in upstream.get("Require") or []}
    lines = [f"module resilience.build/{component.name}", "", f"go {upstream['Go']}", ""]
    requires = [f"require {component.module} {component.version}"]
    replaces: list[str] = []
    for rep in upstream.get("Replace") or []:
        old, new = rep["Old"]["Path"], rep["New"]
        if new.get("Version"):
            # `replace m v1 => n v2` replaces only that version of m: keep the qualifier.
            old_version = rep["Old"].get("Version")
            qualified = f"{old} {old_version}" if old_version else old
            replaces.append(f"replace {qualified} => {new['Path']} {new['Version']}")
            continue
        # A local directory in the upstream repository: the same module from the proxy. A local replace of a
        # module the build does not require (etcd's FORBIDDEN_DEPENDENCY guards) has nothing to resolve.
        if old not in required:
            continue
        version = required[old]
        if version == "v0.0.0":
            if not component.local_replace_version:
                raise HarnessError(f"{component.name}: {old} is replaced locally at v0.0.0 and has no pinned version")
            version = component.local_replace_version
            replaces.append(f"replace {old} => {old} {version}")
        else:
            requires.append(f"require {old} {version}")
    return "\n".join(lines + requires + [""] + replaces) + "\n"


def build_args(component: GoComponent) -> list[str]:
    """`go build` and its flags for a component, as upstream's release builds: no symbols, its tags."""
    tags = ["-tags", ",".join(component.tags)] if component.tags else []
    return ["build", "-trimpath", *tags, "-ldflags", " ".join(("-s", "-w", *component.ldflags))]


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialise builds of one component across processes (parallel workers, CI)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _explain(component: GoComponent, output: str, log: Path) -> HarnessError | UserError:
    tail = " | ".join(line.strip() for line in output.strip().splitlines()[-3:])
    if any(marker in output for marker in _NETWORK_MARKERS):
        proxy = os.environ.get("GOPROXY", "https://proxy.golang.org,direct")
        return UserError(
            f"{component.name} {component.version}: the Go module proxy is unreachable (GOPROXY={proxy}): "
            f"{tail}; check the network or GOPROXY (log: {log})"
        )
    return HarnessError(f"{component.name} {component.version}: build failed: {tail} (full log: {log})")


def build_component(component: GoComponent, go: str, log_dir: Path) -> BuiltComponent:
    """Build one component into the cache (no-op when cached); raises UserError/HarnessError naming it."""
    final = component_dir(component)
    with _locked(final.with_name(final.name + ".lock")):
        done = cached(component)
        if done is not None:
            return done
        log = log_dir / f"{component.name}.log"
        log.write_text("")
        work = cache_root() / "work" / final.name
        staging = final.with_name(f"{final.name}.tmp-{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        work.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        try:
            info = _download(go, component.module, component.version, work, log)
            upstream = json.loads(_run_go(go, ["mod", "edit", "-json", info["GoMod"]], work, log))
            (work / "go.mod").write_text(wrapper_go_mod(component, upstream))
            (work / "go.sum").unlink(missing_ok=True)
            (staging / "bin").mkdir(parents=True)
            for binary, package in component.packages.items():
                _run_go(go, [*build_args(component), "-o", str(staging / "bin" / binary), package], work, log)
            if component.crd_dir:
                crds = staging / "crds"
                crds.mkdir()
                for src in sorted((Path(info["Dir"]) / component.crd_dir).glob("*.yaml")):
                    if src.name != "kustomization.yaml":
                        shutil.copyfile(src, crds / src.name)
            seconds = time.monotonic() - started
            stamp = {"component": component.name, "version": component.version, "seconds": round(seconds, 1)}
            (staging / STAMP).write_text(json.dumps(stamp, indent=2) + "\n")
            shutil.rmtree(final, ignore_errors=True)
            staging.rename(final)
        except _GoFailed as e:
            raise _explain(component, e.output, log) from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return BuiltComponent(component, final, seconds)


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def build(
    names: Sequence[str] | None = None,
    include_optional: bool = False,
    progress: Callable[[str], None] = _stderr,
    purpose: str | None = None,
) -> list[BuiltComponent]:
    """Build the selected components, showing progress per component.

    Default: what a cluster needs; `purpose` adds what that purpose needs (`make test` builds for "test");
    `include_optional` builds everything.
    """
    if names:
        unknown = sorted(set(names) - {c.name for c in COMPONENTS})
        if unknown:
            known = ", ".join(c.name for c in COMPONENTS)
            shown = ", ".join(repr(name) if not name.strip() else name for name in unknown)
            raise UserError(f"unknown component(s) {shown}: choose from {known}")
        wanted = [c for c in COMPONENTS if c.name in names]
    elif include_optional:
        wanted = list(COMPONENTS)
    else:
        if purpose is not None and purpose not in PURPOSES:
            raise UserError(f"--for {purpose!r}: unknown purpose; choose one of {', '.join(PURPOSES)}")
        wanted = list(components_for(purpose or "cluster"))
    go = ""
    log_dir = cache_root() / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    results: list[BuiltComponent] = []
    for index, component in enumerate(wanted, 1):
        prefix = f"[{index}/{len(wanted)}] {component.name} {component.version}"
        done = cached(component)
        if done is None:
            go = go or go_executable()
            progress(f"{prefix}: building (log: {log_dir / (component.name + '.log')})")
            done = build_component(component, go, log_dir)
            progress(f"{prefix}: built in {done.seconds:.0f}s")
        else:
            progress(f"{prefix}: cached")
        results.append(done)
    if go:  # something was built: say what the cache now holds (a cached run stays instant)
        progress(cache_size_line())
    return results


def _tree_bytes(root: Path) -> int:
    total = 0
    for directory, _dirs, files in os.walk(root):
        for name in files:
            try:
                total += (Path(directory) / name).lstat().st_size
            except OSError:
                continue
    return total


def cache_size_line() -> str:
    """What the cache holds, in GB: the built components, and Go's build and module caches where they are."""
    parts = {"components": cache_root() / "upstream", **go_caches()}
    sizes = ", ".join(f"{name} {_tree_bytes(path) / 1e9:.1f} GB ({path})" for name, path in parts.items())
    return f"cache {cache_root()}: {sizes}"


def require(name: str, progress: Callable[[str], None] = _stderr) -> BuiltComponent:
    """A built component. One a cluster does not need is built now, on first use (same progress lines); for a
    cluster component a UserError tells how to build it (a 15-minute build is not started behind `cluster up`)."""
    from clusters.pins import component

    comp = component(name)
    done = cached(comp)
    if done is None and comp.optional:
        (done,) = build([name], progress=progress)
    if done is None:
        raise UserError(
            f"{name} {comp.version} is not built yet: run `resilience build` (or `make setup`) first; "
            f"cache: {cache_root()}"
        )
    return done
