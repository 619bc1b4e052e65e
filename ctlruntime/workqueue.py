"""A work queue in client-go's manner: one worker per key at a time, de-duplicated, with delayed adds.

Events for an object that is being processed mark it dirty; it is processed again right after, never
concurrently, so an object's actions and state are only ever touched by one worker.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any


class WorkQueue:
    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._cond = threading.Condition()
        self._heap: list[tuple[float, Any, int, Hashable]] = []
        self._due: dict[Hashable, float] = {}
        self._processing: set[Hashable] = set()
        self._dirty: dict[Hashable, tuple[float, Any]] = {}
        self._seq = itertools.count()
        self._closed = False

    def add(self, key: Hashable, after: float = 0.0, priority: Any = 0) -> None:
        """Process `key` in `after` seconds (or sooner if it is already due earlier)."""
        due = self._clock() + max(0.0, after)
        with self._cond:
            if self._closed:
                return
            if key in self._processing:
                previous = self._dirty.get(key)
                if previous is None or due < previous[0]:
                    self._dirty[key] = (due, priority)
                return
            if key in self._due and self._due[key] <= due:
                return
            self._due[key] = due
            heapq.heappush(self._heap, (due, priority, next(self._seq), key))
            self._cond.notify()

    def get(self, timeout: float | None = None) -> Hashable | None:
        """The next due key (marked as processing), or None on timeout or shutdown."""
        deadline = None if timeout is None else self._clock() + timeout
        with self._cond:
            while not self._closed:
                now = self._clock()
                while self._heap and self._due.get(self._heap[0][3]) != self._heap[0][0]:
                    heapq.heappop(self._heap)  # superseded by an earlier add
                if self._heap and self._heap[0][0] <= now:
                    _, _, _, key = heapq.heappop(self._heap)
                    del self._due[key]
                    self._processing.add(key)
                    return key
                wait = self._heap[0][0] - now if self._heap else None
                if deadline is not None:
                    left = deadline - now
                    if left <= 0:
                        return None
                    wait = left if wait is None else min(wait, left)
                self._cond.wait(wait)
            return None

    def done(self, key: Hashable) -> None:
        """Processing of `key` finished; re-queue it if it was added meanwhile."""
        with self._cond:
            self._processing.discard(key)
            again = self._dirty.pop(key, None)
        if again is not None:
            self.add(key, max(0.0, again[0] - self._clock()), again[1])

    def __len__(self) -> int:
        with self._cond:
            return len(self._due) + len(self._dirty)

    def shutdown(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
