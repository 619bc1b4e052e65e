"""The one way to wait: poll a function until its value is done, or the time is up (tenacity underneath).

    value = poll(lambda: kube.get(...), timeout=30)                    # the last value, done or not
    obj = wait_until(lambda: kube.get(...), timeout=30, what="the app")  # WaitTimeout naming `what`

Every wait of the harness, its tests and its benchmarks goes through here, so a wait has one meaning everywhere:
`fn` is called at once, then every `interval` seconds, until `done(value)` or `timeout` seconds have passed
(at least one call even with timeout 0); `before_sleep` runs between calls (a recorder re-evaluates there).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import tenacity

from foundation.errors import HarnessError

T = TypeVar("T")


class WaitTimeout(HarnessError):
    """A wait ran out of time; the message names what was awaited and the last value seen."""


def poll(
    fn: Callable[[], T],
    timeout: float,
    interval: float = 0.2,
    *,
    done: Callable[[T], bool] = bool,
    before_sleep: Callable[[], Any] | None = None,
) -> T:
    """Call `fn` until `done(value)` or `timeout`; returns the last value either way."""
    retrying: tenacity.Retrying = tenacity.Retrying(
        stop=tenacity.stop_after_delay(max(0.0, timeout)),
        wait=tenacity.wait_fixed(interval),
        retry=tenacity.retry_if_result(lambda value: not done(value)),
        retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
        before_sleep=(lambda _state: before_sleep()) if before_sleep else None,
        reraise=True,
    )
    result: T = retrying(fn)
    return result


def wait_until(
    fn: Callable[[], T],
    timeout: float,
    what: str,
    *,
    interval: float = 0.2,
    done: Callable[[T], bool] = bool,
    detail: Callable[[], str] | None = None,
) -> T:
    """`poll`, but a WaitTimeout naming `what` (and `detail()`, e.g. a log tail) when the time runs out."""
    value = poll(fn, timeout, interval, done=done)
    if not done(value):
        extra = f": {detail()}" if detail is not None else ""
        raise WaitTimeout(f"timed out after {timeout:.0f}s waiting for {what}{extra}")
    return value
