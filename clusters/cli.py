"""`resilience build` and `resilience cluster up|down|list|status`."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from clusters.pins import PURPOSES
from clusters.providers import PROVIDERS, get_provider
from foundation.cliargs import Subparsers, add_format_option, count, nonempty_path, print_json, seconds
from foundation.errors import UserError


def cmd_build(args: argparse.Namespace) -> int:
    from clusters.build import build, cache_key

    if args.cache_key:
        if args.component or args.all:
            raise UserError("--cache-key keys what `resilience build --for PURPOSE` builds: drop --component/--all")
        print(cache_key(args.purpose))
        return 0
    results = build(args.component or None, include_optional=args.all, purpose=args.purpose)
    if args.format == "json":
        print_json({b.component.name: {"version": b.component.version, "dir": str(b.directory)} for b in results})
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    provider = get_provider(args.provider)
    timeout = seconds("--timeout", args.timeout, 0, low_ok=False)
    nodes = count("--nodes", args.nodes, 1)
    api_port, prometheus_port, alertmanager_port = (
        None if value is None else count(flag, value, 1, 65535)
        for flag, value in (
            ("--api-port", args.api_port),
            ("--prometheus-port", args.prometheus_port),
            ("--alertmanager-port", args.alertmanager_port),
        )
    )
    options: dict[str, Any] = {}
    monitoring_flags = args.monitoring or args.alert_rules or prometheus_port or alertmanager_port
    if args.provider == "local":
        options = {"api_port": api_port, "nodes": nodes, "timeout": timeout}
        options |= {
            "monitoring": args.monitoring,
            "alert_rules": args.alert_rules,
            "prometheus_port": prometheus_port,
            "alertmanager_port": alertmanager_port,
        }
    elif api_port or nodes != 2:
        raise UserError(f"--api-port and --nodes apply to the local provider only, not {args.provider!r}")
    elif monitoring_flags:
        raise UserError(
            f"--monitoring runs Prometheus and Alertmanager beside a local cluster only, not {args.provider!r}"
        )
    if args.provider == "existing":
        options = {
            "kubeconfig": args.kubeconfig,
            "context": args.context,
            "allow_context": args.allow_context,
        }
    cluster = provider.up(args.name, **options)
    if args.format == "json":
        print_json(cluster.to_json())
    else:
        total = cluster.phases.get("total")
        print(f"cluster {cluster.name} ({cluster.provider}) is Ready" + (f" in {total:.1f}s" if total else ""))
        print(f"export KUBECONFIG={cluster.kubeconfig}")
        if cluster.monitoring is not None:
            m = cluster.monitoring
            print(f"Prometheus {m.prometheus_url}  Alertmanager {m.alertmanager_url}  rules {m.rules_source}")
            print(f"notifications: {m.notifications_file}  scrape targets: {m.targets_dir}/<job>/*.json")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    provider = get_provider(args.provider)
    if args.all:
        names = provider.down_all()
        print(f"stopped {len(names)} cluster(s){': ' + ', '.join(names) if names else ''}", file=sys.stderr)
        return 0
    if not args.name:
        raise UserError("cluster down needs --name NAME or --all")
    provider.down(args.name)
    print(f"cluster {args.name} stopped and removed", file=sys.stderr)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    rows = get_provider(args.provider).list()
    if args.format == "json":
        print_json(rows)
        return 0
    if not rows:
        print("no clusters")
        return 0
    print(f"{'NAME':20} {'PHASE':10} {'AGE':>7}  API")
    for row in rows:
        print(f"{row['name']:20} {row['phase']:10} {row['age_seconds']:>6}s  {row['api']}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    status = get_provider(args.provider).status(args.name)
    if args.format == "json":
        print_json(status)
    else:
        print("\n".join(_flat_lines(status)))
    return 0


def _flat_lines(data: Any, key: str = "") -> list[str]:
    """Nested data as `a.b: value` lines, one per leaf: readable at a terminal whatever the provider reports."""
    if isinstance(data, dict) and data:
        return [line for k, v in sorted(data.items()) for line in _flat_lines(v, f"{key}.{k}" if key else str(k))]
    if isinstance(data, list) and data:
        return [line for i, v in enumerate(data) for line in _flat_lines(v, f"{key}.{i}" if key else str(i))]
    return [f"{key}: {'-' if data in (None, {}, []) else data}"]


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "build",
        help="build the pinned upstream binaries into the cache (no-op when cached)",
        description="Build the pinned upstream binaries into the cache ($RESILIENCE_CACHE, else "
        "~/.cache/gitops-resilience): the binaries under upstream/ and, unless GOCACHE / GOMODCACHE are set, Go's "
        "build and module caches under go/ (over 10 GB for --for test; docs/clusters.md). After building, it "
        "prints each part's size.",
    )
    p.add_argument("--component", action="append", help="build only this component (repeatable)")
    p.add_argument("--all", action="store_true", help="every component, whatever needs it")
    p.add_argument(
        "--for",
        dest="purpose",
        choices=sorted(PURPOSES),
        default=None,
        help="also what this needs: test (make test), chaos (make chaos); default: what a cluster needs",
    )
    p.add_argument(
        "--cache-key",
        action="store_true",
        help="print a CI cache key for what the build (with --for) puts in the cache, and build nothing: it "
        "changes exactly when a pin or a build recipe does (cache the directory upstream/ under the cache)",
    )
    add_format_option(p, json_holds="where each component is (text: the progress lines only)")
    p.set_defaults(func=cmd_build)

    cluster = sub.add_parser("cluster", help="start, stop and inspect clusters")
    csub = cluster.add_subparsers(dest="cluster_command", required=True, metavar="ACTION")
    provider_help = f"one of {', '.join(PROVIDERS)} (default: local)"

    up = csub.add_parser("up", help="start a cluster with Flux and wait until it is Ready")
    up.add_argument("--provider", default="local", help=provider_help)
    up.add_argument("--name", default="resilience")
    add_format_option(up, json_holds="kubeconfig, versions, ports, logs, phase times")
    # Numbers arrive as text: cmd_up checks them (foundation.cliargs), one line for nan, -5 or a typo alike.
    up.add_argument("--api-port", default=None, help="local: kube-apiserver port (default: a free one)")
    up.add_argument("--nodes", default="2", help="local: number of kwok nodes")
    up.add_argument("--timeout", default="180", help="seconds to wait for Ready")
    up.add_argument(
        "--monitoring",
        action="store_true",
        help="local: also run Prometheus (the operator's alert rules), Alertmanager and an alert receiver "
        "(docs/monitoring.md)",
    )
    up.add_argument(
        "--alert-rules",
        type=nonempty_path,
        default=None,
        metavar="FILE",
        help="local, with --monitoring: a PrometheusRule or rule file (default: the operator's shipped rules)",
    )
    up.add_argument("--prometheus-port", default=None, help="local, with --monitoring (default: a free one)")
    up.add_argument("--alertmanager-port", default=None, help="local, with --monitoring (default: a free one)")
    up.add_argument("--kubeconfig", default=None, help="existing: kubeconfig file")
    up.add_argument("--context", default=None, help="existing: kubeconfig context")
    up.add_argument(
        "--allow-context",
        action="append",
        default=[],
        help="existing: a context chaos may touch (repeatable)",
    )
    up.set_defaults(func=cmd_up)

    down = csub.add_parser("down", help="stop a cluster and remove its files")
    down.add_argument("--provider", default="local", help=provider_help)
    which = down.add_mutually_exclusive_group()
    which.add_argument("--name")
    which.add_argument("--all", action="store_true", help="every cluster of the provider")
    down.set_defaults(func=cmd_down)

    lst = csub.add_parser("list", help="clusters and their phase")
    lst.add_argument("--provider", default="local", help=provider_help)
    add_format_option(lst)
    lst.set_defaults(func=cmd_list)

    st = csub.add_parser("status", help="phase, processes and restarts of one cluster (JSON unless --format text)")
    st.add_argument("--provider", default="local", help=provider_help)
    st.add_argument("--name", default="resilience")
    add_format_option(st, default="json")  # JSON was its only output: the default, for scripts
    st.set_defaults(func=cmd_status)
