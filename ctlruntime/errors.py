"""The runtime's one error of its own: the API server never answered."""

from __future__ import annotations

from foundation.waiting import WaitTimeout


class ApiUnreachable(WaitTimeout):
    """The API server did not answer within --startup-timeout: exit 3, as every wait that runs out of time (the
    input may be right and a later start succeed; exit 2 is kept for input that retrying cannot fix)."""
