"""Where the patterns come from: --patterns FILE, else the ConfigMap flux-recovery-config, else the defaults.

`PatternSource.poll()` returns a new PatternSet when the file or ConfigMap changed and is valid; an invalid
change raises PatternError (naming the bad pattern) and the caller keeps the patterns it has.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ctlruntime.api import KubeApi
from recovery.defaults import default_patterns
from recovery.errors import PatternError
from recovery.patterns import CONFIGMAP_KEY, CONFIGMAP_NAME, PatternSet, parse


class PatternSource:
    """A file or the ConfigMap, polled for changes (cheap: one GET or stat every few seconds)."""

    def __init__(self, kube: KubeApi | None, namespace: str, file: Path | None = None):
        self.kube = kube
        self.namespace = namespace
        self.file = file
        self._fingerprint: str | None = None

    @property
    def where(self) -> str:
        if self.file is not None:
            return str(self.file)
        return f"ConfigMap {self.namespace}/{CONFIGMAP_NAME} key {CONFIGMAP_KEY}"

    def load(self) -> PatternSet:
        """The current patterns (PatternError if invalid)."""
        fingerprint, text, where = self._read_text()
        self._fingerprint = fingerprint
        return self._parse(text, where)

    def poll(self) -> PatternSet | None:
        """New patterns if the source changed since the last load or poll, else None."""
        fingerprint, text, where = self._read_text()
        if fingerprint == self._fingerprint:
            return None
        self._fingerprint = fingerprint
        return self._parse(text, where)

    def _parse(self, text: str | None, where: str) -> PatternSet:
        if text is None:
            return default_patterns()
        try:
            return parse(text, where)
        except PatternError as e:
            if self.file is None:
                raise
            raise PatternError(f"--patterns {e}") from None  # the flag that named the file, then the file

    def _read_text(self) -> tuple[str, str | None, str]:
        if self.file is not None:
            try:
                text = self.file.read_text()
            except OSError as e:
                raise PatternError(
                    f"--patterns {self.file}: cannot read it ({e.strerror}); give a readable file"
                ) from e
            return hashlib.sha256(text.encode()).hexdigest(), text, str(self.file)
        if self.kube is None:
            return "defaults", None, "defaults"
        cm = self.kube.get("v1", "ConfigMap", CONFIGMAP_NAME, self.namespace)
        if cm is None:
            return "defaults", None, "defaults"
        value = (cm.get("data") or {}).get(CONFIGMAP_KEY)
        if value is None:
            raise PatternError(
                f"{self.where}: the ConfigMap has no key {CONFIGMAP_KEY}; add it or delete the ConfigMap"
            )
        text = str(value)
        return hashlib.sha256(text.encode()).hexdigest(), text, self.where
