"""`resilience recover` (run the operator against a kubeconfig) and `resilience explain` (why it would act).

recover exits 0 on SIGTERM/SIGINT after a clean stop (also while still waiting for the API server), 2 on bad
input (flags, kubeconfig, patterns, credentials, RBAC), 3 when the API server did not answer within
--startup-timeout (it retries with backoff until then, one log line per attempt: retrying later can work).
`recover --selector SELECTOR` (a label selector, kubectl -l syntax) recovers only the Kustomizations and
HelmReleases whose labels match; its Lease and state ConfigMaps are named with a hash of the selector, so
one operator per recovery mode can run on one cluster (recovery.scope).
explain prints JSON (or --format text) and exits 0 when a pattern acts on the failure, now or once Flux has
given up on it (a Helm release's retries spent), and 3 when none ever does.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, NoReturn

from fluxmodel.kinds import FLUX_NAMESPACE, RECONCILED_KINDS
from foundation import cliargs
from foundation.cliargs import Subparsers
from foundation.errors import UserError
from recovery.health import FAILURE_CONDITIONS

if TYPE_CHECKING:
    from kubeapi import Kube

EXIT_NO_MATCH = 3  # explain: no pattern acts on the failure, now or later


def _one_line_errors(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """argparse prints its usage before an error; like every bad input here, its errors become one line, exit 2."""

    def error(message: str) -> NoReturn:
        command = parser.prog.rpartition(" ")[2]
        parser.exit(2, f"resilience: error: {command}: {message}; see {parser.prog} --help\n")

    parser.error = error  # type: ignore[method-assign]
    return parser


def register(subparsers: Subparsers) -> None:
    """Add the `recover` and `explain` commands."""
    p = subparsers.add_parser(
        "recover",
        help="run the recovery operator: watch Flux objects, serve metrics, recover stuck reconciliations",
        description=(
            "Watch Kustomizations and HelmReleases and recover matching failures (patterns from --patterns, "
            "else ConfigMap flux-recovery-config in --state-namespace, else built-in). Runs until SIGTERM/SIGINT. "
            "Exit 0 after a clean stop, 2 on bad input, 3 when the API server did not answer within "
            "--startup-timeout."
        ),
    )
    p.add_argument(
        "--kubeconfig", type=Path, default=None, help="kubeconfig file (default: the $KUBECONFIG list, else in-cluster)"
    )
    p.add_argument("--context", default=None, help="kubeconfig context (default: its current-context)")
    p.add_argument("--patterns", type=Path, default=None, metavar="FILE", help="recovery patterns YAML file")
    p.add_argument("--metrics-addr", default="127.0.0.1:9090", metavar="HOST:PORT", help="'' or 'off' disables it")
    p.add_argument("--namespace", action="append", default=[], metavar="NS", help="watch only NS (repeatable)")
    p.add_argument(
        "--selector",
        default=None,
        metavar="SELECTOR",
        help="recover only Kustomizations and HelmReleases whose labels match this label selector (kubectl -l "
        "syntax, e.g. resilience.gitops.io/recovery=operator); a GitRepository is pinned only when every object "
        "reading it matches. The Lease and state ConfigMaps get a suffix of the selector's hash, so operators with "
        "different selectors run side by side (default: every object; the names stay unsuffixed)",
    )
    p.add_argument("--state-namespace", default=FLUX_NAMESPACE, metavar="NS", help="reconciliation-state and Lease")
    p.add_argument("--dry-run", action="store_true", help="decide and log, change nothing (no Lease, no Events)")
    p.add_argument("--log-format", choices=("text", "json"), default="text")
    # Numbers arrive as text: foundation.cliargs refuses nan, inf and meaningless values in one line.
    p.add_argument("--workers", default="8", metavar="N", help="objects handled in parallel, 1-256 (default 8)")
    p.add_argument("--lease-duration", default="15", metavar="SECONDS", help="Lease duration, 2-3600 (default 15)")
    p.add_argument(
        "--settle",
        default="300",
        metavar="SECONDS",
        help="longest wait for Flux to react to an action before judging it, >0 (default 300)",
    )
    p.add_argument(
        "--startup-timeout",
        default="120",
        metavar="SECONDS",
        help="how long to wait for the API server at startup, retrying with backoff, before exiting 3 "
        "(default 120; 0: try once)",
    )
    p.set_defaults(func=run_recover)
    _one_line_errors(p)

    e = subparsers.add_parser(
        "explain",
        help="which recovery pattern acts on a Flux failure message, when, and what it does",
        description=(
            "Match the message as the operator does. Exit 0 when a pattern acts on it now, or later (a Helm "
            "failure once helm-controller has spent its remediation retries and marks the release Stalled); "
            "3 when none ever does."
        ),
    )
    e.add_argument("--kind", required=True, choices=[k.kind for k in RECONCILED_KINDS])
    e.add_argument("--message", required=True, help="the condition message (kubectl describe / flux get)")
    e.add_argument("--reason", default="", help="the condition reason, e.g. ReconciliationFailed (optional)")
    e.add_argument(
        "--condition", default="", help=f"the condition type: {', '.join(FAILURE_CONDITIONS)} (default Ready)"
    )
    e.add_argument("--patterns", type=Path, default=None, metavar="FILE", help="patterns file (default: built-in)")
    e.add_argument("--format", choices=("json", "text"), default="json", help="output format (default json)")
    e.set_defaults(func=run_explain)
    _one_line_errors(e)


def run_explain(args: argparse.Namespace) -> int:
    from recovery import flags
    from recovery.config import PatternSource
    from recovery.explain import ACTS_LATER, ACTS_NOW, explain, text

    message = flags.message(args.message)
    reason = flags.reason(args.reason)
    condition = flags.condition(args.condition)
    patterns = PatternSource(None, FLUX_NAMESPACE, args.patterns).load()
    out = explain(args.kind, message, patterns, reason=reason, condition=condition)
    rendered = text(out) if args.format == "text" else json.dumps(out, indent=2) + "\n"
    try:
        sys.stdout.write(rendered)
        sys.stdout.flush()
    except BrokenPipeError:  # `explain ... | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0 if out["verdict"] in (ACTS_NOW, ACTS_LATER) else EXIT_NO_MATCH


def connect_from(kubeconfig: Path | None, context: str | None) -> tuple[Kube, str]:
    """A client from --kubeconfig, else the KUBECONFIG list, else the pod's service account, and a description of
    where it points (`https://host:6443 from --kubeconfig K`) for messages; UserError naming the source."""
    from kubeapi import Kubeconfig, KubeconfigError, connect, connect_in_cluster

    if kubeconfig is None and not os.environ.get("KUBECONFIG"):
        if context is not None:
            raise UserError(f"--context {context}: no kubeconfig to pick it from; pass --kubeconfig or set KUBECONFIG")
        try:
            kube = connect_in_cluster()
        except ValueError as e:
            raise UserError(f"{e}; outside a cluster pass --kubeconfig FILE or set KUBECONFIG") from e
        return kube, f"{kube.server} (in-cluster service account)"
    if kubeconfig is not None:
        source = Kubeconfig.file(kubeconfig, f"--kubeconfig {kubeconfig}")
        fix = "give a kubeconfig file with --kubeconfig"
    else:
        source = Kubeconfig.env(os.environ["KUBECONFIG"])
        fix = "fix KUBECONFIG or pass --kubeconfig FILE"
    try:
        kube = connect(source, context)
    except KubeconfigError as e:
        raise UserError(f"{e}; {'pick one with --context' if e.context else fix}") from e
    return kube, f"{kube.server} from {source}" + (f" (context {context})" if context else "")


def run_recover(args: argparse.Namespace) -> int:
    from recovery import flags, logs
    from recovery.config import PatternSource
    from recovery.operator import Config, Operator

    # Every flag first: nothing connects, nothing is left running when one is wrong.
    addr = flags.parse_addr(args.metrics_addr)
    state_namespace = flags.namespace("--state-namespace", args.state_namespace)
    config = Config(
        namespaces=list(dict.fromkeys(flags.namespace("--namespace", ns) for ns in args.namespace)),
        scope=flags.scope(args.selector),
        state_namespace=state_namespace,
        patterns_file=args.patterns,
        metrics_host=addr[0] if addr else None,
        metrics_port=addr[1] if addr else 0,
        dry_run=args.dry_run,
        workers=cliargs.count("--workers", args.workers, 1, 256),
        lease_duration=cliargs.seconds("--lease-duration", args.lease_duration, 2, 3600),
        settle=cliargs.seconds("--settle", args.settle, 0, 86400, low_ok=False),
        startup_timeout=cliargs.seconds("--startup-timeout", args.startup_timeout, 0, 86400),
    )
    if args.patterns is not None:
        PatternSource(None, state_namespace, args.patterns).load()  # PatternError names the file and pattern
    kube, config.api_server = connect_from(args.kubeconfig, flags.name("--context", args.context))
    logs.setup(args.log_format)
    operator = Operator(kube, config)

    def stop(signum: int, frame: FrameType | None) -> None:
        operator.stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        return operator.run()
    finally:
        kube.close()
