"""Engine "RL": the TD3 actor of the request's panel, scoring the request's candidates.

Built once per RL version, embeddings version and catalogue version (model_cache): the actors
(eval mode), the embeddings the actors were trained in, and the feature matrix of every
catalogue service. A request costs: a few array lookups, one actor forward pass (batch of 1)
and one [K, D] x [D, candidates] product; services are never looped over in Python.
Candidates outside the cached matrix (a service added since the catalogue was read) are
encoded from their catalogue features on demand, with popularity 0. The state's history is the
user's last accessed services (what serving knows without a database read; training histories
also hold earlier panel clicks).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from recommender.engines.autoencoders import EMBEDDINGS_MODEL
from recommender.engines.autoencoders import embeddings as emb
from recommender.engines.base.engine import (
    EngineResult,
    RecommendationContext,
    ServingDeps,
    TrainedEngine,
)
from recommender.engines.rl import MODEL_NAME
from recommender.engines.rl.features import service_features
from recommender.engines.rl.networks import Actor, Shape
from recommender.engines.rl.selection import choose
from recommender.id_index import IdIndex
from recommender.model_store.versions import NoModelError, StoredModel, stamp_name
from recommender.store import stamps

LONG = "Recommended from your past orders and the activity patterns of similar users."
SHORT = "Based on users' activity"


def _lookup(ids: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(positions, found) of `wanted` in the sorted `ids`."""
    if len(ids) == 0:
        return np.zeros(len(wanted), np.int64), np.zeros(len(wanted), bool)
    pos = np.minimum(np.searchsorted(ids, wanted), len(ids) - 1)
    return pos, ids[pos] == wanted


@dataclass(frozen=True)
class RLComponent:
    version: int
    actors: dict[int, Actor]  # by K
    history_len: int
    embeddings: emb.Embeddings  # the version the actors were trained in
    index: IdIndex  # catalogue service ids (sorted) -> row + 1 in `features`
    features: np.ndarray  # [len(ids), D]
    popularity_ids: np.ndarray
    popularity: np.ndarray

    def actor(self, k: int) -> Actor:
        return self.actors.get(k) or self.actors[max(self.actors)]

    def service_rows(self, ids: np.ndarray) -> np.ndarray:
        """Feature rows of `ids` [n, D]; services not in the cached matrix are encoded."""
        positions, found = self.index.positions(ids)
        rows = self.features[positions]
        if not found.all():
            rows = rows.copy()
            rows[~found] = self.encode(ids[~found])
        return rows

    def encode(self, ids: np.ndarray) -> np.ndarray:
        return encode(ids, self.embeddings, self.popularity_ids, self.popularity)

    def user_row(self, user_id: int | None) -> np.ndarray:
        if user_id is None:
            return np.zeros((1, self.embeddings.users.dim), np.float32)
        return self.embeddings.users.rows([user_id])

    def history(self, accessed: tuple[int, ...]) -> np.ndarray:
        """[1, N, D]: the last N accessed services, most recent last, zero-padded in front."""
        out = np.zeros((1, self.history_len, self.features.shape[1]), np.float32)
        recent = np.asarray(accessed[-self.history_len :], dtype=np.int64)
        if len(recent):
            out[0, self.history_len - len(recent) :] = self.service_rows(recent)
        return out


def encode(
    ids: np.ndarray, embeddings: emb.Embeddings, popularity_ids: np.ndarray, popularity: np.ndarray
) -> np.ndarray:
    """Feature rows of `ids`: embedding + training popularity (0 for services unseen then)."""
    pos, found = _lookup(popularity_ids, ids)
    values = np.where(found, popularity[pos], 0.0).astype(np.float32)
    return service_features(embeddings.services.rows(ids), values)


def build(stored: StoredModel, live: emb.Embeddings | None, services: np.ndarray) -> RLComponent:
    """The component of `stored`, for the catalogue's `services` (sorted ids)."""
    version = int(stored.config["embeddings_version"])
    try:
        embeddings = emb.pinned_embeddings(version, live)
    except NoModelError:
        raise NoModelError(f"RL v{stored.version} needs embeddings v{version}, gone") from None
    actors = {}
    for panel, state in stored.tensors["actors"].items():
        actor = Actor(Shape.from_dict(stored.config["shapes"][panel]))
        actor.load_state_dict(state)
        actors[actor.shape.k] = actor.eval()
    popularity_ids = stored.tensors["popularity"]["ids"].numpy()
    popularity = stored.tensors["popularity"]["values"].numpy()
    return RLComponent(
        version=stored.version,
        actors=actors,
        history_len=int(stored.config["history_len"]),
        embeddings=embeddings,
        index=IdIndex(services),
        features=encode(services, embeddings, popularity_ids, popularity),
        popularity_ids=popularity_ids,
        popularity=popularity,
    )


class RL(TrainedEngine):
    def __init__(self, deps: ServingDeps):
        self.deps = deps

    def component(self) -> RLComponent | None:
        """The live RL component; None when no RL model (or the embeddings it needs) exists."""
        # Read first: the cache must not be re-entered from inside a build (its lock is not
        # reentrant). A missing embeddings version raises NoModelError in `build`: None is kept.
        live, services = emb.cached_embeddings(self.deps.models), self.deps.catalogue().ids
        return self.deps.models.get(
            MODEL_NAME,
            lambda stored: build(stored, live, services),
            depends_on=(stamps.CATALOGUE, stamp_name(EMBEDDINGS_MODEL)),
        )

    def recommend(self, context: RecommendationContext, k: int) -> EngineResult:
        model = self.component()
        if model is None:  # dropped since the selector checked readiness
            return EngineResult.empty()
        candidates = np.asarray(context.candidates, dtype=np.int64)
        actor = model.actor(k)
        with torch.inference_mode():
            weights = actor(
                torch.from_numpy(model.user_row(context.user_id)),
                torch.from_numpy(model.history(context.accessed_services)),
            ).numpy()
        # The mask: candidates minus what the user already has (the selector normally removed
        # those; an engine called directly must not recommend them either).
        accessed = np.asarray(context.accessed_services, dtype=np.int64)
        allowed = ~np.isin(candidates, accessed)[None, :]
        columns, scores = choose(weights, model.service_rows(candidates), allowed, k)
        chosen = columns[0] >= 0
        return EngineResult.build(candidates[columns[0][chosen]], scores[0][chosen], LONG, SHORT)


def build_engine(deps: ServingDeps) -> RL:
    return RL(deps)
