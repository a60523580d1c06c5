"""The overview page: the health tree, the live models, the last update and recent traffic.

The health checks reach the Celery worker and the databus over the network (up to 3 s each
when one is down), so the page shows the tree of the last check while it is under
HEALTH_MAX_AGE_S old and refreshes an older one in the background (showing it meanwhile with
its age): a page view never waits for the network except the first in a process. The rest is
read on every view: engine readiness (in memory), live models and the last update (two small
queries), traffic (two aggregations over a day of rollup buckets).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app

from recommender.models.ops import UpdateTask
from recommender.services import traffic
from recommender.services.health import UP, engines, health, training
from recommender.services.runtime import runtime

HEALTH_MAX_AGE_S = 10.0
EXTENSION = "dashboard_health"


@dataclass(frozen=True)
class HealthSnapshot:
    tree: dict[str, Any]  # the /health tree without its `training` part
    checked_at: float  # epoch seconds

    @property
    def healthy(self) -> bool:
        return self.tree["status"] == UP


class HealthCache:
    """The last health check of one app; stale ones are refreshed by one background thread."""

    def __init__(self, app: Flask, max_age_s: float = HEALTH_MAX_AGE_S):
        self.app = app
        self.max_age_s = max_age_s
        self._snapshot: HealthSnapshot | None = None
        self._lock = threading.Lock()
        self._refreshing = False

    def get(self) -> HealthSnapshot:
        snapshot = self._snapshot
        if snapshot is None:
            return self.refresh()
        if time.time() - snapshot.checked_at > self.max_age_s:
            with self._lock:
                start, self._refreshing = not self._refreshing, True
            if start:
                threading.Thread(target=self.refresh, name="dashboard-health", daemon=True).start()
        return snapshot

    def refresh(self) -> HealthSnapshot:
        try:
            with self.app.app_context():
                tree, _ = health()
            tree.pop("training")
            self._snapshot = HealthSnapshot(tree, time.time())
            return self._snapshot
        finally:
            with self._lock:
                self._refreshing = False


def health_snapshot() -> HealthSnapshot:
    app = current_app._get_current_object()
    cache = app.extensions.get(EXTENSION)
    if cache is None:
        cache = app.extensions.setdefault(EXTENSION, HealthCache(app))
    return cache.get()


@dataclass(frozen=True)
class ServedEngine:
    name: str
    ready: bool
    reason: str | None
    version: int | None  # the live model version it serves (None: untrained or untrainable)


@dataclass(frozen=True)
class ActionCounts:
    """One source's user actions: outcome -> (last hour, last day)."""

    source: str
    outcomes: dict[str, tuple[int, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class Overview:
    health: HealthSnapshot
    engines: list[ServedEngine]
    model_versions: dict[str, int]  # live version per stored model name
    champion: dict[str, Any] | None  # recorded by the Auto engine's training, when it exists
    last_update: UpdateTask | None
    recommendations: list[traffic.Counted]
    user_actions: list[ActionCounts]


def served_engines() -> list[ServedEngine]:
    """Each served name (ENGINES order), whether it is ready, and its live model version."""
    checks = engines()
    return [
        ServedEngine(
            name,
            checks[name]["status"] == UP,
            checks[name].get("error"),
            engine.model_version(),
        )
        for name, engine in runtime().engines.engines().items()
    ]


def action_counts(counted: list[traffic.Counted]) -> list[ActionCounts]:
    by_source: dict[str, ActionCounts] = {}
    for row in counted:
        source, outcome = row.labels
        by_source.setdefault(source, ActionCounts(source)).outcomes[outcome] = (row.hour, row.day)
    return list(by_source.values())


def overview() -> Overview:
    models = training()
    return Overview(
        health=health_snapshot(),
        engines=served_engines(),
        model_versions=models["model_versions"],
        champion=models.get("champion"),
        last_update=UpdateTask.objects.order_by("-created_at").exclude("dump_file_id").first(),
        recommendations=traffic.recommendations(),
        user_actions=action_counts(traffic.user_actions()),
    )
