"""`resilience recover` (run the operator against a kubeconfig) and `resilience explain` (why it would act).

recover exits 0 on SIGTERM/SIGINT after a clean stop (also while still waiting for the API server), 2 on bad
input (flags, kubeconfig, patterns, credentials, RBAC), 3 when the API server did not answer within
--startup-timeout (it retries with backoff until then, one log line per attempt: retrying later can work).
`recover --selector SELECTOR` (a label selector, kubectl -l syntax) recovers only the Kustomizations and
HelmReleases whose labels match; its Lease and state ConfigMaps are named with a hash of the selector, so
one operator per recovery mode can run on one cluster (ctlruntime.scope).
explain prints JSON (or --format text) and exits 0 when a pattern acts on the failure, now or once Flux has
given up on it (a Helm release's retries spent), and 3 when none ever does.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ctlruntime.cli import add_connection_flags, one_line_errors
from fluxmodel.kinds import FLUX_NAMESPACE, RECONCILED_KINDS
from foundation import cliargs
from foundation.cliargs import Subparsers
from recovery.health import FAILURE_CONDITIONS

EXIT_NO_MATCH = 3  # explain: no pattern acts on the failure, now or later


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
    add_connection_flags(p)
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
        "--flux-grace",
        default="60",
        metavar="SECONDS",
        help="when a Flux knob on the object answers its failure (Kustomization spec.force, HelmRelease "
        "remediation retries or RetryOnFailure), leave it to Flux for at least this long, or for the knob's own "
        "period when longer, before acting (Helm: until RetriesExceeded), 0-86400 (default 60)",
    )
    p.add_argument(
        "--startup-timeout",
        default="120",
        metavar="SECONDS",
        help="how long to wait for the API server at startup, retrying with backoff, before exiting 3 "
        "(default 120; 0: try once)",
    )
    p.set_defaults(func=run_recover)
    one_line_errors(p)

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
    one_line_errors(e)


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


def run_recover(args: argparse.Namespace) -> int:
    from ctlruntime import flags, logs
    from ctlruntime.cli import config_from, connect_from, run_until_signalled
    from recovery.config import PatternSource
    from recovery.operator import Config, Operator

    # Every flag first: nothing connects, nothing is left running when one is wrong.
    config = config_from(
        args,
        Config,
        max_workers=256,
        patterns_file=args.patterns,
        dry_run=args.dry_run,
        settle=cliargs.seconds("--settle", args.settle, 0, 86400, low_ok=False),
        flux_grace=cliargs.seconds("--flux-grace", args.flux_grace, 0, 86400),
    )
    if args.patterns is not None:
        PatternSource(None, config.state_namespace, args.patterns).load()  # PatternError names the file and pattern
    kube, config.api_server = connect_from(args.kubeconfig, flags.name("--context", args.context))
    logs.setup(args.log_format)
    return run_until_signalled(kube, Operator(kube, config))
