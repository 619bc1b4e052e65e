"""The operator's one log line per decision (object, pattern, action, result), which people and the harness read."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("recovery")


def record(ref: Any, pattern: str, action: str, result: str, detail: str = "", **extra: Any) -> None:
    """The one line per decision: object, matched pattern, action, result (and why)."""
    fields = {"object": str(ref), "pattern": pattern or "-", "action": action or "-", "result": result}
    if detail:
        fields["detail"] = detail
    fields.update({k: v for k, v in extra.items() if v is not None})
    log.info("decision", extra={"fields": fields})
