"""The project's error hierarchy: a failure the user can fix is a UserError with one line to print.

It lives at the bottom so the system under test (recovery/, validation/) and the harness share it without the
system under test importing any of the harness.
"""

from __future__ import annotations


class ResilienceError(Exception):
    """Base of every error the project raises on purpose."""

    exit_code = 1


class UserError(ResilienceError):
    """Bad input or environment (flags, files, toolchain, ports): the message names culprit and fix."""

    exit_code = 2


class HarnessError(ResilienceError):
    """The harness itself failed (a process died, a timeout passed): not the product's fault."""

    exit_code = 3
