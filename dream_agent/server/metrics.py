"""Prometheus metrics of one server: requests, queue, batch sizes, forward passes, latency.

Each app gets its own registry (several apps in one process, as in tests, do not collide); the
process collector adds the server's resident memory (`process_resident_memory_bytes`)."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, generate_latest
from prometheus_client import CONTENT_TYPE_LATEST  # noqa: F401 (re-exported for the /metrics route)

BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    def __init__(self, worker):
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.requests = Counter("dream_agent_requests", "HTTP requests answered", ["endpoint", "status"],
                                registry=self.registry)
        self.latency = Histogram("dream_agent_request_latency_seconds", "time from a request to its last byte",
                                 ["endpoint"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.batch_rows = Histogram("dream_agent_batch_rows", "rows in each forward pass", buckets=BATCH_BUCKETS,
                                    registry=self.registry)
        self.forwards = Counter("dream_agent_forward_passes", "forward passes of the models", registry=self.registry)
        Gauge("dream_agent_queue_length", "jobs waiting for rows in a forward pass",
              registry=self.registry).set_function(lambda: worker.waiting)
        Gauge("dream_agent_running_jobs", "jobs whose rows are in the forward passes",
              registry=self.registry).set_function(lambda: worker.running)
        Gauge("dream_agent_in_flight", "requests submitted to the model loop and not finished",
              registry=self.registry).set_function(lambda: worker.in_flight)

    def forward(self, rows: int) -> None:  # the batcher's on_forward, from the model thread
        self.forwards.inc()
        self.batch_rows.observe(rows)

    def text(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """ASGI middleware: counts each HTTP request by its route and status, and times it to its last byte
    (a stream included)."""

    def __init__(self, app, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, status = time.perf_counter(), {"code": 500}

        async def sending(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            endpoint = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(endpoint, str(status["code"])).inc()
            self.metrics.latency.labels(endpoint).observe(time.perf_counter() - start)
