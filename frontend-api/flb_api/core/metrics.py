"""Request counters (a plain ASGI middleware) and the Prometheus text exposition of /metrics.

Requests are counted by route template (``/rounds/{n}``), never by raw path, so a crawler cannot
grow the number of series without bound.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

ASGIApp = Any


class RequestMetrics:
    """Counts requests and their total duration by (method, route, status)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: Counter[tuple[str, str, int]] = Counter()
        self.seconds: defaultdict[tuple[str, str], float] = defaultdict(float)

    def record(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(method, route, status)] += 1
            self.seconds[(method, route)] += seconds

    def snapshot(self) -> tuple[dict[tuple[str, str, int], int], dict[tuple[str, str], float]]:
        with self._lock:
            return dict(self.requests), dict(self.seconds)


class MetricsMiddleware:
    """Times every HTTP request and records it under its matched route."""

    def __init__(self, app: ASGIApp, metrics: RequestMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.record(scope["method"], template, status, time.perf_counter() - started)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**labels: object) -> str:
    return "{" + ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items()) + "}" if labels else ""


def render(samples: Iterable[tuple[str, str, str, float | int | None]], metrics: RequestMetrics) -> str:
    """Prometheus text format 0.0.4: ``(name, type, help, value)`` samples, then the request counters."""
    lines: list[str] = []
    for name, kind, help_text, value in samples:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        lines.append(f"{name} {'NaN' if value is None else value}")
    requests, seconds = metrics.snapshot()
    lines += [
        "# HELP flb_api_requests_total HTTP requests served, by route and status",
        "# TYPE flb_api_requests_total counter",
    ]
    for (method, route, status), count in sorted(requests.items()):
        lines.append(f"flb_api_requests_total{_labels(method=method, route=route, status=status)} {count}")
    lines += [
        "# HELP flb_api_request_seconds_total Time spent serving requests, by route",
        "# TYPE flb_api_request_seconds_total counter",
    ]
    for (method, route), total in sorted(seconds.items()):
        lines.append(f"flb_api_request_seconds_total{_labels(method=method, route=route)} {total:.6f}")
    return "\n".join(lines) + "\n"
