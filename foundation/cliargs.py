"""Conventions every command follows, kept in one place: `--format text|json`, numeric flags, and output paths
that are checked before any work so a bad value is one UserError instead of a traceback after the work is done.

It lives at the bottom so the commands of every layer (the operator's and the validator's too) spell them alike.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path
from typing import Any, Protocol

from foundation.errors import UserError

FORMATS = ("text", "json")


class Subparsers(Protocol):
    """What each command module's `register(subparsers)` adds its commands to: `add_subparsers()`'s action."""

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser: ...


def add_format_option(parser: argparse.ArgumentParser, default: str = "text", json_holds: str = "") -> None:
    """`--format text|json`; `--json`, the older spelling, still works but is no longer listed."""
    detail = f"; json: {json_holds}" if json_holds else ""
    help_text = f"output format (default: {default}{detail})"
    parser.add_argument("--format", choices=FORMATS, default=default, help=help_text)
    parser.add_argument("--json", dest="format", action="store_const", const="json", help=argparse.SUPPRESS)


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=True))


def nonempty_path(text: str) -> Path:
    """argparse type for path flags: an empty value would silently mean the current directory."""
    if not text.strip():
        raise argparse.ArgumentTypeError("empty path; give a file or directory")
    return Path(text)


def seconds(flag: str, value: str | float, low: float = 0.0, high: float = math.inf, *, low_ok: bool = True) -> float:
    """A finite number of seconds in [low, high] (or (low, high] when not `low_ok`).

    Numeric flags arrive as text (argparse's own conversions print its usage, in another format, and accept `nan`,
    `inf` and `-5`), and are checked here, so every command refuses a bad number in one format."""
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if math.isfinite(number) and (number >= low if low_ok else number > low) and number <= high:
        return number
    bound = f"at least {low:g}" if low_ok else f"more than {low:g}"
    most = f" and at most {high:g}" if math.isfinite(high) else ""
    raise _refused(flag, value, f"seconds, {bound}{most} (a plain number like 30)")


def count(flag: str, value: str | int, low: int = 1, high: int | None = None) -> int:
    """A whole number in [low, high] (at least `low` without `high`)."""
    try:
        number = int(str(value).strip())
    except ValueError:
        number = low - 1
    if low <= number and (high is None or number <= high):
        return number
    raise _refused(
        flag, value, f"a whole number from {low} to {high}" if high is not None else f"a whole number, at least {low}"
    )


def _refused(flag: str, value: object, expected: str) -> UserError:
    """The one format of a refused flag value: `--flag 'value': expected what`."""
    return UserError(f"{flag} {value!r}: expected {expected}")


def _exists(path: Path) -> bool:
    """Path.exists() raises below a directory we may not read; that counts as absent here."""
    try:
        return path.exists()
    except OSError:
        return False


def _creatable(path: Path) -> str | None:
    """Why `path` cannot be created with its missing parents (None when it can): the nearest existing
    ancestor must be a directory we may write in."""
    for parent in path.absolute().parents:
        if _exists(parent):
            if not parent.is_dir():
                return f"{parent} is not a directory"
            if not os.access(parent, os.W_OK | os.X_OK):
                return f"cannot write in {parent} (permission denied)"
            return None
    return None


def check_output_file(path: Path, flag: str) -> None:
    """A file about to be written (by rename, so only its directory needs to be writable)."""
    if path.is_dir():
        raise UserError(f"{flag} {path}: is a directory; give the path of a file to write")
    problem = _creatable(path)
    if problem:
        raise UserError(f"{flag} {path}: {problem}; choose a writable path")


def check_output_dir(path: Path, flag: str, replaced: bool = False) -> None:
    """A directory about to be created or written in; `replaced`: swapped for a new one by rename, so its
    parent must be writable too."""
    if _exists(path):
        if not path.is_dir():
            raise UserError(f"{flag} {path}: exists and is not a directory; choose a directory")
        if not os.access(path, os.W_OK | os.X_OK):
            raise UserError(f"{flag} {path}: cannot write in it (permission denied); choose a writable directory")
        if not replaced:
            return
    problem = _creatable(path)
    if problem:
        raise UserError(f"{flag} {path}: {problem}; choose a writable path")
