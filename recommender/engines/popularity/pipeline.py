"""Training of Popularity on the shared pipeline framework: count orders and panel clicks per
service, store them as tensors.

Orders are the users' `accessed_services`; clicks are stored user actions whose root is a
recommendation panel (both spellings). Each collection is read once, projected. Nothing is
random here; the seed is recorded like every pipeline's. With nothing to count the run is
rejected before any model is written, and the previous version keeps serving.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np
import torch

from recommender.engines.base.outcome import PipelineOutcome
from recommender.engines.base.pipeline import (
    Artifact,
    DataValidationError,
    Pipeline,
    RunContext,
    TrainingEnv,
)
from recommender.engines.popularity import MODEL_NAME
from recommender.models.activity import UserAction
from recommender.models.marketplace import User
from recommender.panels import PANEL_ROOT_SPELLINGS
from recommender.store import get_db

Counts = dict[str, torch.Tensor]  # service_ids (sorted), orders, clicks


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


@dataclass(frozen=True)
class Events:
    orders: np.ndarray  # one service id per order
    clicks: np.ndarray  # one service id per panel click


class PopularityPipeline(Pipeline[Events, Events, Counts]):
    name = "Popularity"

    def extract(self, ctx: RunContext) -> Events:
        return Events(ordered_services(), panel_clicks())

    def validate_data(self, raw: Events, ctx: RunContext) -> None:
        ctx.details.update(orders=len(raw.orders), panel_clicks=len(raw.clicks))
        if len(raw.orders) + len(raw.clicks) == 0:
            raise DataValidationError("no orders or panel clicks to count")

    def prepare(self, raw: Events, ctx: RunContext) -> Events:
        return raw

    def train(self, data: Events, ctx: RunContext) -> Counts:
        return count(data.orders, data.clicks)

    def evaluate(self, model: Counts, data: Events, ctx: RunContext) -> dict[str, Any]:
        return {
            "orders": len(data.orders),
            "panel_clicks": len(data.clicks),
            "services": len(model["service_ids"]),
        }

    def package(self, model: Counts, metrics: dict[str, Any], ctx: RunContext) -> Artifact:
        return Artifact(MODEL_NAME, model)


def train(env: TrainingEnv, seed: int | None = None, progress: bool = False) -> PipelineOutcome:
    """Count, store as a candidate, promote (see the module doc)."""
    return PopularityPipeline().run(env, seed, progress)
