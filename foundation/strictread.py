"""Strict readers of the files a verdict depends on (summaries, manifests, SLO files): JSON and YAML whose every
ambiguity is bad input, never resolved silently.

What the standard readers let through, and why each is refused here:
- duplicate keys (json and yaml keep the last): one copy of `data_violations` could wipe the other;
- NaN, Infinity and overflowing literals such as 1e999: a TTR of NaN compares false against every budget;
- integers longer than 15 digits: they overflow every budget arithmetic (and float() raises on 10**400);
- YAML anchors and aliases: a few hundred bytes of nested aliases expand to gigabytes (an "alias bomb");
- bytes that are not UTF-8: a traceback instead of a line naming the file.
Every refusal is a ValueError whose text names the problem; the callers prefix the file.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import yaml

from foundation.errors import UserError

MAX_DIGITS = 15


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a finite number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is not a finite number")
    return value


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise ValueError(f"{text[:12]}... ({len(text)} digits) is too large a number")
    return int(text)


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def loads_json(text: str) -> Any:
    """Parse JSON; ValueError for a duplicate key, a number that is not finite or too large, and for text that is
    not JSON (json.JSONDecodeError, a ValueError too)."""
    return json.loads(
        text,
        parse_constant=_refuse_constant,
        parse_float=_finite_float,
        parse_int=_bounded_int,
        object_pairs_hook=_unique_pairs,
    )


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader without aliases and with unique keys."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise ValueError(f"line {event.start_mark.line + 1}: YAML aliases (*{event.anchor}) are not allowed here")
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise ValueError(f"line {key_node.start_mark.line + 1}: duplicate key {key!r}")
            seen.add(key)
        return super().construct_mapping(node, deep)


def _bounded_yaml_int(loader: _StrictLoader, node: Any) -> int:
    value = str(node.value).replace("_", "")
    if len(value.lstrip("+-")) > MAX_DIGITS:
        raise ValueError(f"line {node.start_mark.line + 1}: {value[:12]}... is too large a number")
    return int(loader.construct_yaml_int(node))


def _finite_yaml_float(loader: _StrictLoader, node: Any) -> float:
    value = float(loader.construct_yaml_float(node))
    if not math.isfinite(value):
        raise ValueError(f"line {node.start_mark.line + 1}: {node.value} is not a finite number")
    return value


_StrictLoader.add_constructor("tag:yaml.org,2002:int", _bounded_yaml_int)
_StrictLoader.add_constructor("tag:yaml.org,2002:float", _finite_yaml_float)


def loads_yaml(text: str) -> Any:
    """Parse one YAML document; ValueError for an alias, a duplicate key or a number out of bounds, yaml.YAMLError
    for text that is not YAML."""
    return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass


def read_text(path: Path) -> str:
    """A file's text; UnicodeDecodeError is turned into a ValueError naming the byte offset (OSError passes)."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"not UTF-8 text (byte {e.start}: {data[e.start : e.start + 1]!r})") from None


def load(path: Path, what: str, *, yaml_text: bool = False, missing: str | None = None, hint: str = "") -> Any:
    """Read and parse one file a verdict depends on (JSON, or YAML with `yaml_text`); every problem is one UserError
    naming the file: unreadable (`hint` says what to pass instead; `missing`, what to do when there is no such
    file), not UTF-8, not valid, ambiguous."""
    kind = "YAML" if yaml_text else "JSON"
    try:
        text = read_text(path)
    except FileNotFoundError as e:
        if missing is not None:
            raise UserError(f"{path}: no such {what}; {missing}") from None
        raise UserError(f"{path}: cannot read the {what} ({e.strerror}){'; ' + hint if hint else ''}") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read the {what} ({e.strerror}){'; ' + hint if hint else ''}") from e
    except ValueError as e:
        raise UserError(f"{path}: {e}; a {what} is UTF-8 {kind}") from None
    try:
        return loads_yaml(text) if yaml_text else loads_json(text)
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: not valid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "somewhere"
        raise UserError(f"{path}: not valid YAML at {where}: {getattr(e, 'problem', e)}") from None
    except ValueError as e:
        raise UserError(f"{path}: {e}; a {what} holds one value per key and finite numbers only") from None
