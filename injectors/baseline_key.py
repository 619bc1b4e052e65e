"""What a baseline run depends on, as a key: when none of it changed, a stored run answers as a new one would.

A baseline (`none`, `flux-native`, `flux-tuned`: Flux alone) only measures Flux, so its answer changes only with the
upstream pins, the fault's definition, the mode's settings, the SLO file's entry for the cell, the provider and what
the run measures beside time (monitoring, load). The key is the digest of those parts; the parts are kept beside it,
so a key that no longer matches says what changed. It lives here, the lowest layer that sees the pins, the faults
and Flux's knobs, because the chaos suite (scenarios.baseline_store) and the gate both compute it.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from assertions.load_profiles import LoadProfile
from clusters.pins import FLUX_RELEASE, components_for
from fluxmodel import native, tuned
from fluxmodel.kinds import GIT_REPOSITORY, HELM_RELEASE, KUSTOMIZATION
from injectors.base import Fault

# The modes whose runs may be stored and reused; the operator and the stage controller (under test) always run.
STORABLE_MODES = ("none", native.MODE, tuned.MODE)
# Providers whose Flux is the pins: kind's comes from `flux install` and an existing cluster's is its owner's,
# neither known before the cluster is up, so their baselines are always measured.
PINNED_PROVIDERS = ("local",)
# The objects a mode's decoration is read from.
_PROBES = tuple({"kind": kind.kind, "spec": {}} for kind in (KUSTOMIZATION, HELM_RELEASE, GIT_REPOSITORY))


def digest(value: Any, length: int = 16) -> str:
    """The sha256 of a JSON value in canonical form (sorted keys, no spaces), hex, cut to `length`."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def key_of(parts: Mapping[str, Any]) -> str:
    """The key of a baseline: the full digest of its parts."""
    return digest(parts, 64)


def pins() -> dict[str, str]:
    """Every upstream component a chaos run needs, as module@version (and its build tags, which change what is
    compiled in), and the Flux release."""
    out = {
        c.name: f"{c.module}@{c.version}" + (f" tags={','.join(c.tags)}" if c.tags else "")
        for c in components_for("chaos")
    }
    out["flux"] = FLUX_RELEASE
    return out


def fault_digest(fault: Fault) -> str:
    """The fault's definition: the source of its class and of its bases up to Fault (class attributes are its
    parameters), and its instance's own attributes. OSError when the source is not installed."""
    sources = [inspect.getsource(cls) for cls in type(fault).__mro__ if issubclass(cls, Fault)]
    return digest([*sources, vars(fault)])


def mode_settings(mode: str) -> dict[str, Any]:
    """What a baseline mode sets: its decoration of a run's Flux objects, and the tuned shard's flags."""
    if mode == native.MODE:
        return {"objects": [native.decorate(json.loads(json.dumps(p))) for p in _PROBES]}
    if mode == tuned.MODE:
        return {
            "objects": [tuned.decorate(json.loads(json.dumps(p))) for p in _PROBES],
            "flags": {c: tuned.controller_flags(c) for c in tuned.SHARDED},
        }
    return {}


def load_settings(profile: LoadProfile | None, locustfile: str | None = None) -> str | None:
    """The load a run ran under, as a digest: its profile's settings and a user's locustfile's content."""
    if profile is None:
        return None
    content = None if locustfile is None else hashlib.sha256(Path(locustfile).read_bytes()).hexdigest()
    return digest({"profile": asdict(profile), "locustfile": content})


def parts(
    fault: Fault,
    mode: str,
    budget: Mapping[str, Any],
    provider: str,
    monitoring: bool,
    load: str | None = None,
    load_digest: str | None = None,
) -> dict[str, Any]:
    """The parts of a baseline's key (assertions.schema.BaselineKeyParts)."""
    return {
        "pins": pins(),
        "fault": {"name": fault.name, "digest": fault_digest(fault)},
        "mode": {"name": mode, "digest": digest(mode_settings(mode))},
        "slo": dict(budget),
        "provider": provider,
        "measure": {"monitoring": monitoring, "load": load, "load_settings": load_digest},
    }


def changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """What differs between two keys' parts, one phrase each: `pin kustomize-controller v1.9.3 -> v1.9.4`."""
    out = []
    old_pins, new_pins = old.get("pins") or {}, new.get("pins") or {}
    for name in sorted(set(old_pins) | set(new_pins)):
        was, now = str(old_pins.get(name) or "none"), str(new_pins.get(name) or "none")
        if was != now:
            (was_module, _, was_version), (now_module, _, now_version) = was.rpartition("@"), now.rpartition("@")
            if was_module == now_module:  # the same module: its versions
                was, now = was_version, now_version
            out.append(f"pin {name} {was} -> {now}")
    for part in ("fault", "mode"):
        before, after = old.get(part) or {}, new.get(part) or {}
        if before != after:
            out.append(f"{part} {after.get('name') or before.get('name')}'s definition changed")
    for path, before, after in _leaf_changes(old.get("slo"), new.get("slo"), "slo"):
        out.append(f"{path} {before} -> {after}")
    for path, before, after in _leaf_changes(old.get("provider"), new.get("provider"), "provider"):
        out.append(f"{path} {before} -> {after}")
    for path, before, after in _leaf_changes(old.get("measure"), new.get("measure"), ""):
        out.append(f"{path} {before} -> {after}")
    return out


def _leaf_changes(old: Any, new: Any, path: str) -> list[tuple[str, Any, Any]]:
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        return [
            change
            for key in sorted(set(old) | set(new))
            for change in _leaf_changes(old.get(key), new.get(key), f"{path}.{key}".lstrip("."))
        ]
    return [] if old == new else [(path, old, new)]
