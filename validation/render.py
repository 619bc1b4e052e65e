"""Builds kustomization roots with kubectl's embedded kustomize: many roots per process, never online.

One `kubectl kustomize` costs ~50-80 ms to start, so roots are built in batches: a generated parent
kustomization lists them, separated by marker objects, with fifo order and origin annotations, so one
process renders a whole batch and every object comes back with its root and its source file. A failing
batch is split in halves until the failing root stands alone; that one is rebuilt on its own so the
message is exactly what `kubectl kustomize ROOT` says. Every root must come back after its marker, so a
program that exits 0 without building is refused, never taken for a clean build. Remote bases are refused
before this (tree.py); the environment also points every proxy at a closed port so nothing can hang on the
network. Each kubectl runs in its own process group, so cancel() (on a signal) kills it with its children.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from foundation.errors import UserError
from foundation.processes import kill_group
from validation.tree import KUSTOMIZATION_FILES, Loader

ORIGIN_ANNOTATION = "config.kubernetes.io/origin"
_MARKER_NAMESPACE = "gitops-resilience-marker"
_OFFLINE_ENV = {
    "HTTP_PROXY": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "ALL_PROXY": "http://127.0.0.1:9",
    "NO_PROXY": "",
    "GIT_ALLOW_PROTOCOL": "file",
    "GIT_TERMINAL_PROMPT": "0",
}
_KLOG_ERR = re.compile(r'err="(.*)"\s*$', re.DOTALL)


@dataclass(frozen=True)
class Rendered:
    """One rendered object, the file it came from, and its unit (the root built, or the plain manifest)."""

    obj: dict[str, Any]
    file: Path
    unit: Path


@dataclass
class RootResult:
    """The objects of one root, or kustomize's error message."""

    root: Path
    objects: list[Rendered]
    error: str = ""


class Cancelled(Exception):
    """Raised in a build worker once the build is cancelled: it starts nothing more."""


class Kustomize:
    """Runs kubectl's kustomize over batches of roots, in parallel; cancel() stops it at once."""

    def __init__(self, kubectl: str = "kubectl", jobs: int | None = None, timeout: float = 300.0) -> None:
        self.kubectl = kubectl
        self.jobs = max(1, jobs or min(os.cpu_count() or 1, 8))
        self.timeout = timeout
        self.processes = 0
        self._lock = threading.Lock()
        self._children: set[subprocess.Popen[str]] = set()
        self._cancelled = False

    def check(self) -> None:
        """UserError unless kubectl can be run."""
        if shutil.which(self.kubectl) is None:
            problem = "not an executable file" if os.sep in self.kubectl else "not found on PATH"
            raise UserError(
                f"{self.kubectl or repr(self.kubectl)}: {problem}; install kubectl >= 1.27 (it embeds kustomize v5) "
                "or pass --kubectl /path/to/kubectl"
            )

    def build(self, roots: Sequence[Path]) -> dict[Path, RootResult]:
        """Render every root; each result has its objects or its error."""
        if not roots:
            return {}
        self.check()
        size = -(-len(roots) // self.jobs)
        chunks = [list(roots[i : i + size]) for i in range(0, len(roots), size)]
        results: dict[Path, RootResult] = {}
        with (
            tempfile.TemporaryDirectory(prefix="resilience-kustomize-") as tmp,
            ThreadPoolExecutor(max_workers=len(chunks)) as pool,
        ):
            try:
                for part in pool.map(lambda c: self._build_group(c, Path(tmp)), chunks):
                    results.update(part)
            except BaseException:
                self.cancel()  # before the pool waits for its workers: none may start another kubectl
                raise
        return results

    def cancel(self) -> None:
        """Start no more kubectl and kill the running ones (with whatever they started)."""
        with self._lock:
            self._cancelled = True
            for proc in self._children:
                kill_group(proc.pid, signal.SIGKILL)

    def _build_group(self, roots: list[Path], tmp: Path) -> dict[Path, RootResult]:
        built = self._build_batch(roots, tmp)
        if not isinstance(built, str):
            return built
        if len(roots) == 1:
            return {roots[0]: self._build_alone(roots[0], built)}
        half = len(roots) // 2
        return {**self._build_group(roots[:half], tmp), **self._build_group(roots[half:], tmp)}

    def _build_batch(self, roots: list[Path], tmp: Path) -> dict[Path, RootResult] | str:
        """All roots in one process, or kustomize's error (some root is broken, or two collide)."""
        batch = Path(tempfile.mkdtemp(dir=tmp))
        token = uuid.uuid4().hex[:12]
        resources: list[str] = []
        for i, root in enumerate(roots):
            marker = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": f"m-{token}-{i}", "namespace": _MARKER_NAMESPACE},
            }
            (batch / f"m{i}.yaml").write_text(yaml.safe_dump(marker), encoding="utf-8")
            resources += [f"m{i}.yaml", os.path.relpath(root, batch)]
        parent = {
            "sortOptions": {"order": "fifo"},
            "buildMetadata": ["originAnnotations"],
            "resources": resources,
        }
        (batch / "kustomization.yaml").write_text(yaml.safe_dump(parent), encoding="utf-8")
        ok, output = self._run(batch)
        return self._split(output, roots, token, batch) if ok else output

    def _split(self, output: str, roots: list[Path], token: str, batch: Path) -> dict[Path, RootResult]:
        """A batch's output cut at its markers, which every root must come back after, in order.

        A program that exits 0 without them built nothing, and its silence must never pass as clean.
        """
        results: dict[Path, RootResult] = {}
        current: Path | None = None
        for doc in self._documents(output):
            if _is_marker(doc, f"m-{token}-{len(results)}"):
                current = roots[len(results)]
                results[current] = RootResult(current, [])
            elif current is None:
                raise self._not_kustomize("its output does not start with the first root's objects")
            else:
                origin = _pop_origin(doc)
                results[current].objects.append(Rendered(doc, _origin_file(origin, batch, current), current))
        if len(results) < len(roots):
            came = f"returned {len(results)} of the {len(roots)} roots it was asked to build"
            raise self._not_kustomize(came if output.strip() else "printed nothing")
        return results

    def _build_alone(self, root: Path, batch_error: str) -> RootResult:
        """One root exactly as `kubectl kustomize ROOT` builds it; objects attributed to its kustomization.

        It failed in a batch, so an empty success here cannot be trusted: the batch's error stands.
        """
        ok, output = self._run(root)
        if not ok:
            return RootResult(root, [], output)
        kfile = kustomization_file(root)
        docs = self._documents(output)
        if not docs:
            return RootResult(root, [], f"it builds to nothing alone, yet fails with other roots: {batch_error}")
        return RootResult(root, [Rendered(d, kfile, root) for d in docs])

    def _documents(self, output: str) -> list[dict[str, Any]]:
        """The mappings of kustomize's YAML output; UserError if it is not YAML (not kustomize)."""
        try:
            return [d for d in yaml.load_all(output, Loader=Loader) if isinstance(d, dict)]
        except yaml.YAMLError:
            raise self._not_kustomize("its output is not YAML") from None

    def _not_kustomize(self, what: str) -> UserError:
        return UserError(
            f"{self.kubectl}: `{self.kubectl} kustomize DIR` exited 0 but {what}, so it is not kubectl's "
            "kustomize; pass --kubectl /path/to/kubectl (>= 1.27)"
        )

    def _run(self, directory: Path) -> tuple[bool, str]:
        """`kubectl kustomize DIRECTORY`: whether it succeeded, and its output or its error message."""
        proc = self._start(directory)
        try:
            stdout, stderr = proc.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            kill_group(proc.pid, signal.SIGKILL)
            proc.communicate()
            return False, f"kustomize did not finish within {self.timeout:.0f} s"
        finally:
            with self._lock:
                self._children.discard(proc)
        if self._cancelled:
            raise Cancelled
        if proc.returncode != 0:
            return False, clean_error(stderr) or f"kubectl kustomize exited {proc.returncode}"
        return True, stdout

    def _start(self, directory: Path) -> subprocess.Popen[str]:
        """A kubectl in its own process group (so cancel() kills what it starts too), unless cancelled."""
        with self._lock:
            if self._cancelled:
                raise Cancelled
            try:
                proc = subprocess.Popen(
                    [self.kubectl, "kustomize", str(directory)],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    encoding="utf-8",
                    errors="replace",  # a message may quote a file name that is not UTF-8
                    env={**os.environ, **_OFFLINE_ENV},
                    start_new_session=True,
                )
            except OSError as e:
                raise UserError(f"{self.kubectl}: cannot run ({e}); install kubectl or pass --kubectl") from None
            self._children.add(proc)
            self.processes += 1
            return proc


def kustomization_file(directory: Path) -> Path:
    """The kustomization file of a directory (kustomization.yaml if none exists)."""
    return next(
        (directory / n for n in KUSTOMIZATION_FILES if (directory / n).is_file()),
        directory / KUSTOMIZATION_FILES[0],
    )


def clean_error(stderr: str) -> str:
    """kustomize's message without kubectl's klog prefix, on one line."""
    text = stderr.strip()
    match = _KLOG_ERR.search(text)
    if match:
        text = match.group(1).replace('\\"', '"')
    return " ".join(text.replace("Error: ", "", 1).split())


def _is_marker(doc: dict[str, Any], name: str) -> bool:
    meta = doc.get("metadata")
    return isinstance(meta, dict) and meta.get("namespace") == _MARKER_NAMESPACE and meta.get("name") == name


def _pop_origin(doc: dict[str, Any]) -> Mapping[str, Any]:
    meta = doc.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, dict) else None
    if not isinstance(annotations, dict) or ORIGIN_ANNOTATION not in annotations:
        return {}
    raw = annotations.pop(ORIGIN_ANNOTATION)
    if not annotations:
        del meta["annotations"]  # type: ignore[union-attr]
    try:
        origin = yaml.load(str(raw), Loader=Loader)  # noqa: S506 - Loader is (C)SafeLoader
    except yaml.YAMLError:
        return {}
    return origin if isinstance(origin, dict) else {}


def _origin_file(origin: Mapping[str, Any], batch: Path, root: Path) -> Path:
    """The file an origin annotation names (relative to the batch), else the root's kustomization."""
    rel = origin.get("path") or origin.get("configuredIn")
    if isinstance(rel, str) and not origin.get("repo"):
        return Path(os.path.normpath(batch / rel))
    return kustomization_file(root)
