"""The receiver Alertmanager notifies: every webhook call becomes one JSON line, stamped with when it arrived.

Run as `python -m monitoring.stack.receiver --port P --out FILE`, supervised like the git server. The harness
reads the file (monitoring.stack.handle.Monitoring.notifications): the arrival time is when a person would have been
paged, so the time to alert includes Prometheus' evaluation and Alertmanager's grouping, as in production.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

_MAX_BODY = 4 * 1024 * 1024


class ReceiverHandler(BaseHTTPRequestHandler):
    out: Path
    lock = threading.Lock()
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.path == "/healthz":
            self._answer(200, b"ok\n")
        else:
            self._answer(404, b"POST Alertmanager webhooks to /alerts\n")

    def do_POST(self) -> None:
        received = time.time()
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 < length <= _MAX_BODY:
            self._answer(400, b"expected a JSON body\n")
            return
        try:
            payload = json.loads(self.rfile.read(length))
        except ValueError:
            self._answer(400, b"not JSON\n")
            return
        line = json.dumps({"received": received, "path": self.path, "payload": payload}, sort_keys=True)
        with self.lock, self.out.open("a") as fh:
            fh.write(line + "\n")
        self._answer(200, b"ok\n")

    def _answer(self, code: int, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write(f"{self.address_string()} {format % args}\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    handler = type("Handler", (ReceiverHandler,), {"out": args.out})
    server = ThreadingHTTPServer((args.host, args.port), handler)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
