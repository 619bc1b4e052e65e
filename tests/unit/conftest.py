"""The unit tests' check of their `process` and `slow` marks: `-m "not process and not slow"` is then a fast run
in one process. A test that starts a process or listens on a real socket unmarked `process`, or sleeps more than
SLEEP_ALLOWANCE seconds in all unmarked `slow`, fails at teardown naming what it did (what a module- or
session-scoped fixture does is not seen)."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

SLEEP_ALLOWANCE = 0.2


@pytest.fixture(autouse=True)
def _marks_are_true(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    started: list[str] = []
    slept = [0.0]
    popen_init, listen, sleep = subprocess.Popen.__init__, socket.socket.listen, time.sleep

    def tracked_popen_init(self: subprocess.Popen[Any], args: Any, *rest: Any, **kwargs: Any) -> None:
        started.append(f"started {args if isinstance(args, str) else ' '.join(map(str, args))[:80]!r}")
        popen_init(self, args, *rest, **kwargs)

    def tracked_listen(self: socket.socket, *args: Any) -> None:
        started.append(f"listened on {self.family.name}")
        listen(self, *args)

    def tracked_sleep(seconds: float) -> None:
        slept[0] += seconds
        sleep(seconds)

    monkeypatch.setattr(subprocess.Popen, "__init__", tracked_popen_init)
    monkeypatch.setattr(socket.socket, "listen", tracked_listen)
    monkeypatch.setattr(time, "sleep", tracked_sleep)
    yield
    unmarked = []
    if started and request.node.get_closest_marker("process") is None:
        unmarked.append(f"{started[0]}: mark it @pytest.mark.process")
    if slept[0] > SLEEP_ALLOWANCE and request.node.get_closest_marker("slow") is None:
        unmarked.append(
            f"slept {slept[0]:.2f}s: mark it @pytest.mark.slow (or give the code a clock: tests/fakeclock.py)"
        )
    if unmarked:
        pytest.fail("; ".join(unmarked), pytrace=False)
