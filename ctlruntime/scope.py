"""Which Flux objects one operator instance owns (`--selector`), and the names that follow from it.

The chaos harness runs the same faults under several recovery modes on one cluster; an operator started for
one mode must not repair another mode's Kustomizations and HelmReleases, and two operators with different
selectors must not share a Lease (one would stand by forever) or state ConfigMaps (one would forget the
other's). So an instance with a selector watches only matching objects, and the Lease and state names it
writes carry a short hash of the canonical selector; without a selector the names stay as they always were.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubeapi import LabelSelector

SCOPE_LABEL = "gitops.flux.io/recovery-scope"  # the hash, on what a scoped instance writes
SELECTOR_ANNOTATION = "gitops.flux.io/recovery-selector"  # the selector itself, for people


@dataclass(frozen=True)
class Scope:
    selector: LabelSelector | None = None

    @classmethod
    def parse(cls, text: str | None) -> Scope:
        """The scope of `--selector text` (None: everything); SelectorError for a bad selector."""
        return cls(LabelSelector.parse(text) if text is not None else None)

    @property
    def id(self) -> str:
        """10 hex digits of the canonical selector's hash, '' without one: equal selectors share names."""
        if self.selector is None:
            return ""
        return hashlib.sha256(str(self.selector).encode()).hexdigest()[:10]

    @property
    def label_selector(self) -> str | None:
        """What to list and watch Flux objects with."""
        return str(self.selector) if self.selector is not None else None

    def name(self, base: str) -> str:
        """`base` for an unscoped instance, `base-<id>` for a scoped one."""
        return f"{base}-{self.id}" if self.id else base

    def covers(self, obj: Mapping[str, Any]) -> bool:
        """Whether this instance may act on `obj` (a Flux object)."""
        if self.selector is None:
            return True
        return self.selector.matches((obj.get("metadata") or {}).get("labels"))

    def annotations(self) -> dict[str, str]:
        return {SELECTOR_ANNOTATION: str(self.selector)} if self.selector is not None else {}

    def __str__(self) -> str:
        return str(self.selector) if self.selector is not None else "all"


EVERYTHING = Scope()  # no --selector: every Flux object, the names as they always were
