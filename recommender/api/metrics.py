"""`GET /metrics` (Prometheus text format) and the per-request counters and latencies.

Each process counts its own requests. Under gunicorn with several workers, set
PROMETHEUS_MULTIPROC_DIR (an empty directory) so that any worker's `/metrics` reports all of
them (prometheus_client's multiprocess mode).
"""

from __future__ import annotations

import os
import time

from flask import Flask, Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from recommender.metrics import MODEL_VERSION, REQUEST_LATENCY, REQUESTS
from recommender.services.runtime import runtime

UNMATCHED = "<unmatched>"  # one label for every unknown path, so labels stay few


def _start() -> None:
    g.metrics_started = time.perf_counter()


def _record(response: Response) -> Response:
    endpoint = request.url_rule.rule if request.url_rule is not None else UNMATCHED
    REQUESTS.labels(endpoint, request.method, str(response.status_code)).inc()
    started = g.get("metrics_started")
    if started is not None:
        REQUEST_LATENCY.labels(endpoint).observe(time.perf_counter() - started)
    return response


def metrics() -> Response:
    for name, engine in runtime().engines.engines().items():
        version = engine.model_version()
        if version is not None:
            MODEL_VERSION.labels(name).set(version)
        else:  # no live model (any more): drop a stale version
            MODEL_VERSION.remove(name)
    return Response(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)


def _registry() -> CollectorRegistry:
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    return registry


def init_metrics(app: Flask) -> None:
    """Count and time every request (call before other before_request hooks) and serve
    `/metrics` (left out of Swagger: it is for Prometheus, not for API clients)."""
    app.before_request(_start)
    app.after_request(_record)
    app.add_url_rule("/metrics", "metrics", metrics, methods=["GET"])
