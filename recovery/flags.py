"""Checks of `explain` flags, before anything is read: one line naming the flag and the fix (exit 2)."""

from __future__ import annotations

import difflib
import re

from foundation.errors import UserError
from recovery.health import FAILURE_CONDITIONS

_REASON = re.compile(r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")  # metav1.Condition's reason


def message(value: str) -> str:
    """--message: the text to match, not empty (an empty one matches nothing and says nothing)."""
    if not value.strip():
        raise UserError("--message is empty: paste the condition message from kubectl describe or flux get")
    return value


def reason(value: str) -> str:
    """--reason: empty, or one word as Kubernetes writes condition reasons (like ReconciliationFailed)."""
    if value and not _REASON.match(value):
        raise UserError(
            f"--reason {value!r}: a condition reason is one word like UpgradeFailed; leave it out if unsure"
        )
    return value


def condition(value: str) -> str:
    """--condition: empty (Ready), or a condition type the operator reads failures from."""
    if not value or value in FAILURE_CONDITIONS:
        return value
    hint = difflib.get_close_matches(value, FAILURE_CONDITIONS, n=1, cutoff=0.5) or [
        c for c in FAILURE_CONDITIONS if c.lower() == value.lower()
    ]
    raise UserError(
        f"--condition {value!r}: use one of {', '.join(FAILURE_CONDITIONS)}"
        + (f" (did you mean {hint[0]}?)" if hint else "")
    )
