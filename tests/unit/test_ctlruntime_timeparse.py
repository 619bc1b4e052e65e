"""RFC 3339 times, as Kubernetes, Flux and Prometheus write them, read by the one parser."""

from __future__ import annotations

import pytest

from ctlruntime.timeparse import parse_time


def test_rfc3339_times_become_unix_time() -> None:
    assert parse_time("2026-11-27T15:17:36.711234567Z") == pytest.approx(1795792656.711234567)  # Prometheus: 9 digits
    assert parse_time("2026-11-27T15:17:36.711234Z") == pytest.approx(1795792656.711234)  # a Lease's renewTime
    assert parse_time("2026-11-27T16:17:36+01:00") == 1795792656.0
    assert parse_time("2026-11-27T15:17:36Z") == 1795792656.0
    parsed = parse_time("0001-01-01T00:00:00Z")
    assert parsed is not None and parsed < 0


@pytest.mark.parametrize("value", [None, "", "soon", "2026-11-27T15:17:36", "2026-11-27", "2026-02-30T00:00:00Z", 0])
def test_anything_else_is_none(value: object) -> None:
    """Absent, naive (local time would be a guess), a date alone, or a day that does not exist."""
    assert parse_time(value) is None
