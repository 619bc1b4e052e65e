"""The objects a Kustomization or HelmRelease applied, from status.inventory.

Flux records each applied object as `<namespace>_<name>_<group>_<kind>` with its version; the recovery
operator only touches an object that appears there, so a message naming some other object cannot make it act.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fluxmodel.kinds import ObjectRef


@dataclass(frozen=True)
class InventoryEntry:
    """One applied object: its identity and the apiVersion it was applied with."""

    ref: ObjectRef
    group: str
    version: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


def parse_id(entry_id: str, version: str = "") -> InventoryEntry | None:
    """`ns_name_group_kind` (empty namespace for cluster-scoped, empty group for core) as an entry."""
    parts = entry_id.split("_")
    if len(parts) != 4 or not parts[1] or not parts[3]:
        return None
    namespace, name, group, kind = parts
    return InventoryEntry(ObjectRef(kind, namespace, name), group, version)


def entries(obj: dict[str, Any]) -> list[InventoryEntry]:
    """The applied objects listed in the Flux object's status.inventory (empty when it has none)."""
    out: list[InventoryEntry] = []
    for item in ((obj.get("status") or {}).get("inventory") or {}).get("entries") or []:
        entry = parse_id(str(item.get("id") or ""), str(item.get("v") or ""))
        if entry is not None:
            out.append(entry)
    return out


def find(obj: dict[str, Any], ref: ObjectRef) -> InventoryEntry | None:
    """The inventory entry of `ref` (kind, namespace, name), or None when the Flux object did not apply it."""
    for entry in entries(obj):
        if entry.ref == ref:
            return entry
    return None
