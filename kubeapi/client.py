"""A small facade over the dynamic client: get/list/apply/patch/delete/watch plain dicts by kind."""

from __future__ import annotations

import builtins
import contextlib
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import urllib3
from kubernetes import config as kube_config
from kubernetes.client import ApiClient, VersionApi
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ResourceNotFoundError

from kubeapi.errors import ApiError, NotFound, TemporaryApiError, UnknownKind, from_exception
from kubeapi.kubeconfig import Kubeconfig

FIELD_MANAGER = "gitops-resilience"
T = TypeVar("T")


def connect(kubeconfig: Path | str | Kubeconfig, context: str | None = None) -> Kube:
    """A Kube for a kubeconfig file or a Kubeconfig (a KUBECONFIG list, merged as kubectl does) and context.

    Nothing is contacted yet; a ValueError names the file, or where the list came from, and what is wrong."""
    source = kubeconfig if isinstance(kubeconfig, Kubeconfig) else Kubeconfig.file(kubeconfig)
    return Kube(ApiClient(source.load(context)))


def connect_in_cluster() -> Kube:
    """A Kube from the pod's service account (KUBERNETES_SERVICE_HOST and the mounted token)."""
    from kubernetes.client import Configuration

    try:
        kube_config.load_incluster_config()
    except kube_config.ConfigException as e:
        raise ValueError(f"not running in a cluster (no service account token or KUBERNETES_SERVICE_HOST): {e}") from e
    return Kube(ApiClient(Configuration.get_default_copy()))


def _call(fn: Callable[[], T]) -> T:
    try:
        return fn()
    except ApiException as e:
        raise from_exception(e) from e
    except urllib3.exceptions.MaxRetryError as e:  # the cause, without the pool's preamble
        raise TemporaryApiError(0, "Unreachable", str(e.reason or e)) from e
    except (urllib3.exceptions.HTTPError, ConnectionError) as e:
        raise TemporaryApiError(0, "Unreachable", str(e)) from e


class Kube:
    """Unstructured access to any kind the server knows; thread-safe discovery."""

    def __init__(self, api: ApiClient):
        self.api = api
        self._dynamic: DynamicClient | None = None
        self._lock = threading.Lock()
        self._discovery_cache: Path | None = None

    def impersonating(self, user: str) -> Kube:
        """A client for the same server that acts as `user` (Impersonate-User), e.g. a controller's service
        account, so a dry run is refused exactly where that identity would be refused."""
        return Kube(ApiClient(self.api.configuration, header_name="Impersonate-User", header_value=user))

    @property
    def server(self) -> str:
        """The API server's URL, for messages."""
        return str(self.api.configuration.host)

    def ping(self, timeout: float = 5.0) -> str:
        """The server's version (GET /version, at most `timeout` seconds a try): whether the API server answers.
        Discovery has no timeout, so a server that drops packets is best found out here."""
        info = _call(lambda: VersionApi(self.api).get_code(_request_timeout=timeout))
        return str(info.git_version)

    @property
    def dynamic(self) -> DynamicClient:
        with self._lock:
            if self._dynamic is None:
                # One discovery cache per client: ports are reused by later clusters with other CRDs.
                if self._discovery_cache is None:  # created once, however often discovery fails
                    self._discovery_cache = Path(tempfile.mkdtemp(prefix="gitops-resilience-discovery-"))
                cache = str(self._discovery_cache / "discovery.json")
                self._dynamic = _call(lambda: DynamicClient(self.api, cache_file=cache))
            return self._dynamic

    def resource(self, api_version: str, kind: str) -> Any:
        try:
            return _call(lambda: self.dynamic.resources.get(api_version=api_version, kind=kind))
        except ResourceNotFoundError:
            # A CRD may have been installed after discovery: refresh once.
            self.dynamic.resources.invalidate_cache()
            try:
                return _call(lambda: self.dynamic.resources.get(api_version=api_version, kind=kind))
            except ResourceNotFoundError as e:
                raise UnknownKind(404, "NotFound", f"the server has no kind {kind} in {api_version}") from e

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """The object as a dict, or None when it does not exist."""
        res = self.resource(api_version, kind)
        try:
            obj = _call(lambda: res.get(name=name, namespace=namespace))
        except NotFound:
            return None
        return dict(obj.to_dict())

    def list(
        self, api_version: str, kind: str, namespace: str | None = None, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        return self.list_with_version(api_version, kind, namespace, label_selector)[0]

    def list_with_version(
        self, api_version: str, kind: str, namespace: str | None = None, label_selector: str | None = None
    ) -> tuple[builtins.list[dict[str, Any]], str]:
        """The items (with apiVersion and kind set) and the list's resourceVersion, to start a watch from."""
        res = self.resource(api_version, kind)
        listing = _call(lambda: res.get(namespace=namespace, label_selector=label_selector)).to_dict()
        result = []
        for item in listing.get("items", []):
            item.setdefault("apiVersion", api_version)
            item.setdefault("kind", kind)
            result.append(item)
        return result, str((listing.get("metadata") or {}).get("resourceVersion") or "")

    def apply(
        self,
        obj: dict[str, Any],
        field_manager: str = FIELD_MANAGER,
        force: bool = True,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """Server-side apply of one object (a namespaced one without a namespace goes to `default`)."""
        res = self.resource(obj["apiVersion"], obj["kind"])
        meta = obj.get("metadata") or {}
        namespace = (meta.get("namespace") or "default") if res.namespaced else None
        kwargs: dict[str, Any] = {"field_manager": field_manager, "force_conflicts": force}
        if dry_run:
            kwargs["dry_run"] = "All"
        out = _call(
            lambda: self.dynamic.server_side_apply(res, body=obj, name=meta.get("name"), namespace=namespace, **kwargs)
        )
        return dict(out.to_dict())

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        res = self.resource(obj["apiVersion"], obj["kind"])
        ns = (obj.get("metadata") or {}).get("namespace")
        return dict(_call(lambda: res.create(body=obj, namespace=ns)).to_dict())

    def merge_patch(
        self, api_version: str, kind: str, name: str, namespace: str | None, patch: dict[str, Any]
    ) -> dict[str, Any]:
        res = self.resource(api_version, kind)
        out = _call(
            lambda: res.patch(body=patch, name=name, namespace=namespace, content_type="application/merge-patch+json")
        )
        return dict(out.to_dict())

    def patch_status(
        self, api_version: str, kind: str, name: str, namespace: str | None, status: dict[str, Any]
    ) -> dict[str, Any]:
        """Merge-patch the status subresource (a controller's report; the spec is not touched)."""
        res = self.resource(api_version, kind)
        out = _call(
            lambda: self.dynamic.patch(
                res.status,
                body={"status": status},
                name=name,
                namespace=namespace,
                content_type="application/merge-patch+json",
            )
        )
        return dict(out.to_dict())

    def delete(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None = None,
        propagation: str = "Background",
        uid: str | None = None,
    ) -> bool:
        """Delete one object; False when it was already gone. With `uid`, only that incarnation (else Conflict)."""
        res = self.resource(api_version, kind)
        body: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation}
        if uid:
            body["preconditions"] = {"uid": uid}
        try:
            _call(lambda: res.delete(name=name, namespace=namespace, body=body))
        except NotFound:
            return False
        return True

    def watch(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        resource_version: str | None = None,
        timeout: int = 60,
        label_selector: str | None = None,
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """(event type, object) pairs until `timeout` seconds pass; callers resume from the last version.

        With `label_selector`, an object whose labels stop matching arrives as DELETED (the server's rule)."""
        res = self.resource(api_version, kind)
        stream = self.dynamic.watch(
            res,
            namespace=namespace,
            resource_version=resource_version,
            timeout=timeout,
            label_selector=label_selector,
        )
        try:
            for event in stream:
                obj = event["raw_object"]
                yield str(event["type"]), obj
        except ApiException as e:
            raise from_exception(e) from e

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.api.close()
        if self._discovery_cache is not None:
            shutil.rmtree(self._discovery_cache, ignore_errors=True)


__all__ = ["ApiError", "Kube", "connect"]
