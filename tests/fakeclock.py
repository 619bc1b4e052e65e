"""A clock that moves only when a test says so, for code that takes its clock as a parameter (`clock=time.monotonic`
by default): a lease expires, a backoff elapses, a deadline passes without the test sleeping."""

from __future__ import annotations


class FakeClock:
    """Callable like `time.monotonic`; `now` is moved by hand (`clock.now += 16`) or by `sleep`."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        """Stands in for `time.sleep`: the time passes at once."""
        self.now += seconds
