"""RFC 3339 times as Kubernetes, Flux, Prometheus and the controllers' logs write them, read in one place.

`datetime.fromisoformat` alone takes a naive time (read as local time) and, before Python 3.11, neither `Z` nor
more than six fraction digits (Prometheus writes nine); this takes exactly RFC 3339 and keeps every digit.
"""

from __future__ import annotations

import datetime
import re
from typing import Any

_RFC3339 = re.compile(r"(\d{4}-\d\d-\d\d)[Tt ](\d\d:\d\d:\d\d)(\.\d+)?([Zz]|[+-]\d\d:\d\d)")


def parse_time(value: Any) -> float | None:
    """An RFC 3339 time as seconds since the epoch; None if absent or not one."""
    match = _RFC3339.fullmatch(str(value)) if value else None
    if match is None:
        return None
    zone = "+00:00" if match[4] in ("Z", "z") else match[4]
    try:
        stamp = datetime.datetime.fromisoformat(f"{match[1]}T{match[2]}{zone}")
    except ValueError:  # a day or an hour that does not exist
        return None
    return stamp.timestamp() + float(match[3] or 0)
