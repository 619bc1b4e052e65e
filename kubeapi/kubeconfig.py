"""Kubeconfig files as kubectl reads them: one file, or a KUBECONFIG list merged with the first file winning.

The kubernetes client merges a list too, but lets the last file's current-context win and skips unreadable
entries silently; kubectl's rule is "the first file to set a value wins", and users expect the same context
from both. Every error names where the paths came from (`--kubeconfig X` or `KUBECONFIG=a:b`), so the user
fixes the flag or the variable that was actually used.
"""

from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes.client import Configuration
from kubernetes.config.config_exception import ConfigException
from kubernetes.config.kube_config import ConfigNode, KubeConfigLoader

_NAMED = ("clusters", "contexts", "users")


class KubeconfigError(ValueError):
    """The kubeconfig cannot be used; `context` is True when choosing another context is the fix."""

    def __init__(self, message: str, *, context: bool = False):
        super().__init__(message)
        self.context = context


@dataclass(frozen=True)
class Kubeconfig:
    """Kubeconfig file(s) and the words that named them (`origin`), for messages."""

    paths: tuple[Path, ...]
    origin: str

    @classmethod
    def file(cls, path: Path | str, origin: str | None = None) -> Kubeconfig:
        """One file (a flag's value is never split); `origin` defaults to the path itself."""
        return cls((Path(path).expanduser(),), origin or str(path))

    @classmethod
    def env(cls, value: str, variable: str = "KUBECONFIG") -> Kubeconfig:
        """A KUBECONFIG-style list (os.pathsep between files, empty entries ignored)."""
        return cls(tuple(Path(p).expanduser() for p in value.split(os.pathsep) if p), f"{variable}={value}")

    def __str__(self) -> str:
        return self.origin

    def load(self, context: str | None = None) -> Configuration:
        """The client configuration for `context` (else the merged current-context); KubeconfigError names the
        origin."""
        merged, first = self._merge()
        names = [str(c.value.get("name")) for c in merged["contexts"]]
        if context is not None and context not in names:
            raise KubeconfigError(
                f"{self}: no context {context!r} (it has: {', '.join(names) or 'none'})", context=True
            )
        if context is None and not merged.get("current-context"):
            raise KubeconfigError(
                f"{self}: sets no current-context (it has: {', '.join(names) or 'none'})", context=True
            )
        self._check_server(merged, context or str(merged["current-context"]))
        configuration = Configuration()
        try:
            loader = KubeConfigLoader(
                config_dict=ConfigNode("kubeconfig", merged, str(first)),
                active_context=context,
                config_base_path=None,  # relative certificate paths resolve against their own file
            )
            loader.load_and_set(configuration)
        except (ConfigException, OSError, TypeError, KeyError, AttributeError, ValueError, yaml.YAMLError) as e:
            chosen = f" (context {context or merged.get('current-context')})"
            raise KubeconfigError(f"{self}: not a usable kubeconfig{chosen}: {_one_line(e)}") from e
        return configuration

    def _merge(self) -> tuple[dict[str, Any], Path]:
        """kubectl's merge: named entries and current-context from the first file that has them."""
        if not self.paths:
            raise KubeconfigError(f"{self}: names no file")
        if len(self.paths) == 1 and not self.paths[0].exists():
            raise KubeconfigError(f"{self}: no such file")
        present = [p for p in self.paths if p.exists()]  # kubectl skips missing files of a list
        if not present:
            raise KubeconfigError(f"{self}: none of these files exists")
        merged: dict[str, Any] = {name: [] for name in _NAMED}
        for path in present:
            doc = self._read(path)
            if not merged.get("current-context") and doc.get("current-context"):
                merged["current-context"] = str(doc["current-context"])
            for key in _NAMED:
                seen = {str(node.value.get("name")) for node in merged[key]}
                entries = doc.get(key) or []
                if not isinstance(entries, list):
                    raise KubeconfigError(f"{self._where(path)}: not a usable kubeconfig: {key} is not a list")
                for entry in entries:
                    if not isinstance(entry, dict) or not entry.get("name"):
                        raise KubeconfigError(
                            f"{self._where(path)}: not a usable kubeconfig: an entry of {key} has no name"
                        )
                    if str(entry["name"]) not in seen:
                        merged[key].append(ConfigNode(f"{path}/{key}/{entry['name']}", entry, str(path)))
                        seen.add(str(entry["name"]))
        return merged, present[0]

    def _check_server(self, merged: dict[str, Any], context: str) -> None:
        """The context's cluster must have an http(s) server URL (the client would quietly use localhost)."""
        entry: dict[str, Any] = next((c.value for c in merged["contexts"] if c.value.get("name") == context), {})
        name = (entry.get("context") or {}).get("cluster")
        cluster = next((c.value for c in merged["clusters"] if c.value.get("name") == name), None)
        if cluster is None:
            raise KubeconfigError(f"{self}: context {context!r} names cluster {name!r}, which is not defined")
        server = str((cluster.get("cluster") or {}).get("server") or "")
        try:
            url = urllib.parse.urlsplit(server)
            valid = url.scheme in ("http", "https") and bool(url.hostname) and (url.port or 1) > 0
        except ValueError:
            valid = False
        if not valid:
            raise KubeconfigError(
                f"{self}: cluster {name!r} (context {context!r}) has server {server!r}; "
                "expected a URL like https://127.0.0.1:6443"
            )

    def _read(self, path: Path) -> dict[str, Any]:
        where = self._where(path)
        if not path.is_file():
            raise KubeconfigError(f"{where}: not a file")
        try:
            doc = yaml.safe_load(path.read_text())
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
            raise KubeconfigError(f"{where}: not a usable kubeconfig: {_one_line(e)}") from e
        if not isinstance(doc, dict) or not any(isinstance(doc.get(key), list) for key in _NAMED):
            raise KubeconfigError(f"{where}: not a usable kubeconfig: expected clusters, contexts and users")
        return doc

    def _where(self, path: Path) -> str:
        return str(self) if len(self.paths) == 1 else f"{path} (from {self})"


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())
