"""Checks of a controller's flags, before anything connects: one line naming the flag and the fix.

argparse's own conversions print its usage and accept values that mean nothing here (`nan`, `inf`, `-5`, a
namespace the API server refuses, a selector it refuses only when the first list runs), so numbers and names
arrive as text and are checked here (numbers by foundation.cliargs, as every command checks them), each refusal a
UserError (exit 2).
"""

from __future__ import annotations

import re

from ctlruntime.scope import Scope
from foundation.errors import UserError
from kubeapi import SelectorError

SELECTOR_EXAMPLE = "resilience.gitops.io/recovery=operator"
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")  # RFC 1123 label: what a namespace name must be
_ADDR = re.compile(r"^(?P<host>[^:]*|\[[^\]]+\]):(?P<port>\d{1,5})$")


def scope(selector: str | None) -> Scope:
    """The scope of --selector (everything without it)."""
    try:
        return Scope.parse(selector)
    except SelectorError as e:
        raise UserError(
            f"--selector {selector!r}: {e}; give a label selector like {SELECTOR_EXAMPLE} (kubectl -l syntax)"
        ) from None


def namespace(flag: str, value: str) -> str:
    """A valid namespace name (RFC 1123 label: lower-case letters, digits and '-', at most 63)."""
    if len(value) <= 63 and _LABEL.match(value):
        return value
    raise UserError(
        f"{flag} {value!r}: not a namespace name; use at most 63 lower-case letters, digits and '-', "
        "starting and ending with a letter or digit (like flux-system)"
    )


def name(flag: str, value: str | None) -> str | None:
    """A non-empty name, when given (an empty --context would silently mean the current one)."""
    if value is not None and not value.strip():
        raise UserError(f"{flag} {value!r}: empty; give a name or leave the flag out")
    return value


def parse_addr(text: str) -> tuple[str, int] | None:
    """HOST:PORT for the metrics server; None when disabled ('' or 'off')."""
    if text in ("", "off"):
        return None
    match = _ADDR.match(text)
    if not match or not 0 <= int(match["port"]) <= 65535:
        raise UserError(f"--metrics-addr {text!r}: expected HOST:PORT like 127.0.0.1:9090 (or 'off')")
    return match["host"].strip("[]") or "0.0.0.0", int(match["port"])  # noqa: S104 - an explicit ':PORT' binds all
