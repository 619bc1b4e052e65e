"""`resilience gate`, `resilience report` and `resilience compare`: the release gate on out/summary.json, the
HTML report, and the recovery modes side by side.

Paths default to out/ under the current directory (outputs kept apart from the code) and can be set by flag or
environment variable: RESILIENCE_SUMMARY (summary.json), RESILIENCE_ALLURE_RESULTS (Allure results),
RESILIENCE_REPORT_DIR (HTML), RESILIENCE_HISTORY_DIR (history), RESILIENCE_ALLURE (an Allure 3 executable to use instead
of the pinned one); RESILIENCE_BASELINE (comma-separated) stands for the gate's --baseline flags when none is given.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

from assertions.modes import RECOVERY_MODES_HELP, is_recovery_name
from foundation.cliargs import Subparsers, check_output_file, nonempty_path
from foundation.errors import UserError
from reports import compare, gate, htmlreport, manifest, results_merge, summary
from reports.matrix import printable

BASELINE_ENV = "RESILIENCE_BASELINE"
# Recoveries named by what they run, as the chaos suite and SLO files accept them: prefix -> how it is spelled.


def _path_option(parser: argparse.ArgumentParser, flag: str, env: str, fallback: str, what: str) -> None:
    """A path flag whose default comes from an environment variable, else a path under out/."""
    parser.add_argument(
        flag,
        type=nonempty_path,
        default=Path(os.environ.get(env) or fallback),
        help=f"{what} (default: ${env}, else {fallback})",
    )


def _paths_option(parser: argparse.ArgumentParser, flag: str, env: str, fallback: str, what: str) -> None:
    """A path flag taking one or more paths (repeatable too: shards of one run); default as _path_option."""
    parser.add_argument(
        flag,
        type=nonempty_path,
        nargs="+",
        action="extend",
        metavar="PATH",
        help=f"{what}; several are merged (default: ${env}, else {fallback})",
    )
    parser.set_defaults(**{flag.lstrip("-").replace("-", "_") + "_default": Path(os.environ.get(env) or fallback)})


def _paths(args: argparse.Namespace, name: str) -> list[Path]:
    """The paths given (a path given twice stays twice: the gate refuses a doubled shard), else the default."""
    given: list[Path] | None = getattr(args, name)
    return list(given) if given else [getattr(args, f"{name}_default")]


def register(subparsers: Subparsers) -> None:
    """Add the `gate`, `report` and `compare` commands."""
    g = subparsers.add_parser(
        "gate",
        help="judge out/summary.json: TTR per fault x recovery vs budget; exit 1 on any breach or invalid run",
        description=gate.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _paths_option(g, "--summary", "RESILIENCE_SUMMARY", "out/summary.json", "the chaos suite's summary")
    g.add_argument(
        "--slo",
        type=nonempty_path,
        metavar="FILE",
        help="re-judge every run against this SLO file's budgets (default: the budgets recorded with each run)",
    )
    g.add_argument(
        "--baseline",
        action="append",
        metavar="MODE[,MODE]",
        help="a recovery mode shown for comparison but never failing the gate (e.g. none); repeatable, or "
        f"comma-separated (default: ${BASELINE_ENV}, else none)",
    )
    g.add_argument(
        "--junit", type=nonempty_path, metavar="FILE", help="also write the table as JUnit XML (one case per cell)"
    )
    g.add_argument(
        "--profile",
        metavar="NAME",
        help="demand this profile's whole matrix (its faults x recoveries x repeats, from --slo FILE): a cell "
        "without exactly one run fails the gate as incomplete",
    )
    g.set_defaults(func=run_gate)

    r = subparsers.add_parser(
        "report",
        help="build the HTML report (Allure 3, pinned, installed with npm) from the Allure results, keeping history",
        description=htmlreport.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _paths_option(r, "--results", "RESILIENCE_ALLURE_RESULTS", "out/allure-results", "Allure results directory")
    r.add_argument(
        "--summary",
        type=nonempty_path,
        nargs="+",
        action="extend",
        metavar="PATH",
        help="the summaries of the runs (with several --results: required); the report's summary page is built "
        "from them, merged",
    )
    _path_option(
        r, "--out", "RESILIENCE_REPORT_DIR", "out/allure-report", "HTML report; a previous report there is replaced"
    )
    _path_option(r, "--history", "RESILIENCE_HISTORY_DIR", "out/history", "history kept across runs for trends")
    r.add_argument(
        "--allure",
        metavar="BIN",
        default=os.environ.get("RESILIENCE_ALLURE") or None,
        help="an Allure 3 CLI to run instead of the pinned one (default: $RESILIENCE_ALLURE)",
    )
    r.add_argument("--name", default="GitOps resilience", help="report title")
    r.add_argument("--single-file", action="store_true", help="one self-contained index.html (opens from file://)")
    r.set_defaults(func=run_report)

    c = subparsers.add_parser(
        "compare",
        help="the recovery modes side by side per fault (TTR, detection, serving, next commit, data kept), and "
        "the operator against the best Flux-only mode",
        description=compare.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    c.add_argument("summaries", type=nonempty_path, nargs="+", metavar="SUMMARY", help="summary.json file(s)")
    c.add_argument("--markdown", type=nonempty_path, metavar="FILE", help="also write the table as Markdown")
    c.add_argument(
        "--modes",
        metavar="MODE[,MODE]",
        help="the recovery modes to show, in this order (default: those in the summaries, "
        f"{', '.join(compare.MODE_ORDER)} first)",
    )
    c.add_argument(
        "--flux-modes",
        metavar="MODE[,MODE]",
        default=",".join(compare.FLUX_MODES),
        help="the Flux-only modes the operator is set against (default: %(default)s; those not shown are skipped)",
    )
    c.set_defaults(func=run_compare)


def run_gate(args: argparse.Namespace) -> int:
    baselines = baseline_modes(args.baseline)
    if args.junit is not None:
        check_output_file(args.junit, "--junit")  # before judging: no PASS printed, then a failed write
    code = gate.run_gate(_paths(args, "summary"), args.slo, baselines, args.junit, profile=args.profile)
    sys.stdout.flush()
    return code


def baseline_modes(values: Sequence[str] | None, environ: Mapping[str, str] = os.environ) -> tuple[str, ...] | None:
    """The baseline recovery modes from --baseline (one value per flag, comma-separated allowed), else from
    $RESILIENCE_BASELINE; None when neither gives any, so a caller can tell "none given" from a list."""
    if values:
        source, raw = "--baseline", list(values)
    elif environ.get(BASELINE_ENV):
        source, raw = f"${BASELINE_ENV}", [environ[BASELINE_ENV]]
    else:
        return None
    modes = [mode.strip() for value in raw for mode in value.split(",")]
    for mode in modes:
        if not is_recovery_name(mode):
            raise UserError(f"{source} {mode!r}: unknown recovery mode; use one of {RECOVERY_MODES_HELP}")
    return tuple(dict.fromkeys(modes))


def _mode_list(flag: str, value: str) -> list[str]:
    modes = [mode.strip() for mode in value.split(",") if mode.strip()]
    if not modes:
        raise UserError(f"{flag} {value!r}: expected recovery modes, comma-separated (e.g. flux-native,operator)")
    return modes


def run_compare(args: argparse.Namespace) -> int:
    if args.markdown is not None:
        check_output_file(args.markdown, "--markdown")
        if any(args.markdown.resolve() == p.resolve() for p in args.summaries):
            raise UserError(f"--markdown {args.markdown}: is a summary given; write the Markdown elsewhere")
    modes = None if args.modes is None else _mode_list("--modes", args.modes)
    flux_modes = _mode_list("--flux-modes", args.flux_modes)
    entries, _ = manifest.load_runs(args.summaries)
    if not entries:
        raise UserError(f"{args.summaries[0]}: no runs to compare (an empty list); did the chaos suite run any?")
    table = compare.compare(entries, modes, flux_modes)
    print(printable(f"{len(entries)} run(s) from {', '.join(str(p) for p in args.summaries)}"))
    print(compare.render_text(table))
    doubled = [key for key, n in Counter(map(manifest.entry_key, entries)).items() if n > 1]
    if doubled:
        print(printable(f"note: more than one run of {manifest.key_text(doubled[0])} (a summary given twice?)"))
    if args.markdown is not None:
        try:
            args.markdown.parent.mkdir(parents=True, exist_ok=True)
            summary.write_text_atomic(args.markdown, compare.render_markdown(table))
        except OSError as e:
            raise UserError(
                f"--markdown {args.markdown}: cannot write it ({e.strerror or e}); choose a writable path"
            ) from e
        print(f"markdown: {args.markdown}")
    return 0


def run_report(args: argparse.Namespace) -> int:
    results = _paths(args, "results")
    if len(results) > 1 and not args.summary:
        raise UserError(
            "--results: several results directories need the summaries of their runs (--summary FILE...) for "
            "the report's one summary page"
        )
    if len(results) > 1 or args.summary:
        entries, _ = manifest.load_runs(args.summary)
        with tempfile.TemporaryDirectory(prefix="resilience-results-") as merged:
            return _report(args, results_merge.merge(results, entries, Path(merged)))
    return _report(args, results[0])


def _report(args: argparse.Namespace, results: Path) -> int:
    options = htmlreport.ReportOptions(
        results=results,
        out=args.out,
        history=args.history,
        allure=args.allure,
        name=args.name,
        single_file=args.single_file,
    )

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    index = htmlreport.build(options, log)
    points = htmlreport.history_points(args.history)
    print(f"report: {index} ({points} run(s) in the history at {args.history})")
    if not args.single_file:
        print(f"view it over http, e.g.: python3 -m http.server -d {args.out} 8080, then open http://127.0.0.1:8080/")
    return 0
