"""`resilience` entry point: each package contributes its subcommands through a `register` function.

Errors derived from ResilienceError become one line on stderr and their exit code; anything else is a bug
and keeps its traceback. An unknown argument is reported with the usage of the (sub)command that got it (exit 2).
Output cut short because the reader went away (`resilience faults | head -1`) ends quietly with exit 141, what
a shell reports for a process killed by SIGPIPE: not 0, since the command did not finish (a gate whose output
was cut short did not pass).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from foundation.errors import ResilienceError

# Modules that define `register(subparsers)`; each adds its commands with a `func(args) -> int` default. An
# operator image installs only the system under test (no `harness` extra): commands whose package or whose
# third-party dependencies are not installed are left out, so `resilience recover` runs there.
COMMAND_MODULES: tuple[str, ...] = (
    "clusters.cli",
    "validation.cli",
    "recovery.cli",
    "staging.cli",
    "scenarios.cli",
    "reports.cli",
)
DISTRIBUTION = "gitops-resilience"
EXIT_CLOSED_PIPE = 128 + 13  # 128 + SIGPIPE
_PARSER = "_parser"  # namespace key: the deepest (sub)command parser that parsed the arguments


class _Parser(argparse.ArgumentParser):
    """Records itself in the namespace, so unknown arguments are reported with the usage of the deepest
    subcommand (argparse would print the top-level usage). Subparsers are made of the same class."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.set_defaults(**{_PARSER: self})

    def error(self, message: str) -> NoReturn:
        """Bad flags are one line naming the culprit and where the fix is, not the whole usage first."""
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _Version(argparse.Action):
    """`--version`, looked up only when asked (reading package metadata costs more than the rest of start-up)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, help: str | None = None):
        super().__init__(option_strings, dest=dest, default=argparse.SUPPRESS, nargs=0, help=help)

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        print(f"{parser.prog} {package_version()}")
        parser.exit()


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "(version unknown: the package is not installed)"


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Every module's commands; with `command`, only the modules up to the one that registers it (the rest would
    only cost start-up time: the reports' charting library alone takes a second or more to import)."""
    parser = _Parser(prog="resilience", description=__doc__)
    parser.add_argument("--version", action=_Version, help="print the version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name or not _ours(e.name):
                continue
            raise
        register: Callable[[Any], None] = module.register
        register(sub)
        if command in sub.choices:
            break
    return parser


def _ours(module: str | None) -> bool:
    """A module of this project (missing: a bug), as opposed to a third-party one (missing: not installed)."""
    top = (module or "").partition(".")[0]
    return top in {name.partition(".")[0] for name in (*COMMAND_MODULES, "foundation", "kubeapi", "fluxmodel")}


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The arguments; unknown ones exit 2 with the usage of the subcommand that got them."""
    given = sys.argv[1:] if argv is None else argv
    command = next((arg for arg in given if not arg.startswith("-")), None)
    args, unknown = build_parser(command).parse_known_args(given)
    if unknown:
        owner: argparse.ArgumentParser = getattr(args, _PARSER)
        owner.error(f"unrecognized arguments: {' '.join(unknown)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        code = func(args)
        sys.stdout.flush()  # a closed pipe shows here, not at exit where it cannot be handled
        return code
    except ResilienceError as e:
        print(f"resilience: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("resilience: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return _reader_gone()


def _reader_gone() -> int:
    """Point stdout at /dev/null so the flush at exit does not fail again (the Python docs' recipe)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return EXIT_CLOSED_PIPE


if __name__ == "__main__":
    sys.exit(main())
