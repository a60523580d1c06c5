"""`GET /health`: a tree of checks; a node is UP only when all its children are."""

from __future__ import annotations

import logging

from kombu.exceptions import OperationalError
from pymongo.errors import PyMongoError

from recommender.broker import BusSettings, check
from recommender.celery_app import celery
from recommender.engines.auto import MODEL_NAME as CHAMPION
from recommender.models.marketplace import Service, User
from recommender.models.ops import ModelVersion, PipelineMetadata, UpdateTask
from recommender.services.runtime import runtime

logger = logging.getLogger(__name__)
UP, DOWN, DISABLED, NOT_PROMOTED = "UP", "DOWN", "DISABLED", "NOT_PROMOTED"
# A check switched off by the settings does not make its parent DOWN, nor does an engine whose
# training gate kept its model out: its requests go to the next engine, as configured.
HEALTHY = {UP, DISABLED, NOT_PROMOTED}
CELERY_TIMEOUT_S = 3.0
PING_TASK = "recommender.tasks.ping"


def leaf(ok: bool, error: str | None = None) -> dict:
    node = {"status": UP if ok else DOWN}
    if not ok and error:
        node["error"] = error
    return node


def branch(**children: dict) -> dict:
    status = UP if all(child["status"] in HEALTHY for child in children.values()) else DOWN
    return {"status": status, **children}


def table(document, threshold: int) -> dict:
    try:
        return leaf(document.objects.count() >= threshold, "Too few items")
    except PyMongoError:
        return leaf(False, "Error during fetching items")


def database() -> dict:
    settings = runtime().settings
    return branch(
        user_table=table(User, settings.HEALTHY_USERS_THRESHOLD),
        service_table=table(Service, settings.HEALTHY_SERVICES_THRESHOLD),
    )


def celery_worker() -> dict:
    try:
        ok = (
            celery.tasks[PING_TASK]
            .apply_async(retry=False, time_limit=CELERY_TIMEOUT_S)
            .get(timeout=CELERY_TIMEOUT_S)
        )
        return leaf(bool(ok), "Couldn't reach a celery worker")
    except OperationalError:
        return leaf(False, "Redis backend is not operational")
    except Exception:  # a timeout: no worker answered
        return leaf(False, "Couldn't reach a celery worker")


def databus() -> dict:
    """A real STOMP CONNECT with the configured credentials (and TLS when RS_DATABUS_SSL);
    DISABLED, without trying, when RS_DATABUS_ENABLED is off."""
    settings = runtime().settings
    if not settings.RS_DATABUS_ENABLED:
        return {"status": DISABLED}
    error = check(BusSettings.of(settings, timeout_s=CELERY_TIMEOUT_S))
    if error:
        logger.warning("Databus health check failed: %s", error)
    return leaf(error is None, "Connection to databus failed")


def engines() -> dict:
    """One node per served engine name (its readiness): UP with a model; NOT_PROMOTED when
    it has none because its pipeline's latest run was rejected (its gate's reason given);
    otherwise DOWN (never trained, training failed, or the model cannot be loaded)."""
    registry = runtime().engines
    nodes = {}
    for name, ready in registry.health_checks().items():
        ok, error = ready()
        verdict = None if ok else latest_verdict(registry.pipeline_of(name))
        if verdict is not None and verdict.status == "rejected":
            nodes[name] = {"status": NOT_PROMOTED, "reason": verdict.reason}
        else:
            nodes[name] = leaf(ok, error)
    return branch(**nodes)


def latest_verdict(pipeline: str | None) -> PipelineMetadata | None:
    """The newest run of `pipeline` (status and reason only), if any; None when the store
    cannot say (the database node reports that)."""
    if pipeline is None:
        return None
    runs = PipelineMetadata.objects(pipeline=pipeline).order_by("-start_time")
    try:
        return runs.only("status", "reason").first()
    except PyMongoError:
        return None


def training() -> dict:
    try:
        return _training()
    except PyMongoError:
        return {"error": "Error during fetching the last update and live models"}


def _training() -> dict:
    last = (
        UpdateTask.objects.order_by("-created_at")
        .only("task_id", "status", "step", "reason")
        .first()
    )
    live = list(ModelVersion.objects(status="live").only("name", "version", "config"))
    champion = next((model for model in live if model.name == CHAMPION), None)
    return {
        # The engine that answers for `Auto` / `AutoRanking`, and why (see engines/auto).
        "champion": None if champion is None else {"version": champion.version, **champion.config},
        "last_update": None
        if last is None
        else {
            "task_id": last.task_id,
            "status": last.status,
            "step": last.step,
            "reason": last.reason,
        },
        "model_versions": {model.name: model.version for model in live},
    }


def health() -> tuple[dict, int]:
    tree = branch(
        database=database(),
        celery_worker=celery_worker(),
        databus=databus(),
        recommender_engines=engines(),
    )
    tree["training"] = training()
    return tree, 200 if tree["status"] == UP else 503
