"""Engine "RL": the actor of the request's panel weighting the request's candidates' features.

Built once per RL version, embeddings version and catalogue version (model_cache): the actors
(eval mode), the service table of every catalogue service (content embeddings of the version
the actors were trained in, declared interests, training popularity) and every user's declared
interests, read once at build. A request costs: a few array lookups, one actor forward pass
(batch of 1), the [candidates, F] features and one product with the weights; services are never
looped over in Python. The state's history is the user's last accessed services (what serving
knows without a database read). A candidate missing from the table (added since the catalogue
was read) has all-zero features: it is served only when nothing better is left.
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
    top,
)
from recommender.engines.rl import MODEL_NAME
from recommender.engines.rl.candidates import (
    STATISTICS,
    ServiceTable,
    States,
    candidate_features,
    interest_matrix,
    scores,
    state_vector,
    vocabulary_of,
)
from recommender.engines.rl.networks import Actor, Shape
from recommender.id_index import IdIndex
from recommender.model_store.versions import NoModelError, StoredModel, stamp_name
from recommender.models.marketplace import Service, User
from recommender.store import get_db, stamps

LONG = "Recommended from your interests, the services you used and what similar visitors chose."
SHORT = "Based on users' activity"
INTEREST_FIELDS = {"categories": 1, "scientific_domains": 1}


@dataclass(frozen=True)
class RLComponent:
    version: int
    actors: dict[int, Actor]  # by K
    history_len: int
    embeddings: emb.Embeddings  # the version the actors were trained in
    index: IdIndex  # catalogue service ids (sorted) -> row in `table` (0: unknown)
    table: ServiceTable
    user_index: IdIndex  # user ids (sorted) -> row in `user_interests` (0: unknown)
    user_interests: torch.Tensor  # float 0/1 [U + 1, V]

    def actor(self, k: int) -> Actor:
        return self.actors.get(k) or self.actors[max(self.actors)]

    def states(self, context: RecommendationContext) -> States:
        user = context.user_id
        if user is None:
            embedded = np.zeros((1, self.embeddings.users.dim), np.float32)
            interests = self.user_interests[:1]
        else:
            embedded = self.embeddings.users.rows([user])
            row = self.user_index.rows(np.array([user], np.int64))
            interests = self.user_interests[torch.from_numpy(row)]
        history = np.zeros((1, self.history_len), np.int64)
        recent = np.asarray(context.accessed_services[-self.history_len :], dtype=np.int64)
        if len(recent):
            history[0, self.history_len - len(recent) :] = self.index.rows(recent)
        return States(torch.from_numpy(embedded), interests, torch.from_numpy(history))


def _interests(document) -> tuple[np.ndarray, list[dict]]:
    docs = sorted(
        get_db()[document._get_collection_name()].find({}, INTEREST_FIELDS),
        key=lambda d: d["_id"],
    )
    return np.fromiter((d["_id"] for d in docs), np.int64, len(docs)), docs


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
    statistics = stored.tensors["statistics"]
    trained_rows = IdIndex(statistics["ids"].numpy()).rows(services)
    # Services added since training: popularity 0, the median value rate (the prior's
    # neighbourhood: nothing is known about them yet).
    known = {}
    for name in STATISTICS:
        values = statistics[name].numpy()
        unseen = 0.0 if name == "popularity" else float(np.median(values)) if len(values) else 0.0
        known[name] = np.concatenate([[unseen], values])[trained_rows]
    service_ids, service_docs = _interests(Service)
    user_ids, user_docs = _interests(User)
    by_id = dict(zip(service_ids.tolist(), service_docs, strict=True))
    ordered = [by_id.get(int(i)) for i in services]
    vocabulary = vocabulary_of(ordered)
    return RLComponent(
        version=stored.version,
        actors=actors,
        history_len=int(stored.config["history_len"]),
        embeddings=embeddings,
        index=IdIndex(services),
        table=ServiceTable.build(
            embeddings.services.rows(services) if len(services) else np.zeros((0, 1), np.float32),
            interest_matrix(ordered, vocabulary)[1:],
            **known,
        ),
        user_index=IdIndex(user_ids),
        user_interests=torch.from_numpy(interest_matrix(user_docs, vocabulary)),
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
        # Candidates minus what the user already has (the selector normally removed those; an
        # engine called directly must not recommend them either).
        candidates = candidates[~np.isin(candidates, np.asarray(context.accessed_services))]
        if len(candidates) == 0:
            return EngineResult.empty()
        states = model.states(context)
        rows = torch.from_numpy(model.index.rows(candidates))[None, :]
        with torch.inference_mode():
            weights = model.actor(k)(state_vector(model.table, states))
            scored = scores(candidate_features(model.table, states, rows), weights)[0].numpy()
        chosen = top(candidates, scored.astype(np.float64), k)
        # Scores in (0, 1): the logistic of the weighted features (weights are unit vectors).
        return EngineResult.build(
            candidates[chosen], 1.0 / (1.0 + np.exp(-scored[chosen])), LONG, SHORT
        )


def build_engine(deps: ServingDeps) -> RL:
    return RL(deps)
