"""Waiting for the API server at startup, up to --startup-timeout, instead of dying with a traceback.

An operator is often started before its cluster answers (beside a control plane that is still starting or
restarting, by the harness right after `cluster up`). Transient API errors (connection refused, 5xx, 429)
are retried with exponential backoff, one log line per attempt; when the deadline passes, ApiUnreachable
(exit 3) names the API server and the kubeconfig. Errors a wait cannot fix (credentials, RBAC, patterns)
are raised at once. tenacity directly, not foundation.waiting.poll: poll repeats a value at a fixed
interval, this repeats on an exception with backoff and must end at once on SIGTERM (its sleep is the
operator's stop event).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TypeVar

import tenacity

from ctlruntime.errors import ApiUnreachable
from kubeapi import ApiError

FIRST_DELAY = 0.5  # seconds before the second attempt; doubled each time
MAX_DELAY = 10.0
log = logging.getLogger("ctlruntime.startup")
T = TypeVar("T")


def _transient(e: BaseException) -> bool:
    return isinstance(e, ApiError) and e.retryable


def until_answered(fn: Callable[[], T], *, timeout: float, stop: threading.Event, server: str) -> T | None:
    """fn() once it gets through; None when `stop` was set while waiting; ApiUnreachable after `timeout` seconds."""

    def wait(state: tenacity.RetryCallState) -> float:
        backoff: float = min(MAX_DELAY, FIRST_DELAY * 2.0 ** (state.attempt_number - 1))
        return max(0.0, min(backoff, timeout - (state.seconds_since_start or 0.0)))  # the last try: at the deadline

    def sleep(seconds: float) -> None:
        stop.wait(seconds)

    def note(state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        fields = {
            "server": server,
            "attempt": state.attempt_number,
            "waited": f"{state.seconds_since_start or 0.0:.1f}s of {timeout:g}s",
            "retry_in": f"{state.upcoming_sleep:.1f}s",
            "error": getattr(error, "message", str(error)),
        }
        log.warning("the API server does not answer yet", extra={"fields": fields})

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(_transient),
        stop=tenacity.stop_after_delay(timeout) | tenacity.stop_when_event_set(stop),
        wait=wait,
        sleep=sleep,
        before_sleep=note,
        reraise=True,
    )
    try:
        return retrying(fn)
    except ApiError as e:
        if not e.retryable:
            raise
        if stop.is_set():
            return None
        raise ApiUnreachable(
            f"the API server {server} did not answer within --startup-timeout {timeout:g}s ({e.message}); "
            "start the cluster or fix the kubeconfig, or wait longer with --startup-timeout SECONDS"
        ) from e
