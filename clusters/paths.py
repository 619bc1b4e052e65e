"""Where the project keeps what outlives one process: the build cache and the state of running clusters."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """Cache of built upstream binaries: $RESILIENCE_CACHE, else $XDG_CACHE_HOME/gitops-resilience."""
    explicit = os.environ.get("RESILIENCE_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gitops-resilience"


def state_root() -> Path:
    """Per-user state of running clusters: $RESILIENCE_STATE, else $XDG_STATE_HOME/gitops-resilience."""
    explicit = os.environ.get("RESILIENCE_STATE")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "gitops-resilience"


def clusters_root() -> Path:
    return state_root() / "clusters"
