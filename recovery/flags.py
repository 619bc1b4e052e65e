"""Checks of `recover` and `explain` flags, before anything connects: one line naming the flag and the fix.

argparse only converts types; values it accepts can still be meaningless (a selector the API server refuses
when the first list runs), so they are refused here with a UserError (exit 2) instead.
"""

from __future__ import annotations

from foundation.errors import UserError
from kubeapi import SelectorError
from recovery.scope import Scope

SELECTOR_EXAMPLE = "resilience.gitops.io/recovery=operator"


def scope(selector: str | None) -> Scope:
    """The scope of --selector (everything without it)."""
    try:
        return Scope.parse(selector)
    except SelectorError as e:
        raise UserError(
            f"--selector {selector!r}: {e}; give a label selector like {SELECTOR_EXAMPLE} (kubectl -l syntax)"
        ) from None
