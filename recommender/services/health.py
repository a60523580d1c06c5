"""`GET /health`: a tree of checks; a node is UP only when all its children are."""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import current_app
from kombu.exceptions import OperationalError
from pymongo.errors import PyMongoError

from recommender.models.marketplace import Service, User
from recommender.models.ops import ModelVersion, UpdateTask

logger = logging.getLogger(__name__)
UP, DOWN = "UP", "DOWN"
CELERY_TIMEOUT_S = 3.0

# Engine name -> check returning (ready, error); the engine registry adds its engines here.
ENGINE_CHECKS: dict[str, Callable[[], tuple[bool, str | None]]] = {}


def leaf(ok: bool, error: str | None = None) -> dict:
    node = {"status": UP if ok else DOWN}
    if not ok and error:
        node["error"] = error
    return node


def branch(**children: dict) -> dict:
    status = UP if all(child["status"] == UP for child in children.values()) else DOWN
    return {"status": status, **children}


def table(document, threshold: int) -> dict:
    try:
        return leaf(document.objects.count() >= threshold, "Too few items")
    except PyMongoError:
        return leaf(False, "Error during fetching items")


def database() -> dict:
    config = current_app.config
    return branch(
        user_table=table(User, config["HEALTHY_USERS_THRESHOLD"]),
        service_table=table(Service, config["HEALTHY_SERVICES_THRESHOLD"]),
    )


def celery_worker() -> dict:
    from recommender.tasks import ping

    try:
        ok = ping.apply_async(retry=False, time_limit=CELERY_TIMEOUT_S).get(
            timeout=CELERY_TIMEOUT_S
        )
        return leaf(bool(ok), "Couldn't reach a celery worker")
    except OperationalError:
        return leaf(False, "Redis backend is not operational")
    except Exception:  # a timeout: no worker answered
        return leaf(False, "Couldn't reach a celery worker")


def databus() -> dict:
    """A real STOMP CONNECT with the configured credentials (and TLS when RS_DATABUS_SSL)."""
    from recommender.databus.connection import check, settings_from_config

    error = check(settings_from_config(current_app.config, timeout_s=CELERY_TIMEOUT_S))
    if error:
        logger.warning("Databus health check failed: %s", error)
    return leaf(error is None, "Connection to databus failed")


def engines() -> dict:
    return branch(**{name: leaf(*check()) for name, check in ENGINE_CHECKS.items()})


def training() -> dict:
    last = (
        UpdateTask.objects.order_by("-created_at")
        .only("task_id", "status", "step", "reason")
        .first()
    )
    live = ModelVersion.objects(status="live").only("name", "version")
    return {
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
