"""Training of Popularity: count orders and panel clicks per service, store them as tensors.

Orders are the users' `accessed_services`; clicks are stored user actions whose root is a
recommendation panel (both spellings). Each collection is read once, projected. Nothing is
random here; `seed` is accepted for the chain's uniform signature.
"""

from __future__ import annotations

import logging
from itertools import chain

import numpy as np
import torch
from flask import current_app

from recommender.engines.base import model_store
from recommender.engines.base.outcome import PipelineOutcome
from recommender.extensions import get_db
from recommender.models.activity import UserAction
from recommender.models.marketplace import User
from recommender.models.ops import PipelineMetadata, StepMetadata, utcnow
from recommender.panels import PANEL_ROOT_SPELLINGS

logger = logging.getLogger(__name__)
MODEL_NAME = "popularity"
PIPELINE = "Popularity"


def ordered_services() -> np.ndarray:
    users = get_db()[User._get_collection_name()].find({}, {"accessed_services": 1, "_id": 0})
    return np.fromiter(
        chain.from_iterable(doc.get("accessed_services") or () for doc in users), dtype=np.int64
    )


def panel_clicks() -> np.ndarray:
    actions = get_db()[UserAction._get_collection_name()].find(
        {
            "source.root.type": {"$in": sorted(PANEL_ROOT_SPELLINGS)},
            "source.root.service": {"$ne": None},
        },
        {"source.root.service": 1, "_id": 0},
    )
    return np.fromiter((doc["source"]["root"]["service"] for doc in actions), dtype=np.int64)


def count(orders: np.ndarray, clicks: np.ndarray) -> dict[str, torch.Tensor]:
    """Per service id (sorted): how many orders and panel clicks it got."""
    ids = np.union1d(orders, clicks)
    order_counts = np.zeros(len(ids), dtype=np.float32)
    click_counts = np.zeros(len(ids), dtype=np.float32)
    np.add.at(order_counts, np.searchsorted(ids, orders), 1)
    np.add.at(click_counts, np.searchsorted(ids, clicks), 1)
    return {
        "service_ids": torch.from_numpy(ids),
        "orders": torch.from_numpy(order_counts),
        "clicks": torch.from_numpy(click_counts),
    }


def _step(name: str, started, details: dict) -> StepMetadata:
    ended = utcnow()
    return StepMetadata(
        name=name,
        status="completed",
        start_time=started,
        end_time=ended,
        duration_s=(ended - started).total_seconds(),
        details=details,
    )


def train(seed: int = 42, progress: bool = False) -> PipelineOutcome:
    """Count, store as a candidate, promote when there is anything to count."""
    metadata = PipelineMetadata(pipeline=PIPELINE, seed=seed).save()
    started = utcnow()
    orders, clicks = ordered_services(), panel_clicks()
    tensors = count(orders, clicks)
    metrics = {
        "orders": len(orders),
        "panel_clicks": len(clicks),
        "services": len(tensors["service_ids"]),
    }
    metadata.steps.append(_step("count", started, metrics))
    model = model_store.save_candidate(
        MODEL_NAME, tensors, metrics=metrics, pipeline_metadata=metadata
    )
    if len(orders) + len(clicks) == 0:
        reason = "no orders or panel clicks to count"
        model_store.reject(model, reason)
        status = "rejected"
    else:
        reason = None
        model_store.promote(model, keep=current_app.config["MODEL_VERSIONS_KEPT"])
        status = "promoted"
    metadata.update(
        set__status=status,
        set__reason=reason,
        set__model_version=model.version,
        set__end_time=utcnow(),
        set__steps=metadata.steps,
    )
    logger.info("Popularity v%s %s: %s", model.version, status, metrics)
    return PipelineOutcome("popularity", status, reason, model.version, metrics)
