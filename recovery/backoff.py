"""Composable wait strategies in tenacity's style, for the engine's per-attempt delays (pure, testable).

tenacity's own strategies need a live RetryCallState; the engine only knows "attempt n of this action on this
object", so these take the attempt number. `wait_exponential(...) + wait_fixed(...)` composes like tenacity.
"""

from __future__ import annotations

from dataclasses import dataclass


class Wait:
    """Seconds to wait before attempt `attempt + 1`, given `attempt` attempts already made."""

    def __call__(self, attempt: int) -> float:
        raise NotImplementedError

    def __add__(self, other: Wait) -> Wait:
        return _Sum(self, other)


@dataclass(frozen=True)
class _Sum(Wait):
    a: Wait
    b: Wait

    def __call__(self, attempt: int) -> float:
        return self.a(attempt) + self.b(attempt)


@dataclass(frozen=True)
class wait_fixed(Wait):
    seconds: float

    def __call__(self, attempt: int) -> float:
        return self.seconds if attempt > 0 else 0.0


@dataclass(frozen=True)
class wait_exponential(Wait):
    """multiplier * 2**(attempt-1), capped at `maximum`; nothing before the first attempt."""

    multiplier: float = 1.0
    maximum: float = 300.0

    def __call__(self, attempt: int) -> float:
        if attempt <= 0:
            return 0.0
        return float(min(self.maximum, self.multiplier * 2 ** min(attempt - 1, 30)))
