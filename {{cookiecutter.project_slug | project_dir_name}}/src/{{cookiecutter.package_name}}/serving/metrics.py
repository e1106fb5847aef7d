"""Prometheus metrics of the service, and the ASGI middleware that records the HTTP ones.

Each app has its own :class:`~prometheus_client.CollectorRegistry`, so tests can build many apps
in one process. With several uvicorn workers each process counts its own requests and a scrape
reaches one worker: for one aggregated view, run one worker per process (one pod, one port each)
behind the balancer; prometheus-client's multiprocess mode is not wired here.

The middleware is plain ASGI (not Starlette's ``BaseHTTPMiddleware``, which costs a task and a
stream copy per request) and labels requests by route template, never by raw path, so a scan of
random URLs cannot blow up the number of series.
"""

from __future__ import annotations

import time
from collections import Counter as Tally
from typing import TYPE_CHECKING

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from .loader import LoadedModel

# Latency buckets in seconds: the fast path answers in about a millisecond, a large batch or a
# cold model in tens to hundreds.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
UNMATCHED = "unmatched"


class ServingMetrics:
    """The service's metrics, in their own registry."""

    def __init__(self) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]  # the *_created series only double the output here
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests, by route template, method and status code.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.errors = Counter(
            "http_request_errors_total",
            "HTTP requests answered with a 4xx or 5xx status, by route and status code.",
            ["route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Time from the request's arrival to its last response byte, by route.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "http_requests_in_flight",
            "Requests being handled right now.",
            registry=self.registry,
        )
        self.predictions = Counter(
            "predictions_total",
            "Records scored, by model version, alias and predicted class.",
            ["model_version", "alias", "prediction"],
            registry=self.registry,
        )
        self.shadow_predictions = Counter(
            "shadow_predictions_total",
            "Records the challenger scored in shadow mode (logged, never returned).",
            ["model_version", "prediction"],
            registry=self.registry,
        )
        self.shadow_errors = Counter(
            "shadow_errors_total",
            "Shadow scoring jobs that failed (the challenger raised; the champion answered).",
            registry=self.registry,
        )
        self.model_info = Gauge(
            "model_info",
            "The model versions being served (value 1), by alias.",
            ["name", "version", "alias", "run_id", "fast_path"],
            registry=self.registry,
        )
        self.ready = Gauge(
            "model_ready",
            "1 when a champion is loaded and requests are answered.",
            registry=self.registry,
        )
        self.reloads = Counter(
            "model_reloads_total",
            "Model loads after start-up, by alias and outcome.",
            ["alias", "outcome"],
            registry=self.registry,
        )
        self.log_dropped = Counter(
            "prediction_log_dropped_total",
            "Prediction log rows dropped because the queue was full or a write failed.",
            registry=self.registry,
        )

    def set_models(self, models: Sequence[LoadedModel]) -> None:
        """Show exactly `models` in ``model_info``."""
        self.model_info.clear()
        for model in models:
            self.model_info.labels(
                name=model.name,
                version=model.version,
                alias=model.alias,
                run_id=model.run_id,
                fast_path=str(model.verification.used_fast_path).lower(),
            ).set(1)

    def count_predictions(self, model: LoadedModel, labels: Sequence[str]) -> None:
        """Add `labels` to ``predictions_total``."""
        for label, count in Tally(labels).items():
            self.predictions.labels(model.version, model.alias, label).inc(count)

    def exposition(self) -> bytes:
        """The metrics in Prometheus' text format."""
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Count, time and track in-flight HTTP requests (see the module docstring)."""

    def __init__(self, app: ASGIApp, metrics: ServingMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, recording its status, latency and in-flight count."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app fails before it answers
        self.metrics.in_flight.inc()

        async def send_and_record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_record_status)
        finally:
            self.metrics.in_flight.dec()
            route = scope.get("route")
            template = getattr(route, "path", UNMATCHED)
            method = scope["method"]
            self.metrics.requests.labels(method, template, str(status)).inc()
            self.metrics.latency.labels(method, template).observe(time.perf_counter() - started)
            if status >= 400:  # noqa: PLR2004 (HTTP client and server errors)
                self.metrics.errors.labels(template, str(status)).inc()
