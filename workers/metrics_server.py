"""The worker host's ``/metrics``: the main process of ``python -m workers`` serves what its pool
children write to the shared multiprocess directory (mediacommon/metrics.py).

Used where a worker runs in its own pod (deploy/kubernetes: ``MEDIAINTEL_WORKER_METRICS_PORT``,
port ``metrics``, one emptyDir per pod). Files of pids that are gone (a restarted container's) are
forgotten first. Under ``make run`` the port stays 0 and the workers share the web's directory,
whose ``/metrics`` shows them.
"""

from __future__ import annotations

import logging
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread

from mediacommon.metrics import CONTENT_TYPE_LATEST, exposition, forget_dead_processes, multiproc_dir

log = logging.getLogger("mediaintel.worker")


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] != "/metrics":
            self.send_error(404, "only /metrics here")
            return
        body = exposition()
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPE_LATEST)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def serve_metrics(port: int, host: str = "0.0.0.0") -> ThreadingHTTPServer:  # noqa: S104  (scraped from the pod network)
    """Start the metrics endpoint in a daemon thread of this (the worker's main) process."""
    d = multiproc_dir()
    if not d:
        log.warning("MEDIAINTEL_WORKER_METRICS_PORT without PROMETHEUS_MULTIPROC_DIR: only the main "
                    "process's metrics are served, not the pool children's")
    else:
        forget_dead_processes()
    server = ThreadingHTTPServer((host, port), _Handler)
    Thread(target=server.serve_forever, name="metrics-http", daemon=True).start()
    log.info("worker metrics on :%d/metrics (directory %s)", server.server_address[1], d or "none")
    return server
