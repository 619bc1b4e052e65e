"""What a controller's command shares: one-line argparse errors, the flags and client it connects with, and a run
that ends cleanly on SIGTERM/SIGINT. Light at import (the CLI starts fast): the rest is imported when a command runs."""

from __future__ import annotations

import argparse
import os
import signal
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from foundation.errors import UserError

if TYPE_CHECKING:
    from ctlruntime.controller import Controller, RuntimeConfig
    from kubeapi import Kube

C = TypeVar("C", bound="RuntimeConfig")


def one_line_errors(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """argparse prints its usage before an error; like every bad input here, its errors become one line, exit 2."""

    def error(message: str) -> NoReturn:
        command = parser.prog.rpartition(" ")[2]
        parser.exit(2, f"resilience: error: {command}: {message}; see {parser.prog} --help\n")

    parser.error = error  # type: ignore[method-assign]
    return parser


def add_connection_flags(parser: argparse.ArgumentParser) -> None:
    """--kubeconfig and --context, read by `connect_from`."""
    parser.add_argument(
        "--kubeconfig", type=Path, default=None, help="kubeconfig file (default: the $KUBECONFIG list, else in-cluster)"
    )
    parser.add_argument("--context", default=None, help="kubeconfig context (default: its current-context)")


def config_from(args: argparse.Namespace, config: type[C], *, max_workers: int, **fields: Any) -> C:
    """`config` from the flags every controller has (each checked, a UserError naming a bad one) and `fields`."""
    from ctlruntime import flags
    from foundation import cliargs

    addr = flags.parse_addr(args.metrics_addr)
    return config(
        namespaces=list(dict.fromkeys(flags.namespace("--namespace", ns) for ns in args.namespace)),
        scope=flags.scope(args.selector),
        state_namespace=flags.namespace("--state-namespace", args.state_namespace),
        metrics_host=addr[0] if addr else None,
        metrics_port=addr[1] if addr else 0,
        workers=cliargs.count("--workers", args.workers, 1, max_workers),
        lease_duration=cliargs.seconds("--lease-duration", args.lease_duration, 2, 3600),
        startup_timeout=cliargs.seconds("--startup-timeout", args.startup_timeout, 0, 86400),
        **fields,
    )


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


def run_until_signalled(kube: Kube, controller: Controller) -> int:
    """Run `controller` until SIGTERM/SIGINT sets its stop event, then close the client."""

    def stop(signum: int, frame: FrameType | None) -> None:
        controller.stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        return controller.run()
    finally:
        kube.close()
