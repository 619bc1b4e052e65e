"""The single table of fields the Kubernetes API server refuses to change in place, and a differ over it.

validation/ uses it to stop such changes before commit; the recovery operator and the fault injectors use
it to recognise the API server's refusals (`rule_for_error`) and to know what a recreate would fix.
Each rule says which objects it covers, which fields, why the server refuses, the fragment of the
server's message, and what fixes it.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Final

IMMUTABLE_FIELDS_ANNOTATION: Final = "gitops.flux.io/immutable-fields"
FORCE_ANNOTATION: Final = "kustomize.toolkit.fluxcd.io/force"
FORCE_ENABLED: Final = "enabled"


class _Missing:
    """Sentinel for a field absent from a manifest (distinct from an explicit null)."""

    def __repr__(self) -> str:
        return "<unset>"


MISSING: Final = _Missing()

Compare = Callable[[Any, Any], bool]
Condition = Callable[[Mapping[str, Any], Mapping[str, Any]], bool]


def _differs(old: Any, new: Any) -> bool:
    return bool(old != new)


def _set_and_differs(old: Any, new: Any) -> bool:
    """clusterIP: leaving it out keeps the allocated address; setting one that differs is refused."""
    if new is MISSING or new in ("", None):
        return False
    if isinstance(new, list):
        if not new:
            return False
        return not isinstance(old, list) or not old or old[0] != new[0]
    return bool(old != new)


def _storage_decreased(old: Any, new: Any) -> bool:
    old_q, new_q = parse_quantity(old), parse_quantity(new)
    return old_q is not None and new_q is not None and new_q < old_q


def _was_immutable(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    return old.get("immutable") is True and "sops" not in old and "sops" not in new


@dataclass(frozen=True)
class ImmutableRule:
    """One refusal of the API server: objects (group, kinds), fields, why, its message and the fix."""

    id: str
    group: str
    kinds: frozenset[str]
    fields: tuple[str, ...]
    why: str
    fix: str
    api_message: str
    # For a subtree rule: paths relative to each of `fields` that MAY change (everything else may not).
    mutable: tuple[str, ...] = ()
    compare: Compare = field(default=_differs, compare=False)
    condition: Condition | None = field(default=None, compare=False)

    def applies_to(self, api_version: str, kind: str) -> bool:
        return kind in self.kinds and api_group(api_version) == self.group


@dataclass(frozen=True)
class ImmutableChange:
    """A change between two manifests of one object that the API server will refuse."""

    rule: ImmutableRule
    field: str
    old: Any
    new: Any
    detail: str = ""

    @property
    def message(self) -> str:
        server = f' (API server: "{self.rule.api_message}")' if self.rule.api_message else ""
        detail = f" {self.detail}" if self.detail else ""
        return (
            f"{self.field} changes from {show(self.old)} to {show(self.new)}: "
            f"{self.rule.why}{server}.{detail} Fix: {self.rule.fix}"
        )


WORKLOADS = frozenset({"Deployment", "ReplicaSet", "DaemonSet", "StatefulSet"})
_STS_MESSAGE = "updates to statefulset spec for fields other than"
_STS_FIX = (
    "give the StatefulSet a new name (a new object; migrate its data), or delete it with "
    "`kubectl delete --cascade=orphan` so pods and PVCs survive and let Flux recreate it; "
    f"`{FORCE_ANNOTATION}: {FORCE_ENABLED}` recreates it with downtime"
)
_RECREATE = f"give the object a new name, or annotate it `{FORCE_ANNOTATION}: {FORCE_ENABLED}` so Flux recreates it"

RULES: Final[tuple[ImmutableRule, ...]] = (
    ImmutableRule(
        id="workload-selector",
        group="apps",
        kinds=WORKLOADS,
        fields=("spec.selector",),
        why="a workload's selector cannot change after creation",
        fix=(
            "keep the selector; add labels with kustomize `labels` and `includeSelectors: false` (not "
            "`commonLabels`) or with Flux `spec.commonMetadata`; if the selector must change, "
            f"{_RECREATE} (downtime)"
        ),
        api_message="field is immutable",
    ),
    ImmutableRule(
        id="statefulset-volumeclaimtemplates",
        group="apps",
        kinds=frozenset({"StatefulSet"}),
        fields=("spec.volumeClaimTemplates",),
        why="StatefulSet volumeClaimTemplates cannot change after creation",
        fix=_STS_FIX + "; to grow a volume, resize the PVCs themselves",
        api_message=_STS_MESSAGE,
    ),
    ImmutableRule(
        id="statefulset-servicename",
        group="apps",
        kinds=frozenset({"StatefulSet"}),
        fields=("spec.serviceName",),
        why="StatefulSet serviceName cannot change after creation",
        fix=_STS_FIX,
        api_message=_STS_MESSAGE,
    ),
    ImmutableRule(
        id="statefulset-spec",
        group="apps",
        kinds=frozenset({"StatefulSet"}),
        fields=("spec",),
        mutable=(
            "replicas",
            "ordinals",
            "template",
            "updateStrategy",
            "revisionHistoryLimit",
            "persistentVolumeClaimRetentionPolicy",
            "minReadySeconds",
            # reported by their own rules above
            "selector",
            "volumeClaimTemplates",
            "serviceName",
        ),
        why="only replicas, ordinals, template, updateStrategy, revisionHistoryLimit, "
        "persistentVolumeClaimRetentionPolicy and minReadySeconds of a StatefulSet may change",
        fix=_STS_FIX,
        api_message=_STS_MESSAGE,
    ),
    ImmutableRule(
        id="service-clusterip",
        group="",
        kinds=frozenset({"Service"}),
        fields=("spec.clusterIP", "spec.clusterIPs"),
        why="a Service's cluster IP is fixed once allocated",
        fix=f"remove spec.clusterIP(s) from the manifest so the allocated address is kept, or {_RECREATE}",
        api_message="may not change once set",
        compare=_set_and_differs,
    ),
    ImmutableRule(
        id="job-selector",
        group="batch",
        kinds=frozenset({"Job"}),
        fields=("spec.selector", "spec.manualSelector"),
        why="a Job's selector cannot change after creation",
        fix=f"Jobs run once: {_RECREATE}, e.g. a name suffix per change",
        api_message="field is immutable",
    ),
    ImmutableRule(
        id="job-template",
        group="batch",
        kinds=frozenset({"Job"}),
        fields=("spec.template",),
        why="a Job's pod template cannot change after creation (labels from kustomize `labels` with "
        "includeTemplates or `commonLabels` count too)",
        fix=f"Jobs run once: {_RECREATE}, e.g. a name suffix per change; set ttlSecondsAfterFinished",
        api_message="field is immutable",
    ),
    ImmutableRule(
        id="pvc-spec",
        group="",
        kinds=frozenset({"PersistentVolumeClaim"}),
        fields=("spec",),
        mutable=("resources.requests", "volumeAttributesClassName"),
        why="a PersistentVolumeClaim's spec cannot change except to grow its storage request",
        fix="create a PVC under a new name and migrate the data; only spec.resources.requests.storage may grow",
        api_message="spec is immutable after creation except resources.requests",
    ),
    ImmutableRule(
        id="pvc-storage-decrease",
        group="",
        kinds=frozenset({"PersistentVolumeClaim"}),
        fields=("spec.resources.requests.storage",),
        why="a PersistentVolumeClaim's storage request can only increase",
        fix="keep the previous size (or larger); to shrink, create a new PVC and migrate the data",
        api_message="field can not be less than",
        compare=_storage_decreased,
    ),
    ImmutableRule(
        id="immutable-configmap",
        group="",
        kinds=frozenset({"ConfigMap"}),
        fields=("data", "binaryData", "immutable"),
        why="the ConfigMap has `immutable: true`",
        fix="generate it with a kustomize configMapGenerator (hash-suffixed name) or give it a new name, "
        "and point its users at the new name",
        api_message="field is immutable when `immutable` is set",
        condition=_was_immutable,
    ),
    ImmutableRule(
        id="immutable-secret",
        group="",
        kinds=frozenset({"Secret"}),
        fields=("data", "immutable"),
        why="the Secret has `immutable: true`",
        fix="generate it with a kustomize secretGenerator (hash-suffixed name) or give it a new name, "
        "and point its users at the new name",
        api_message="field is immutable when `immutable` is set",
        condition=_was_immutable,
    ),
)

ANNOTATED_RULE: Final = ImmutableRule(
    id="annotated-immutable",
    group="*",
    kinds=frozenset({"*"}),
    fields=(),
    why=f"the field is listed in the {IMMUTABLE_FIELDS_ANNOTATION} annotation",
    fix=f"{_RECREATE}, or drop the field from {IMMUTABLE_FIELDS_ANNOTATION} if it is really mutable",
    api_message="",
)

# Server-side defaults, so that spelling out a default is not reported as a change.
DEFAULTS: Final[Mapping[tuple[str, str], Any]] = {
    ("PersistentVolumeClaim", "spec.volumeMode"): "Filesystem",
    ("StatefulSet", "spec.podManagementPolicy"): "OrderedReady",
}

RULES_BY_ID: Final[Mapping[str, ImmutableRule]] = {r.id: r for r in (*RULES, ANNOTATED_RULE)}


def api_group(api_version: str) -> str:
    """The group of an apiVersion ("" for the core group)."""
    return api_version.rpartition("/")[0]


def rules_for(api_version: str, kind: str) -> list[ImmutableRule]:
    """The table's rules that cover objects of this apiVersion and kind."""
    return [r for r in RULES if r.applies_to(api_version, kind)]


def get_path(obj: Any, path: str) -> Any:
    """The value at a dotted path (numeric segments index lists), or MISSING."""
    cur = obj
    for part in path.split(".") if path else ():
        if isinstance(cur, Mapping) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            return MISSING
    return cur


def annotated_fields(*objs: Mapping[str, Any]) -> list[str]:
    """Dotted paths named in the immutable-fields annotation of any of the objects, in order, deduplicated."""
    out: list[str] = []
    for obj in objs:
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        for item in str(annotations.get(IMMUTABLE_FIELDS_ANNOTATION, "")).split(","):
            path = item.strip()
            if path and path not in out:
                out.append(path)
    return out


def is_forced(obj: Mapping[str, Any]) -> bool:
    """Whether Flux will delete and recreate this object when an apply is refused (force annotation/label)."""
    meta = obj.get("metadata") or {}
    for key in ("annotations", "labels"):
        if str((meta.get(key) or {}).get(FORCE_ANNOTATION, "")).lower() == FORCE_ENABLED:
            return True
    return False


def immutable_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[ImmutableChange]:
    """Every change from manifest `old` to manifest `new` of one object that the API server would refuse."""
    api_version, kind = str(new.get("apiVersion", "")), str(new.get("kind", ""))
    if api_group(str(old.get("apiVersion", ""))) != api_group(api_version) or old.get("kind") != kind:
        return []
    old_n, new_n = _normalise(old), _normalise(new)
    changes: list[ImmutableChange] = []
    for rule in rules_for(api_version, kind):
        if rule.condition is not None and not rule.condition(old_n, new_n):
            continue
        for path in rule.fields:
            changes.extend(_field_changes(rule, kind, path, old_n, new_n))
    reported = [c.field for c in changes]
    for path in annotated_fields(old, new):
        if any(_overlaps(path, done) for done in reported):
            continue
        old_v, new_v = get_path(old_n, path), get_path(new_n, path)
        if old_v != new_v:
            changes.append(ImmutableChange(ANNOTATED_RULE, path, old_v, new_v))
    return changes


def _field_changes(
    rule: ImmutableRule, kind: str, path: str, old: Mapping[str, Any], new: Mapping[str, Any]
) -> Iterable[ImmutableChange]:
    if rule.mutable:
        yield from _subtree_changes(rule, kind, path, get_path(old, path), get_path(new, path), mutable=rule.mutable)
        return
    old_v = _with_default(kind, path, get_path(old, path))
    new_v = _with_default(kind, path, get_path(new, path))
    if rule.compare(old_v, new_v):
        yield ImmutableChange(rule, path, old_v, new_v, _detail(rule, new, old_v, new_v))


def _subtree_changes(
    rule: ImmutableRule, kind: str, path: str, old: Any, new: Any, *, mutable: tuple[str, ...]
) -> Iterable[ImmutableChange]:
    """Changes under `path` outside the `mutable` relative paths, one per differing key."""
    if not isinstance(old, Mapping) or not isinstance(new, Mapping):
        if old != new:
            yield ImmutableChange(rule, path, old, new)
        return
    for key in sorted(set(old) | set(new)):
        if key in mutable:
            continue
        sub = f"{path}.{key}"
        nested = tuple(m[len(key) + 1 :] for m in mutable if m.startswith(key + "."))
        old_v = _with_default(kind, sub, old.get(key, MISSING))
        new_v = _with_default(kind, sub, new.get(key, MISSING))
        if nested:
            yield from _subtree_changes(rule, kind, sub, old_v, new_v, mutable=nested)
        elif old_v != new_v:
            yield ImmutableChange(rule, sub, old_v, new_v)


def _with_default(kind: str, path: str, value: Any) -> Any:
    return DEFAULTS.get((kind, path), value) if value is MISSING else value


def _overlaps(a: str, b: str) -> bool:
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


def _normalise(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """Secrets: fold stringData into data (decoded) so moving a value between the two is not a change."""
    if obj.get("kind") != "Secret" or api_group(str(obj.get("apiVersion", ""))) != "":
        return obj
    data: dict[str, Any] = {}
    for key, value in (obj.get("data") or {}).items():
        try:
            data[key] = base64.b64decode(str(value), validate=True).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            data[key] = value
    data.update({k: str(v) for k, v in (obj.get("stringData") or {}).items()})
    out = {k: v for k, v in obj.items() if k != "stringData"}
    if data:
        out["data"] = data
    return out


def _detail(rule: ImmutableRule, new: Mapping[str, Any], old_v: Any, new_v: Any) -> str:
    """For selectors: say when the added labels look like kustomize commonLabels/includeSelectors."""
    if rule.id != "workload-selector":
        return ""
    old_ml = get_path(old_v, "matchLabels")
    old_ml = old_ml if isinstance(old_ml, Mapping) else {}
    new_ml = get_path(new_v, "matchLabels")
    if not isinstance(new_ml, Mapping):
        return ""
    added = {k: v for k, v in new_ml.items() if old_ml.get(k) != v}
    labels = (new.get("metadata") or {}).get("labels") or {}
    if added and all(labels.get(k) == v for k, v in added.items()):
        shown = ", ".join(f"{k}={v}" for k, v in sorted(added.items()))
        return (
            f"The added selector labels ({shown}) are also on metadata.labels: the usual sign of kustomize "
            "`commonLabels` or `labels` with `includeSelectors: true`."
        )
    return ""


_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$")
_SUFFIX: Final[Mapping[str, Decimal]] = {
    "": Decimal(1),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
    **{s: Decimal(1024) ** (i + 1) for i, s in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"))},
}


def parse_quantity(value: Any) -> Decimal | None:
    """A Kubernetes resource quantity ("10Gi", "500M", "1e3") as a Decimal, or None if it is not one."""
    if isinstance(value, bool) or value is MISSING or value is None:
        return None
    match = _QUANTITY.match(str(value).strip())
    if not match:
        return None
    try:
        return Decimal(match.group(1)) * _SUFFIX[match.group(2) or ""]
    except InvalidOperation:
        return None


def show(value: Any, limit: int = 120) -> str:
    """A compact one-line rendering of a manifest value for messages."""
    if value is MISSING:
        return "<unset>"
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


_FIELD_IN_MESSAGE = re.compile(r"(?:^|[\s:])((?:spec|data|binaryData|immutable)[\w.\[\]]*):")


def rule_for_error(kind: str, message: str, api_version: str = "") -> ImmutableRule | None:
    """The table rule behind an API-server refusal message for an object of `kind`, if it is one."""
    candidates = [
        r
        for r in RULES
        if kind in r.kinds and (not api_version or r.applies_to(api_version, kind)) and r.api_message in message
    ]
    if not candidates:
        return None
    fields = [re.sub(r"\[\d+\]", "", m) for m in _FIELD_IN_MESSAGE.findall(message)]
    for rule in candidates:
        if any(f == p or f.startswith(p + ".") for f in fields for p in rule.fields if not rule.mutable):
            return rule
    # No field named: the longest message fragment wins, and among equals the whole-spec rule.
    return max(candidates, key=lambda r: (len(r.api_message), bool(r.mutable)))
