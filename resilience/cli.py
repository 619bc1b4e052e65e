"""`resilience` entry point: each package contributes its subcommands through a `register` function.

Errors derived from ResilienceError become one line on stderr and their exit code; anything else is a bug
and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from typing import Any

from foundation.errors import ResilienceError

# Modules that define `register(subparsers)`; each adds its commands with a `func(args) -> int` default.
COMMAND_MODULES: tuple[str, ...] = (
    "clusters.cli",
    "validation.cli",
    "recovery.cli",
    "scenarios.cli",
    "reports.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="resilience", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:
                continue
            raise
        register: Callable[[Any], None] = module.register
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except ResilienceError as e:
        print(f"resilience: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("resilience: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
