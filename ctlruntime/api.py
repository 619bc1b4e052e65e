"""The part of kubeapi.Kube the controllers use, as a Protocol: testsupport.fakekube.FakeKube implements it for
unit tests, kubeapi.Kube in production. One definition, so every layer asks for the same thing."""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from typing import Any, Protocol


class KubeApi(Protocol):
    def ping(self, timeout: float = ...) -> str: ...

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None: ...

    def list(
        self, api_version: str, kind: str, namespace: str | None = None, label_selector: str | None = None
    ) -> builtins.list[dict[str, Any]]: ...

    def list_with_version(
        self, api_version: str, kind: str, namespace: str | None = None, label_selector: str | None = None
    ) -> tuple[builtins.list[dict[str, Any]], str]: ...

    def create(self, obj: dict[str, Any]) -> dict[str, Any]: ...

    def apply(
        self, obj: dict[str, Any], field_manager: str = ..., force: bool = ..., dry_run: bool = ...
    ) -> dict[str, Any]: ...

    def merge_patch(
        self, api_version: str, kind: str, name: str, namespace: str | None, patch: dict[str, Any]
    ) -> dict[str, Any]: ...

    def patch_status(
        self, api_version: str, kind: str, name: str, namespace: str | None, status: dict[str, Any]
    ) -> dict[str, Any]: ...

    def delete(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None = None,
        propagation: str = "Background",
        uid: str | None = None,
    ) -> bool: ...

    def watch(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        resource_version: str | None = None,
        timeout: int = 60,
        label_selector: str | None = None,
    ) -> Iterator[tuple[str, dict[str, Any]]]: ...
