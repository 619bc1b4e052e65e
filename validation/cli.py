"""`resilience validate`: the pre-commit gate against changes that lock up GitOps.

Exit codes: 0 clean (warnings allowed), 1 at least one error finding, 2 bad input (one line on stderr),
among it a PATH with nothing to validate (no kustomization to build, no Kubernetes manifest): a run that
checked nothing never passes. 130 / 143: stopped by SIGINT / SIGTERM (kubectl processes killed, temporary
files removed, nothing printed on stdout).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from foundation.cliargs import Subparsers, count
from foundation.errors import UserError
from validation.findings import has_errors, render_json, render_text
from validation.run import NothingToValidate, Options, validate

FORMATS = ("text", "json")


def register(subparsers: Subparsers) -> None:
    """Add the `validate` command."""
    p = subparsers.add_parser(
        "validate",
        help="check a GitOps tree before commit: builds, immutable-field changes, Flux dependsOn graph",
        description=__doc__,
    )
    p.add_argument(
        "path",
        nargs="?",
        default=".",
        type=Path,
        help="directory of the GitOps tree (default: .); one with nothing to validate is an error (exit 2)",
    )
    p.add_argument(
        "--base",
        metavar="REV",
        help="revision to compare with (default: HEAD with --staged, else the merge base with the upstream "
        "branch, else HEAD~1)",
    )
    p.add_argument("--staged", action="store_true", help="validate the staged index instead of the working tree")
    p.add_argument("--no-diff", action="store_true", help="skip the comparison with a base revision (no git needed)")
    # --format and --jobs are checked in run(), not by argparse, so a bad value is one line like any bad input.
    p.add_argument("--format", default="text", metavar="{text,json}", help="output format (default: text)")
    p.add_argument("--kubectl", default="kubectl", metavar="BIN", help="kubectl to run kustomize with")
    p.add_argument("--jobs", default=None, metavar="N", help="parallel kustomize processes, N >= 1 (default: cores)")
    p.add_argument(
        "--server-dry-run",
        action="store_true",
        help="also apply every rendered object with dryRun=All against the cluster of --kubeconfig",
    )
    p.add_argument("--kubeconfig", type=Path, default=None, metavar="K", help="kubeconfig for --server-dry-run")
    p.add_argument(
        "--allow-empty",
        action="store_true",
        help="nothing to validate is said and exits 0 instead of 2 (for hooks on commits without manifests)",
    )
    p.set_defaults(func=run)


class _Stopped(BaseException):
    """A stop signal, raised in the main thread (BaseException, like KeyboardInterrupt, so nothing swallows it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextmanager
def _stop_on_signals() -> Iterator[None]:
    """SIGINT and SIGTERM raise _Stopped once; unwinding kills the kubectl processes and removes temp dirs.

    A second signal during that cleanup is ignored so the cleanup completes. Signals ignored by the parent
    (a background job's SIGINT) stay ignored; outside the main thread Python cannot handle signals at all.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stopping = False

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            raise _Stopped(signum)

    wanted = [s for s in (signal.SIGINT, signal.SIGTERM) if signal.getsignal(s) is not signal.SIG_IGN]
    previous = {s: signal.signal(s, stop) for s in wanted}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _options(args: argparse.Namespace) -> Options:
    """The flags as Options; UserError for a bad value or a flag that would be silently ignored."""
    if args.format not in FORMATS:
        raise UserError(f"--format {args.format}: unknown format; pass --format text or --format json")
    if args.kubeconfig is not None and not args.server_dry_run:
        raise UserError(f"--kubeconfig {args.kubeconfig}: only used by --server-dry-run; add it or drop --kubeconfig")
    if args.base == "":
        raise UserError("--base '': empty revision; pass a commit, branch or tag, or drop --base for the default")
    if args.base is not None and args.no_diff:
        raise UserError(f"--base {args.base}: --no-diff compares with no base; drop one of the two")
    return Options(
        path=args.path,
        base=args.base,
        staged=args.staged,
        no_diff=args.no_diff,
        kubectl=args.kubectl,
        jobs=None if args.jobs is None else count("--jobs", args.jobs, 1),
        server_dry_run=args.server_dry_run,
        kubeconfig=args.kubeconfig,
    )


def run(args: argparse.Namespace) -> int:
    """Validate and print; the exit code says whether the change may go in."""
    options = _options(args)
    try:
        with _stop_on_signals():
            report = validate(options)
    except NothingToValidate as e:
        if not args.allow_empty:
            raise
        print(f"resilience validate: {e} (--allow-empty: not blocking)", file=sys.stderr)
        return 0
    except _Stopped as e:
        name = signal.Signals(e.signum).name
        print(f"resilience: validate stopped by {name}: nothing was checked to the end", file=sys.stderr)
        return 128 + e.signum
    if args.format == "json":
        print(render_json(report.findings))
    else:
        print(render_text(report.findings, report.summary()))
    sys.stdout.flush()
    return 1 if has_errors(report.findings) else 0
