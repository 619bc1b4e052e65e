"""A static HTTP Helm chart repository on loopback: index.yaml and packaged charts from one directory.

Run as `python -m clusters.local.chartserver --dir DIR --port P`. Charts are packaged into DIR by
clusters.charts; this process only serves files.
"""

from __future__ import annotations

import argparse
import functools
import sys
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(args.dir))
    server = ThreadingHTTPServer((args.host, args.port), handler)
    server.daemon_threads = True
    print(f"serving {args.dir} at http://{args.host}:{args.port}/", file=sys.stderr, flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
