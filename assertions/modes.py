"""The recovery modes a run can be measured under: the built-in ones, and a user's own command or manifest."""

from __future__ import annotations

RECOVERY_MODES_BUILTIN = ("none", "flux-native", "flux-tuned", "operator", "staged")
# A user's own recovery: a command beside the cluster, or a manifest applied into it (scenarios.recoveries).
RECOVERY_MODES_EXTERNAL = {"command:": "command:<cmd>", "manifest:": "manifest:<path>"}
RECOVERY_MODES_HELP = ", ".join([*RECOVERY_MODES_BUILTIN, *RECOVERY_MODES_EXTERNAL.values()])


def is_recovery_name(name: str) -> bool:
    """A built-in mode, or an external one with its command or path (`command:` alone names nothing)."""
    return name in RECOVERY_MODES_BUILTIN or any(
        name.startswith(prefix) and name != prefix for prefix in RECOVERY_MODES_EXTERNAL
    )
