"""`resilience stage`: run the stage controller against a kubeconfig (or in the cluster), like `recover`.

Exit 0 after a clean stop (SIGTERM/SIGINT), 2 on bad input (flags, kubeconfig, the CRD not installed, RBAC),
3 when the API server did not answer within --startup-timeout. Flags are checked before anything connects.
"""

from __future__ import annotations

import argparse
import signal
from pathlib import Path
from types import FrameType
from typing import Protocol

from fluxmodel.kinds import FLUX_NAMESPACE


class _Subparsers(Protocol):
    def add_parser(self, name: str, **kwargs: object) -> argparse.ArgumentParser: ...


def register(subparsers: _Subparsers) -> None:
    """Add the `stage` command."""
    from recovery.cli import _one_line_errors

    p = subparsers.add_parser(
        "stage",
        help="run the stage controller: move revisions through StagedKustomizations' stages, roll back failures",
        description=(
            "Watch StagedKustomizations and promote each new revision of the branch stage by stage: validation "
            "checks, then the stage's GitRepository pinned to it, health checks within their timeout, soak; a "
            "failure rolls the stage back. Runs until SIGTERM/SIGINT. Exit 0 after a clean stop, 2 on bad input, "
            "3 when the API server did not answer within --startup-timeout. Manual: docs/staged-deployments.md."
        ),
    )
    p.add_argument(
        "--kubeconfig", type=Path, default=None, help="kubeconfig file (default: the $KUBECONFIG list, else in-cluster)"
    )
    p.add_argument("--context", default=None, help="kubeconfig context (default: its current-context)")
    p.add_argument("--metrics-addr", default="127.0.0.1:9091", metavar="HOST:PORT", help="'' or 'off' disables it")
    p.add_argument("--namespace", action="append", default=[], metavar="NS", help="watch only NS (repeatable)")
    p.add_argument(
        "--selector",
        default=None,
        metavar="SELECTOR",
        help="only StagedKustomizations whose labels match (kubectl -l syntax); the Lease gets a suffix of its hash",
    )
    p.add_argument("--state-namespace", default=FLUX_NAMESPACE, metavar="NS", help="where the Lease lives")
    p.add_argument("--log-format", choices=("text", "json"), default="text")
    p.add_argument("--workers", default="4", metavar="N", help="StagedKustomizations handled in parallel, 1-64")
    p.add_argument("--lease-duration", default="15", metavar="SECONDS", help="Lease duration, 2-3600 (default 15)")
    p.add_argument(
        "--startup-timeout", default="120", metavar="SECONDS", help="wait for the API server, then exit 3 (default 120)"
    )
    p.add_argument("--kubectl", default="kubectl", metavar="BIN", help="kubectl whose kustomize builds (>= 1.27)")
    p.add_argument(
        "--dry-run-as",
        default=None,
        metavar="USER",
        help="impersonate USER for compatibility-check's dry runs and reads, e.g. "
        "system:serviceaccount:flux-system:kustomize-controller (what Flux applies as); default: the controller itself",
    )
    p.set_defaults(func=run_stage)
    _one_line_errors(p)


def run_stage(args: argparse.Namespace) -> int:
    from foundation import cliargs
    from foundation.errors import UserError
    from recovery import flags, logs
    from recovery.cli import connect_from
    from staging.controller import Config, Controller

    addr = flags.parse_addr(args.metrics_addr)
    if args.dry_run_as is not None and not args.dry_run_as.strip():
        raise UserError(
            "--dry-run-as '': empty; give a user like system:serviceaccount:flux-system:kustomize-controller"
        )
    config = Config(
        namespaces=list(dict.fromkeys(flags.namespace("--namespace", ns) for ns in args.namespace)),
        scope=flags.scope(args.selector),
        state_namespace=flags.namespace("--state-namespace", args.state_namespace),
        metrics_host=addr[0] if addr else None,
        metrics_port=addr[1] if addr else 0,
        workers=cliargs.count("--workers", args.workers, 1, 64),
        lease_duration=cliargs.seconds("--lease-duration", args.lease_duration, 2, 3600),
        startup_timeout=cliargs.seconds("--startup-timeout", args.startup_timeout, 0, 86400),
        kubectl=args.kubectl,
    )
    kube, config.api_server = connect_from(args.kubeconfig, flags.name("--context", args.context))
    if args.dry_run_as:
        config.dry_run_kube = kube.impersonating(args.dry_run_as)
    logs.setup(args.log_format)
    controller = Controller(kube, config)

    def stop(signum: int, frame: FrameType | None) -> None:
        controller.stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        return controller.run()
    finally:
        kube.close()
