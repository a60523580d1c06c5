"""Prometheus metrics, one registry per process (served at `GET /metrics`)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter(
    "recommender_http_requests_total", "HTTP requests handled", ["endpoint", "method", "status"]
)
REQUEST_LATENCY = Histogram(
    "recommender_http_request_seconds",
    "HTTP request latency",
    ["endpoint"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
)
ENGINE_LATENCY = Histogram(
    "recommender_engine_seconds",
    "Time an engine takes to answer",
    ["engine"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1),
)
ENGINE_FAILURES = Counter(
    "recommender_engine_failures_total",
    "Requests an engine failed to answer (the next engine in the fallback order answered)",
    ["engine"],
)
RECOMMENDATIONS_SERVED = Counter(
    "recommender_recommendations_served_total", "Recommendations served", ["engine", "panel_id"]
)
USER_ACTIONS_STORED = Counter(
    "recommender_user_actions_stored_total", "User actions stored", ["source"]
)
USER_ACTIONS_DUPLICATE = Counter(
    "recommender_user_actions_duplicate_total", "User actions already stored", ["source"]
)
USER_ACTIONS_REJECTED = Counter(
    "recommender_user_actions_rejected_total", "User actions refused as invalid", ["source"]
)
MODEL_VERSION = Gauge(
    "recommender_model_version",
    "Live model version per engine",
    ["engine"],
    multiprocess_mode="livemax",  # with several workers: the newest version any live one serves
)
TRAINING_SECONDS = Histogram(
    "recommender_training_seconds",
    "Training pipeline durations",
    ["pipeline", "status"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600),
)
EXPERIMENT_IMPRESSIONS = Counter(
    "recommender_experiment_impressions_total",
    "Recommendations with services served in an experiment",
    ["experiment", "variant"],
)
EXPERIMENT_CLICKS = Counter(
    "recommender_experiment_clicks_total",
    "Panel clicks attributed to an experiment's impressions (counted by the results task)",
    ["experiment", "variant"],
)
EXPERIMENT_FALLBACKS = Counter(
    "recommender_experiment_fallbacks_total",
    "Experiment requests answered by another engine than the variant's (not ready, or it "
    "needs a logged-in user)",
    ["experiment", "variant"],
)
