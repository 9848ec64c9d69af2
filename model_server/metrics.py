"""Prometheus metrics of one app instance (own registry, so tests can build many apps)."""

from __future__ import annotations

import time
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

ANSWER_ROUTE: Final = "/answer"
CHAT_ROUTE: Final = "/v1/chat/completions"
# The routes that generate; the route is a label, so the bot's and OpenAI clients' traffic part.
ROUTES: Final = (ANSWER_ROUTE, CHAT_ROUTE)
# A token takes milliseconds on a GPU and up to seconds on a loaded CPU.
TOKEN_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class ServerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "http_requests",
            "POST /answer and /v1/chat/completions requests by route and HTTP status",
            ["route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Time from a request's arrival to its response's last byte (a stream's end), by route",
            ["route"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120),
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "generate_batch_size",
            "Requests answered by one generate call",
            buckets=(1, 2, 4, 8, 16, 32, 64),
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "answer_queue_depth", "Requests waiting for generation", registry=self.registry
        )
        self.first_token = self._per_token(
            "time_to_first_token_seconds",
            "Streamed answers: from the request's arrival at the model to its first piece of text",
        )
        self.inter_token = self._per_token(
            "inter_token_seconds", "Streamed answers: the gap between two consecutive pieces of one answer"
        )

    def _per_token(self, name: str, documentation: str) -> Histogram:
        return Histogram(
            name, documentation, ["engine", "route"], buckets=TOKEN_BUCKETS, registry=self.registry
        )

    def token_clock(self, engine: str, route: str, arrived: float) -> TokenClock:
        return TokenClock(
            self.first_token.labels(engine=engine, route=route),
            self.inter_token.labels(engine=engine, route=route),
            arrived,
        )


class TokenClock:
    """Times one streamed answer's pieces, from ``arrived`` (a time.perf_counter())."""

    def __init__(self, first: Histogram, gaps: Histogram, arrived: float) -> None:
        self._first, self._gaps = first, gaps
        self._last: float | None = None
        self._arrived = arrived

    def piece(self) -> None:
        now = time.perf_counter()
        if self._last is None:
            self._first.observe(now - self._arrived)
        else:
            self._gaps.observe(now - self._last)
        self._last = now
