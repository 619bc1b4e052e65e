"""A page as the alert receiver got it: read from its file by the stack's handle, weighed by the alert phases."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Notification:
    """One webhook call from Alertmanager as the receiver got it: when (Unix time), and its alerts."""

    received: float
    status: str
    alerts: tuple[dict[str, Any], ...] = field(default=())
