"""The `existing` provider: a kubeconfig context the user names, with Flux already installed.

Chaos on the wrong cluster is a disaster, so a context is used only when it is explicitly allowed
(`--allow-context NAME`, or RESILIENCE_ALLOW_CONTEXT=a,b), and that is checked before anything connects.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from clusters import hosted
from clusters.model import Cluster
from foundation.errors import UserError
from kubeapi import connect

PROVIDER = "existing"


def resolve_kubeconfig(explicit: str | None) -> Path:
    """--kubeconfig, else the first file in $KUBECONFIG, else ~/.kube/config; it must exist."""
    if explicit:
        path, source = Path(explicit).expanduser(), "--kubeconfig"
    elif os.environ.get("KUBECONFIG"):
        path, source = Path(os.environ["KUBECONFIG"].split(os.pathsep)[0]).expanduser(), "KUBECONFIG"
    else:
        path, source = Path.home() / ".kube" / "config", "the default ~/.kube/config"
    if not path.is_file():
        raise UserError(f"kubeconfig {path} (from {source}) does not exist: pass --kubeconfig FILE")
    return path


def resolve_context(kubeconfig: Path, context: str | None) -> str:
    try:
        config = yaml.safe_load(kubeconfig.read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise UserError(f"kubeconfig {kubeconfig} is not readable YAML: {e}") from e
    names = [str(c.get("name")) for c in config.get("contexts") or [] if isinstance(c, dict)]
    chosen = context or config.get("current-context")
    if not chosen:
        raise UserError(f"kubeconfig {kubeconfig} has no current-context: pass --context (one of: {names})")
    if chosen not in names:
        raise UserError(f"context {chosen!r} is not in {kubeconfig}: choose one of {', '.join(names) or 'none'}")
    return str(chosen)


def check_allowed(context: str, allow: list[str]) -> None:
    allowed = set(allow) | {c for c in os.environ.get("RESILIENCE_ALLOW_CONTEXT", "").split(",") if c}
    if context not in allowed:
        raise UserError(
            f"context {context!r} is not allowed: chaos on the wrong cluster is a disaster; "
            f"if this cluster is disposable, pass --allow-context {context}"
        )


class ExistingProvider:
    name = PROVIDER

    def up(
        self,
        name: str,
        *,
        kubeconfig: str | None = None,
        context: str | None = None,
        allow_context: list[str] | None = None,
        serve_host: str = "127.0.0.1",
        owner_pid: int | None = None,
        timeout: float = 180.0,
    ) -> Cluster:
        path = resolve_kubeconfig(kubeconfig)
        chosen = resolve_context(path, context)
        check_allowed(chosen, allow_context or [])
        try:
            kube = connect(path, chosen)
        except ValueError as e:
            raise UserError(str(e)) from e
        try:
            hosted.require_flux(kube, f"context {chosen!r}")
        finally:
            kube.close()
        layout, ports = hosted.prepare(PROVIDER, name)
        try:
            return hosted.start(PROVIDER, layout, ports, path, chosen, serve_host, owner_pid, timeout, {})
        except BaseException:
            hosted.stop(PROVIDER, name)
            raise

    def down(self, name: str) -> None:
        hosted.stop(PROVIDER, name)

    def down_all(self) -> list[str]:
        names = [layout.name for layout in hosted.layouts(PROVIDER)]
        for name in names:
            hosted.stop(PROVIDER, name)
        return names

    def list(self) -> list[dict[str, Any]]:
        return hosted.rows(PROVIDER)

    def status(self, name: str) -> dict[str, Any]:
        return hosted.status(PROVIDER, name)
