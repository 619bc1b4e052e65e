"""The HTTP endpoint of a controller process: /metrics, /healthz and /readyz on one address.

Metrics are served from the start (before the API server answers), so "it serves metrics" does not mean "it is
ready": /readyz answers 503 until the controller says it has started (connected, its state read, watching), then
200; /healthz answers 200 while the process serves. The recovery operator and the stage controller share it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app


class ProbeServer:
    """Serves a registry's metrics and the two probes; `ready` is set by the controller once it has started."""

    def __init__(self, registry: CollectorRegistry):
        self.ready = threading.Event()
        self._exposition = make_wsgi_app(registry)
        self._server: WSGIServer | None = None

    def serve(self, host: str, port: int) -> int:
        """Listen on host:port (port 0 picks one) in a daemon thread; returns the port."""
        server = make_server(host, port, self._app, _Server, _Quiet)
        self._server = server
        threading.Thread(target=server.serve_forever, name="probes", daemon=True).start()
        return int(server.server_address[1])

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path in ("/healthz", "/readyz"):
            ok = path == "/healthz" or self.ready.is_set()
            start_response("200 OK" if ok else "503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"ok\n" if ok else b"starting\n"]
        body: Iterable[bytes] = self._exposition(environ, start_response)
        return body


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    """No access log on stderr (a scrape every few seconds would drown the controller's own log)."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


class MetricsServer:
    """A registry of its own (tests and benchmarks run several) served with the two probes on one address."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.probes = ProbeServer(self.registry)
        self.ready = self.probes.ready  # set once the controller has started: /readyz answers 200 from then on

    def serve(self, host: str, port: int) -> int:
        """Serve /metrics, /healthz and /readyz on host:port (port 0 picks one); returns the port."""
        return self.probes.serve(host, port)

    def stop(self) -> None:
        self.probes.stop()
