"""The recovery error hierarchy: the class of an error says whether trying again can help (kopf's habit)."""

from __future__ import annotations

from foundation.errors import UserError


class RecoveryError(Exception):
    """Base of the errors an action raises on purpose."""


class TemporaryError(RecoveryError):
    """Not now: try the same step again after `delay` seconds (the API was busy, a precondition is pending)."""

    def __init__(self, message: str, delay: float = 2.0):
        super().__init__(message)
        self.delay = delay


class PermanentError(RecoveryError):
    """This action cannot fix this object (unsafe target, nothing to roll back to): escalate, do not retry."""


class PatternError(UserError):
    """A recovery pattern is invalid; the message names the pattern (index, name) and what to fix."""
