"""A watch-fed cache of the objects a scenario cares about, calling back on every change.

Phase marks come from the moment a watch event arrives (a monotonic timestamp taken on receipt), not from a
polling interval, so a phase is resolved to the event latency of the API server (milliseconds).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubeapi import ApiError, Kube

log = logging.getLogger(__name__)
OnChange = Callable[[str, dict[str, Any], float], None]


@dataclass(frozen=True)
class Target:
    """What to watch: a kind, in one namespace or (None) all of them."""

    api_version: str
    kind: str
    namespace: str | None = None


def _key(kind: str, namespace: str | None, name: str) -> tuple[str, str, str]:
    return kind, namespace or "", name


class WatchCache:
    """Keeps the targets' objects current with list+watch threads; also a Reader for steady-state checks."""

    def __init__(self, kube: Kube, targets: list[Target], on_change: OnChange | None = None, timeout: int = 5):
        self.kube = kube
        self.targets = targets
        self.on_change = on_change
        self.timeout = timeout
        self._objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._synced = [threading.Event() for _ in targets]
        self._threads = [
            threading.Thread(target=self._run, args=(t, synced), daemon=True, name=f"watch-{t.kind}")
            for t, synced in zip(targets, self._synced, strict=True)
        ]

    def start(self, sync_timeout: float = 30.0) -> WatchCache:
        for thread in self._threads:
            thread.start()
        deadline = time.monotonic() + sync_timeout
        for synced in self._synced:
            synced.wait(max(0.0, deadline - time.monotonic()))
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.timeout + 2)

    def __enter__(self) -> WatchCache:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _watched(self, kind: str, namespace: str | None) -> bool:
        return any(t.kind == kind and (t.namespace is None or t.namespace == namespace) for t in self.targets)

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """From the cache when the kind is watched there; otherwise straight from the API."""
        if self._watched(kind, namespace):
            with self._lock:
                return self._objects.get(_key(kind, namespace, name))
        return self.kube.get(api_version, kind, name, namespace)

    def objects(self, kind: str) -> list[dict[str, Any]]:
        with self._lock:
            return [obj for (k, _, _), obj in self._objects.items() if k == kind]

    def _store(self, event_type: str, obj: dict[str, Any], received: float) -> None:
        meta = obj.get("metadata") or {}
        key = _key(str(obj.get("kind")), meta.get("namespace"), str(meta.get("name")))
        with self._lock:
            if event_type == "DELETED":
                self._objects.pop(key, None)
            else:
                self._objects[key] = obj
        if self.on_change is not None:
            try:
                self.on_change(event_type, obj, received)
            except Exception:
                log.exception("watch callback failed for %s %s", event_type, key)

    def _run(self, target: Target, synced: threading.Event) -> None:
        version: str | None = None
        while not self._stop.is_set():
            try:
                if version is None:
                    items, version = self.kube.list_with_version(target.api_version, target.kind, target.namespace)
                    received = time.monotonic()
                    for item in items:
                        self._store("ADDED", item, received)
                    synced.set()
                for event_type, obj in self.kube.watch(
                    target.api_version, target.kind, target.namespace, resource_version=version, timeout=self.timeout
                ):
                    received = time.monotonic()
                    if event_type == "ERROR":
                        version = None  # 410 Gone or similar: list again
                        break
                    obj.setdefault("apiVersion", target.api_version)
                    obj.setdefault("kind", target.kind)
                    version = (obj.get("metadata") or {}).get("resourceVersion") or version
                    if event_type != "BOOKMARK":
                        self._store(event_type, obj, received)
                    if self._stop.is_set():
                        return
            except ApiError as e:
                if e.status == 410:
                    version = None
                    continue
                log.debug("watch %s failed: %s", target.kind, e)
                with contextlib.suppress(Exception):
                    self._stop.wait(0.5)
            except Exception as e:  # connection resets while the API server restarts
                log.debug("watch %s interrupted: %s", target.kind, e)
                self._stop.wait(0.5)
                version = None
