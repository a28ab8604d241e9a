"""A small HTTP control endpoint of the oracle, for operators and the REST API's operator routes.

    GET /health          status, last error, paused flag, last processed round
    POST /trigger        process a due round now
    POST /pause, /resume stop / restart round processing

Every request needs ``Authorization: Bearer <token>``; the token comes from the environment
variable the configuration names, and the server refuses to start without a proper one.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger("flb.oracle.control")


class ControlServer:
    """Serves the control endpoints in a background thread."""

    def __init__(
        self,
        host: str,
        port: int,
        token: str,
        *,
        status: Callable[[], dict[str, Any]],
        trigger: Callable[[], dict[str, Any]],
        set_paused: Callable[[bool], None],
    ) -> None:
        self.token = token

        def pause_to(paused: bool) -> Callable[[], dict[str, Any]]:
            def handler() -> dict[str, Any]:
                set_paused(paused)
                return status()

            return handler

        handlers: dict[tuple[str, str], Callable[[], dict[str, Any]]] = {
            ("GET", "/health"): status,
            ("POST", "/trigger"): trigger,
            ("POST", "/pause"): pause_to(True),
            ("POST", "/resume"): pause_to(False),
        }
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self, method: str) -> None:
                route = handlers.get((method, self.path.split("?")[0]))
                if route is None:
                    self._reply(404, {"detail": f"no route {method} {self.path}"})
                    return
                header = self.headers.get("Authorization", "")
                if not header.startswith("Bearer "):
                    self._reply(401, {"detail": "missing bearer token"})
                    return
                if not hmac.compare_digest(header[7:].encode(), server.token.encode()):
                    self._reply(403, {"detail": "wrong token"})
                    return
                try:
                    self._reply(200, route())
                except Exception as exc:
                    log.exception("control request failed")
                    self._reply(500, {"detail": str(exc)})

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def _reply(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug(format, *args)

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, name="flb-oracle-control", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> ControlServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
