"""An in-memory API server for unit tests (kopf.testing's habit), never shipped.

FakeKube implements ctlruntime.api.KubeApi (the part of kubeapi.Kube the controllers use) with the API server's
behaviours that matter to them (uid and resourceVersion preconditions, AlreadyExists, generation bumps on spec
changes, merge patch semantics, watches from a resourceVersion), and records every write.
"""

from __future__ import annotations

import builtins
import copy
import datetime
import itertools
import threading
import uuid
from collections.abc import Iterator
from typing import Any

from kubeapi import Conflict, LabelSelector, NotFound

Key = tuple[str, str, str, str]  # group, kind, namespace, name


def _group(api_version: str) -> str:
    return api_version.rpartition("/")[0]


def merge(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7386 JSON merge patch (None deletes a key)."""
    out = copy.deepcopy(target)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


class FakeKube:
    """An in-memory API server for unit tests; `writes` lists (verb, kind, namespace, name, detail)."""

    def __init__(self) -> None:
        self.objects: dict[Key, dict[str, Any]] = {}
        self.writes: list[tuple[str, str, str, str, Any]] = []
        self._rv = itertools.count(1)
        self.fail_next: dict[str, Exception] = {}
        self.watches: list[tuple[str, str | None, str | None]] = []  # kind, namespace, label selector
        # Every change, for watches: (resourceVersion, event type, object).
        self._events: list[tuple[int, str, dict[str, Any]]] = []
        self._changed = threading.Condition()

    def _emit(self, event_type: str, obj: dict[str, Any]) -> None:
        with self._changed:
            self._events.append((int(obj["metadata"]["resourceVersion"]), event_type, copy.deepcopy(obj)))
            self._changed.notify_all()

    def _key(self, api_version: str, kind: str, name: str, namespace: str | None) -> Key:
        return (_group(api_version), kind, namespace or "", name)

    def _maybe_fail(self, verb: str) -> None:
        error = self.fail_next.pop(verb, None)
        if error is not None:
            raise error

    def add(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Store an object as the API server would have it (uid, resourceVersion, generation)."""
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("generation", 1)
        meta.setdefault("creationTimestamp", datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        meta["resourceVersion"] = str(next(self._rv))
        key = self._key(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))
        existed = key in self.objects
        self.objects[key] = obj
        self._emit("MODIFIED" if existed else "ADDED", obj)
        return copy.deepcopy(obj)

    def ping(self, timeout: float = 5.0) -> str:
        self._maybe_fail("ping")
        return "v1.0.0-fake"

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        obj = self.objects.get(self._key(api_version, kind, name, namespace))
        return copy.deepcopy(obj) if obj is not None else None

    def must(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        """get(), for tests that know the object exists."""
        obj = self.get(api_version, kind, name, namespace)
        assert obj is not None, f"{kind} {namespace}/{name} does not exist"
        return obj

    def list(
        self, api_version: str, kind: str, namespace: str | None = None, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        return self.list_with_version(api_version, kind, namespace, label_selector)[0]

    def list_with_version(
        self, api_version: str, kind: str, namespace: str | None = None, label_selector: str | None = None
    ) -> tuple[builtins.list[dict[str, Any]], str]:
        self._maybe_fail("list")
        selector = LabelSelector.parse(label_selector) if label_selector else None
        out = []
        for (group, k, ns, _), obj in sorted(self.objects.items()):
            if group != _group(api_version) or k != kind or (namespace is not None and ns != namespace):
                continue
            if selector is None or selector.matches((obj.get("metadata") or {}).get("labels")):
                out.append(copy.deepcopy(obj))
        return out, str(next(self._rv))

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        self._maybe_fail("create")
        meta = obj["metadata"]
        if self._key(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace")) in self.objects:
            raise Conflict(409, "AlreadyExists", f"{obj['kind']} {meta['name']} already exists")
        self.writes.append(("create", obj["kind"], meta.get("namespace") or "", meta["name"], None))
        return self.add(obj)

    def apply(
        self, obj: dict[str, Any], field_manager: str = "test", force: bool = True, dry_run: bool = False
    ) -> dict[str, Any]:
        self._maybe_fail("apply")
        meta = obj["metadata"]
        key = self._key(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))
        self.writes.append(("apply", obj["kind"], meta.get("namespace") or "", meta["name"], None))
        if key not in self.objects:
            return self.add(obj)
        return self._update(key, merge(self.objects[key], obj))

    def merge_patch(
        self, api_version: str, kind: str, name: str, namespace: str | None, patch: dict[str, Any]
    ) -> dict[str, Any]:
        self._maybe_fail("patch")
        key = self._key(api_version, kind, name, namespace)
        if key not in self.objects:
            raise NotFound(404, "NotFound", f"{kind} {name} not found")
        current = self.objects[key]
        wanted_rv = (patch.get("metadata") or {}).get("resourceVersion")
        if wanted_rv is not None and wanted_rv != current["metadata"]["resourceVersion"]:
            raise Conflict(409, "Conflict", "the object has been modified")
        self.writes.append(("patch", kind, namespace or "", name, copy.deepcopy(patch)))
        return self._update(key, merge(current, patch))

    def patch_status(
        self, api_version: str, kind: str, name: str, namespace: str | None, status: dict[str, Any]
    ) -> dict[str, Any]:
        """The status subresource: only status changes (merge patch), never the spec or metadata."""
        self._maybe_fail("patch_status")
        key = self._key(api_version, kind, name, namespace)
        if key not in self.objects:
            raise NotFound(404, "NotFound", f"{kind} {name} not found")
        self.writes.append(("patch_status", kind, namespace or "", name, copy.deepcopy(status)))
        current = self.objects[key]
        return self._update(key, merge(current, {"status": status}))

    def _update(self, key: Key, new: dict[str, Any]) -> dict[str, Any]:
        old = self.objects[key]
        if new.get("spec") != old.get("spec"):
            new["metadata"]["generation"] = int(old["metadata"].get("generation", 1)) + 1
        new["metadata"]["uid"] = old["metadata"]["uid"]
        new["metadata"]["resourceVersion"] = str(next(self._rv))
        self.objects[key] = new
        self._emit("MODIFIED", new)
        return copy.deepcopy(new)

    def delete(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None = None,
        propagation: str = "Background",
        uid: str | None = None,
    ) -> bool:
        self._maybe_fail("delete")
        key = self._key(api_version, kind, name, namespace)
        obj = self.objects.get(key)
        if obj is None:
            return False
        if uid and obj["metadata"]["uid"] != uid:
            raise Conflict(409, "Conflict", "Precondition failed: UID in precondition does not match")
        self.writes.append(("delete", kind, namespace or "", name, propagation))
        del self.objects[key]
        gone = copy.deepcopy(obj)
        gone["metadata"]["resourceVersion"] = str(next(self._rv))
        self._emit("DELETED", gone)
        return True

    def watch(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        resource_version: str | None = None,
        timeout: float = 60,
        label_selector: str | None = None,
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """Changes of a kind after `resource_version`, as they happen. It ends after a quiet spell (at most a
        quarter second: a watch may end at any time, and the caller watches again from the last version), so
        informers on a FakeKube notice a stop quickly and never spin."""
        self.watches.append((kind, namespace, label_selector))
        selector = LabelSelector.parse(label_selector) if label_selector else None
        since = int(resource_version or 0)
        quiet = min(float(timeout), 0.25)
        while True:
            with self._changed:
                pending = [
                    e
                    for e in self._events
                    if e[0] > since and self._watched(e[2], api_version, kind, namespace, selector)
                ]
                if not pending and not self._changed.wait(quiet):
                    return
            for version, event_type, obj in pending:
                since = version
                yield event_type, copy.deepcopy(obj)

    def _watched(
        self, obj: dict[str, Any], api_version: str, kind: str, namespace: str | None, selector: LabelSelector | None
    ) -> bool:
        meta = obj["metadata"]
        same_kind = _group(obj["apiVersion"]) == _group(api_version) and obj["kind"] == kind
        labelled = selector is None or selector.matches(meta.get("labels"))
        return same_kind and labelled and (namespace is None or meta.get("namespace") == namespace)

    def deletes(self) -> builtins.list[tuple[str, str, str, Any]]:
        return [(k, ns, n, d) for verb, k, ns, n, d in self.writes if verb == "delete"]
