"""`resilience revert RUN` (undo what an interrupted chaos run left) and `resilience faults` (the catalog).

revert exits 0 when every record is reverted (or was already), 2 on bad input (no such run, or a run directory
without any revert record: nothing was checked, so it does not pass), 3 when a step failed or a record could not
be read (every other record is still reverted; run it again once the cause is fixed).
"""

from __future__ import annotations

import argparse
import sys

from foundation.cliargs import Subparsers, add_format_option, print_json
from foundation.errors import HarnessError


def cmd_revert(args: argparse.Namespace) -> int:
    from injectors.records import revert_run

    count, problems = revert_run(args.run)
    for problem in problems:
        print(f"resilience: revert: {problem}", file=sys.stderr)
    if count == 0 and not problems:
        print(f"nothing left to revert in {args.run}: every record was reverted already")
        return 0
    print(f"reverted {count} record(s) of {args.run}" + (f", {len(problems)} problem(s)" if problems else ""))
    if problems:
        raise HarnessError(
            f"{len(problems)} problem(s) left; the records keep what failed: fix the cause and run "
            f"`resilience revert {args.run}` again"
        )
    return 0


def cmd_faults(args: argparse.Namespace) -> int:
    from injectors.registry import CATALOG

    rows = [
        {
            "name": f.name,
            "family": f.family,
            "signature": f.signature.name if f.signature else None,
            "summary": f.summary,
        }
        for f in CATALOG
    ]
    if args.format == "json":
        print_json(rows)
    else:
        for row in rows:
            print(f"{row['family']:16} {row['name']:30} {row['summary']}")
    return 0


def register(sub: Subparsers) -> None:
    revert = sub.add_parser(
        "revert",
        help="undo every fault and test app a chaos run left behind",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    revert.add_argument("run", help="the run directory (runs/<id>) or its id, printed at the end of a chaos run")
    revert.set_defaults(func=cmd_revert)
    faults = sub.add_parser("faults", help="the fault catalog")
    add_format_option(faults)
    faults.set_defaults(func=cmd_faults)
