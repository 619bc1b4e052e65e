"""List, then watch from the list's resourceVersion; resume after timeouts, re-list when the version expired.

Every object change reaches the handler within the watch latency (milliseconds), which is what lets the
operator act about a second after Flux shows a failure; a re-list replaces the handler's view of the kind.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from ctlruntime.api import KubeApi
from kubeapi import ApiError

log = logging.getLogger("ctlruntime.informer")
WATCH_SECONDS = 60


class Informer(threading.Thread):
    """One kind in one namespace (None: all), optionally only objects matching `label_selector`.

    `on_list(items)` after each list, `on_event(type, obj)` after; an object that stops matching the selector
    arrives as DELETED (the API server's rule for filtered watches)."""

    def __init__(
        self,
        kube: KubeApi,
        api_version: str,
        kind: str,
        namespace: str | None,
        on_list: Callable[[list[dict[str, Any]]], None],
        on_event: Callable[[str, dict[str, Any]], None],
        stop: threading.Event,
        label_selector: str | None = None,
    ):
        super().__init__(name=f"informer-{kind}-{namespace or 'all'}", daemon=True)
        self.kube = kube
        self.api_version = api_version
        self.kind = kind
        self.namespace = namespace
        self.on_list = on_list
        self.on_event = on_event
        self.stop = stop
        self.label_selector = label_selector
        self.synced = threading.Event()
        self.relists = 0

    def run(self) -> None:
        delay = 0.5
        while not self.stop.is_set():
            try:
                items, version = self.kube.list_with_version(
                    self.api_version, self.kind, self.namespace, self.label_selector
                )
                self.on_list(items)
                self.synced.set()
                self.relists += 1
                delay = 0.5
                self._watch(version)
            except ApiError as e:
                if e.status == 404:
                    log.warning("%s %s: the API server does not serve it (is the CRD installed?)", self.kind, e)
                    self.synced.set()
                elif e.status != 410:
                    log.warning(
                        "watching %s in %s: %s; retrying in %.1fs", self.kind, self.namespace or "all", e, delay
                    )
                self.stop.wait(delay)
                delay = min(delay * 2, 10.0)
            except Exception:  # keep watching whatever a handler raised; the traceback is logged
                log.exception("informer %s crashed; re-listing", self.name)
                self.stop.wait(delay)
                delay = min(delay * 2, 10.0)

    def _watch(self, version: str) -> None:
        while not self.stop.is_set():
            events = self.kube.watch(
                self.api_version, self.kind, self.namespace, version, WATCH_SECONDS, self.label_selector
            )
            for kind, obj in events:
                if kind == "ERROR":
                    code = int(obj.get("code") or 0)
                    raise ApiError(code, str(obj.get("reason")), str(obj.get("message")))
                if kind == "BOOKMARK":
                    version = str(obj["metadata"]["resourceVersion"])
                    continue
                obj.setdefault("apiVersion", self.api_version)
                obj.setdefault("kind", self.kind)
                version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                self.on_event(kind, obj)
                if self.stop.is_set():
                    return
