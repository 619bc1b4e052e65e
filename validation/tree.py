"""Reads a GitOps tree without building it: its kustomizations, what each references, and plain manifests.

Knowing the references lets validate refuse remote bases before kustomize could reach for the network,
build only the kustomizations nothing else includes (the roots), and tell which roots a changed file
feeds. Plain manifests outside any kustomization are what Flux applies through a generated one.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from foundation.errors import UserError
from validation.findings import display_path

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
# Entries that name other kustomization directories (or, for resources, manifest files).
_DIR_FIELDS = ("resources", "bases", "components", "generators", "transformers", "validators")
_MANIFEST_SUFFIXES = (".yaml", ".yml")
_CHART_FILE = "Chart.yaml"
_CHART_DIRS = ("templates", "charts")  # Go templates and subcharts of a Helm chart
_REMOTE = re.compile(
    r"^(?:[a-z][a-z0-9+.-]*://|git::|git@|[\w-]+(?:\.[\w-]+)+(?::\d+)?/)|[?&](?:ref|version|submodules|timeout)=",
    re.IGNORECASE,
)

Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass
class Kustomization:
    """One kustomization file and the local directories, files and remote, outside or missing entries it names."""

    dir: Path
    file: Path
    component: bool = False
    dirs: list[Path] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    remote: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)
    error: str = ""


@dataclass
class Tree:
    """The kustomizations and plain manifests under `scope`, a directory of the tree rooted at `top`."""

    top: Path
    scope: Path
    kustomizations: dict[Path, Kustomization]
    raw_files: list[Path]

    def roots(self) -> list[Path]:
        """Kustomizations nothing else includes (plus any only reachable through a reference cycle)."""
        referenced = {d for k in self.kustomizations.values() for d in k.dirs}
        buildable = [d for d, k in self.kustomizations.items() if not k.component]
        roots = [d for d in buildable if d not in referenced]
        reached: set[Path] = set()
        for root in roots:
            reached |= self.closure(root)
        roots += [d for d in buildable if d not in reached]
        return sorted(roots)

    def closure(self, directory: Path) -> set[Path]:
        """The directory and every local directory it includes, transitively: the inputs of its build."""
        seen = {directory}
        stack = [directory]
        while stack:
            k = self.kustomizations.get(stack.pop())
            for d in k.dirs if k else ():
                if d not in seen:
                    seen.add(d)
                    stack.append(d)
        return seen

    def problems(self, root: Path) -> list[Kustomization]:
        """Kustomizations in a root's closure that cannot be built here (remote, outside, missing, unreadable)."""
        found = (self.kustomizations.get(d) for d in sorted(self.closure(root)))
        return [k for k in found if k and (k.remote or k.outside or k.missing or k.error)]

    def relative(self, path: Path) -> str:
        """A path of this tree relative to its top, in posix form (as git names files)."""
        return path.relative_to(self.top).as_posix()


def is_remote(entry: str) -> bool:
    """Whether a kustomization entry names a remote base (git URL, host/path, http(s) file)."""
    return bool(_REMOTE.search(entry.strip()))


def load_yaml_file(path: Path) -> list[Any]:
    """Every document of a YAML file; UserError naming the file and the problem if it cannot be read."""
    if not path.is_file():  # a FIFO would block the read; a dangling link or a loop cannot be read
        raise UserError(
            f"{display_path(path)}: not a regular file (a dangling symlink, a symlink loop, a FIFO...); "
            "replace it with a YAML file or remove it"
        )
    try:
        text = path.read_text(encoding="utf-8")
        return [d for d in yaml.load_all(text, Loader=Loader) if d is not None]
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        problem = " ".join(str(e).split())
        if isinstance(e, yaml.MarkedYAMLError) and e.problem_mark is not None:
            mark = e.problem_mark
            problem = f"{e.problem or e.context} at line {mark.line + 1}, column {mark.column + 1}"
        raise UserError(
            f"{display_path(path)}: unreadable YAML ({problem}); fix the file or exclude it from the tree"
        ) from None


def scan(top: Path, scope: Path, *, strict: bool) -> Tree:
    """Read the tree under `scope`; strict: unreadable YAML is a UserError, else noted on the entry."""
    kustomizations: dict[Path, Kustomization] = {}
    raw: list[Path] = []
    for directory, files in _walk(scope):
        names = set(files)
        kfile = next((directory / n for n in KUSTOMIZATION_FILES if n in names), None)
        if kfile is not None:
            kustomizations[directory] = _read_kustomization(kfile, top, strict=strict)
        elif not any(p in kustomizations for p in (directory, *directory.parents)):
            raw += [directory / n for n in sorted(files) if n.endswith(_MANIFEST_SUFFIXES)]
    tree = Tree(top=top, scope=scope, kustomizations=kustomizations, raw_files=raw)
    if strict:
        for k in kustomizations.values():
            for f in k.files:
                load_yaml_file(f)
    return tree


def raw_objects(path: Path, *, strict: bool) -> list[dict[str, Any]]:
    """The Kubernetes objects of a plain manifest; files that are not manifests (CI configs...) give none."""
    try:
        docs = load_yaml_file(path)
    except UserError:
        if strict and (not path.is_file() or _looks_like_manifest(path)):
            raise
        return []
    return [d for d in docs if isinstance(d, dict) and d.get("apiVersion") and d.get("kind")]


def _looks_like_manifest(path: Path) -> bool:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return "apiVersion:" in text and "kind:" in text


def _walk(scope: Path) -> Iterator[tuple[Path, list[str]]]:
    """Directories below scope with their files, skipping hidden directories and Helm chart content.

    A directory with a Chart.yaml below the scope is a chart: Go templates and values, not manifests, so
    its subtree is skipped. When the scope itself is a chart (a repository that is also a chart), the user
    asked for this tree: only the chart's own templates/ and charts/ are skipped, not the GitOps tree.
    """
    for dirpath, dirnames, filenames in os.walk(scope, onerror=_unreadable):
        directory = Path(dirpath)
        chart = _CHART_FILE in filenames
        if chart and directory != scope:
            dirnames[:] = []
            continue
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and not (chart and d in _CHART_DIRS))
        yield directory, filenames


def _unreadable(error: OSError) -> None:
    """os.walk skips a directory it cannot list; validate must not pass a tree it did not read.

    A directory that does not exist (PATH absent from the staged index, say) simply holds nothing.
    """
    if isinstance(error, FileNotFoundError):
        return
    where = display_path(Path(error.filename)) if error.filename else "a directory"
    raise UserError(f"{where}: cannot be read ({error.strerror}); fix its permissions or move it out of the tree")


def _read_kustomization(path: Path, top: Path, *, strict: bool) -> Kustomization:
    k = Kustomization(dir=path.parent, file=path)
    try:
        docs = load_yaml_file(path)
    except UserError as e:
        if strict:
            raise
        k.error = str(e)
        return k
    spec: Any = docs[0] if docs else {}
    if not isinstance(spec, Mapping) or len(docs) > 1:
        problem = f"{display_path(path)}: not a kustomization (expected one YAML mapping); fix the file"
        if strict:
            raise UserError(problem)
        k.error = problem
        return k
    k.component = spec.get("kind") == "Component"
    for name in _DIR_FIELDS:
        for entry in _strings(spec.get(name)):
            _classify(k, entry, top, manifests=name == "resources")
    for entry in _strings(spec.get("patchesStrategicMerge")):
        _classify(k, entry, top, manifests=True)
    for patch in (*_mappings(spec.get("patches")), *_mappings(spec.get("patchesJson6902"))):
        if isinstance(patch.get("path"), str):
            _classify(k, patch["path"], top, manifests=True)
    return k


def _classify(k: Kustomization, entry: str, top: Path, *, manifests: bool) -> None:
    """Sort one entry into local dir, local manifest file, outside the repository, remote, or missing.

    A path outside `top` is not in Flux's source, nor in the base revision's checkout.
    """
    if "\n" in entry:  # an inline patch or transformer config, not a path
        return
    target = Path(os.path.normpath(k.dir / entry))
    if not target.is_relative_to(top):
        k.outside.append(entry)
        return
    try:
        is_dir, is_file = target.is_dir(), target.is_file()
    except OSError:  # a name too long for the filesystem, say: it cannot exist
        is_dir = is_file = False
    if is_dir:
        k.dirs.append(target)
    elif is_file:
        if manifests and target.suffix in _MANIFEST_SUFFIXES:
            k.files.append(target)
    elif is_remote(entry):
        k.remote.append(entry)
    else:
        k.missing.append(entry)


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _mappings(value: Any) -> list[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []
