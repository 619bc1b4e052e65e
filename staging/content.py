"""The files of a revision, as Flux itself gets them: source-controller's artifact, unpacked once per commit.

Validation checks build what a stage would apply at revision R before any stage applies it, so the controller
needs R's files. Every revision that enters the pipeline is first the head GitRepository's artifact (and later
a stage source's), so it is downloaded from there, its digest checked, and kept unpacked under its commit; the
same credentials Flux uses fetched it, so the controller needs no Git access of its own. A handful of commits
are kept; a revision no source holds any more is reported as not available (the check waits).
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
import tempfile
import threading
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from fluxmodel.conditions import revision_commit

KEEP = 8  # unpacked commits kept
MAX_BYTES = 256 * 1024 * 1024  # an artifact larger than this is refused (a tarball bomb, or not ours)
Fetch = Callable[[str], bytes]


class ArtifactError(Exception):
    """An artifact could not be fetched, did not match its digest, or is not a safe tarball."""


def fetch_url(url: str) -> bytes:
    """GET an artifact URL (SOURCE_CONTROLLER_LOCALHOST replaces its host, as Flux's controllers do)."""
    override = os.environ.get("SOURCE_CONTROLLER_LOCALHOST")
    if override:
        url = urllib.parse.urlsplit(url)._replace(netloc=override).geturl()
    if not url.startswith(("http://", "https://")):
        raise ArtifactError(f"artifact URL {url!r} is not http(s)")
    with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - the scheme is checked above
        data: bytes = response.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise ArtifactError(f"artifact {url} is larger than {MAX_BYTES} bytes")
    return data


class Artifacts:
    """Unpacked artifacts by commit under `root`; thread-safe."""

    def __init__(self, root: Path | None = None, fetch: Fetch = fetch_url, keep: int = KEEP):
        self._root = root
        self.fetch = fetch
        self.keep = keep
        self.downloads = 0
        self._lock = threading.Lock()
        self._order: list[str] = []

    @property
    def root(self) -> Path:
        """Created on first use: a controller whose stages have no validation checks never downloads anything."""
        if self._root is None:
            self._root = Path(tempfile.mkdtemp(prefix="gitops-resilience-stages-"))
        self._root.mkdir(parents=True, exist_ok=True)
        return self._root

    def tree(self, revision: str, sources: Iterable[dict[str, Any]]) -> Path | None:
        """The unpacked files of `revision`, from the first source whose artifact is that revision; None when none
        holds it. ArtifactError when the one that does cannot be used."""
        commit = revision_commit(revision)
        if commit is None:
            return None
        with self._lock:
            path = self.root / commit
            if path.is_dir():
                return path
            artifact = next(
                (
                    a
                    for a in (((s.get("status") or {}).get("artifact") or {}) for s in sources)
                    if a.get("revision") == revision and a.get("url")
                ),
                None,
            )
            if artifact is None:
                return None
            data = self.fetch(str(artifact["url"]))
            self.downloads += 1
            _verify(data, str(artifact.get("digest") or ""), str(artifact["url"]))
            staging = Path(tempfile.mkdtemp(dir=self.root, prefix=".unpack-"))
            try:
                _unpack(data, staging)
                staging.rename(path)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
            self._order.append(commit)
            for old in self._order[: -self.keep]:
                shutil.rmtree(self.root / old, ignore_errors=True)
            del self._order[: -self.keep]
            return path

    def close(self) -> None:
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)


def _verify(data: bytes, digest: str, url: str) -> None:
    algorithm, _, expected = digest.partition(":")
    if not expected:
        return  # older source-controllers published no digest
    if algorithm not in ("sha256", "sha384", "sha512"):
        raise ArtifactError(f"artifact {url}: unknown digest algorithm {algorithm!r}")
    actual = hashlib.new(algorithm, data).hexdigest()
    if actual != expected:
        raise ArtifactError(f"artifact {url}: digest {algorithm}:{actual} is not the advertised {digest}")


def _unpack(data: bytes, into: Path) -> None:
    """Regular files and directories only, each inside `into` (no links, devices or absolute paths)."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
            for member in archive.getmembers():
                target = (into / member.name).resolve()
                if into.resolve() not in (target, *target.parents) or not (member.isfile() or member.isdir()):
                    raise ArtifactError(f"artifact member {member.name!r} is not a plain file inside the archive")
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                source = archive.extractfile(member)
                if source is None:
                    raise ArtifactError(f"artifact member {member.name!r} cannot be read")
                with source, target.open("wb") as out:
                    shutil.copyfileobj(source, out)
    except tarfile.TarError as e:
        raise ArtifactError(f"artifact is not a tarball: {e}") from e
