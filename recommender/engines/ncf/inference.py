"""`NCF` (top K) and `NCFRanking` (every candidate) for logged-in users.

The component (network, id indexes, the embeddings its content branch was trained on) is built
once per NCF version, embeddings version and catalogue version (model_cache). A request is then
a few searchsorted lookups and one forward pass over the candidate tensor. Users and services
the model was not trained with map to its learned "unknown" id rows and are scored through the
content branch (their AE embeddings, encoded on demand by the embeddings table) and, for users,
through the history term over the services they accessed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from recommender.engines.autoencoders import EMBEDDINGS_MODEL
from recommender.engines.autoencoders import embeddings as emb
from recommender.engines.base.engine import (
    EngineResult,
    RecommendationContext,
    Scored,
    ServingDeps,
    TrainedEngine,
    pick,
)
from recommender.engines.base.scoring import IdLists, offline_test_metrics
from recommender.engines.ncf import MODEL_NAME
from recommender.engines.ncf.model import NCFModel, NCFShape, ServiceParts
from recommender.evaluation.metrics import DEFAULT_KS
from recommender.id_index import UNKNOWN, IdIndex
from recommender.model_store.versions import NoModelError, StoredModel, stamp_name
from recommender.store import stamps

logger = logging.getLogger(__name__)

LONG_KNOWN = "Marketplace users whose orders resemble yours also ordered this service."
SHORT_KNOWN = "Ordered by users like you"
LONG_NEW_USER = "It fits the interests in your profile and the services you have used."
SHORT_NEW_USER = "Fits your profile"
LONG_NEW_SERVICE = "A newly listed service whose features fit your interests."
SHORT_NEW_SERVICE = "New and relevant to you"


@dataclass(frozen=True)
class NCFComponent:
    version: int
    network: NCFModel
    users: IdIndex
    services: IdIndex
    embeddings: emb.Embeddings
    parts: ServiceParts  # of every service the embeddings table holds, in its order
    embedded: IdIndex  # the embeddings table's service ids, in the order of `parts`

    def batch_scores(
        self, user_ids: np.ndarray, histories: IdLists, candidates: np.ndarray
    ) -> np.ndarray:
        """Probabilities of each user (ids [n], their accessed services) for their candidates
        (service ids [n, m]), for evaluation and the Hybrid engine: the pass of `scores`."""
        logits = self._forward(user_ids, self._mean_histories(histories), candidates)
        return 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))

    def scores(
        self, user_id: int, candidates: np.ndarray, accessed: np.ndarray
    ) -> tuple[np.ndarray, bool, np.ndarray]:
        """(probability per candidate, user known, service known per candidate); `accessed`:
        the user's accessed services, the history the model pools (unknown ones are skipped)."""
        user_ids = np.array([user_id], dtype=np.int64)
        history = self._mean_histories(IdLists.one(accessed))
        logits = self._forward(user_ids, history, candidates[None, :])[0]
        user_known = bool(self.users.rows(user_ids)[0] != UNKNOWN)
        service_known = self.services.rows(candidates) != UNKNOWN
        return torch.sigmoid(torch.from_numpy(logits)).numpy(), user_known, service_known

    @torch.inference_mode()
    def _mean_histories(self, histories: IdLists) -> torch.Tensor:
        """Per user, the mean history row of their accessed services [n, mf_dim]; services
        the model does not know are skipped, an empty history is zeros."""
        rows = self.services.rows(histories.ids)
        known = rows != UNKNOWN
        counts = np.bincount(histories.owners()[known], minlength=len(histories))
        offsets = np.cumsum(counts) - counts
        return self.network.mean_history(torch.from_numpy(rows[known]), torch.from_numpy(offsets))

    def _forward(
        self, user_ids: np.ndarray, history: torch.Tensor, candidates: np.ndarray
    ) -> np.ndarray:
        """Logits [n, m] of users (ids [n], mean history rows [n, mf_dim]) over their
        candidates (service ids [n, m])."""
        return self.network.forward_users(
            torch.from_numpy(self.users.rows(user_ids)),
            torch.from_numpy(self.embeddings.users.rows(user_ids)),
            history,
            torch.from_numpy(self.services.rows(candidates).reshape(candidates.shape)),
            self._parts_of(candidates.reshape(-1)),
        ).numpy()

    def _parts_of(self, candidates: np.ndarray) -> ServiceParts:
        """The precomputed parts of `candidates`; those of candidates newer than the embeddings
        (their content is encoded on demand) are computed now."""
        positions, embedded = self.embedded.positions(candidates)
        new = ~embedded
        parts = self.parts.take(torch.from_numpy(positions))
        if new.any():
            content = self.embeddings.services.rows(candidates[new])
            new_rows = torch.from_numpy(new)
            parts.content_first[new_rows], parts.match[new_rows] = self.network.content_parts(
                torch.from_numpy(content)
            )
        return parts


def build(stored: StoredModel, live: emb.Embeddings | None) -> NCFComponent:
    """The component of a stored version; one that cannot be rebuilt (written by an older,
    incompatible version of this code) counts as missing: NCF is then not ready, no 500."""
    try:
        network = NCFModel(NCFShape.from_dict(stored.config["shape"]))
        network.load_state_dict(stored.tensors["state"])
    except (KeyError, TypeError, RuntimeError) as error:
        logger.exception("NCF v%s cannot be loaded", stored.version)
        raise NoModelError(f"NCF v{stored.version} cannot be loaded: {error!r}") from error
    network.eval()
    embeddings = emb.pinned_embeddings(int(stored.config["embeddings_version"]), live)
    return NCFComponent(
        version=stored.version,
        network=network,
        users=IdIndex(stored.tensors["user_ids"].numpy()),
        services=IdIndex(stored.tensors["service_ids"].numpy()),
        embeddings=embeddings,
        parts=network.service_parts(torch.from_numpy(embeddings.services.matrix)),
        embedded=IdIndex(embeddings.services.ids),
    )


def component(deps: ServingDeps) -> NCFComponent | None:
    """The live NCF component; None when no NCF (or the embeddings it needs) is stored."""
    # The embeddings are fetched first: the cache must not be re-entered from inside a build.
    # A missing embeddings version raises NoModelError in `build`: the cache keeps None.
    live = emb.cached_embeddings(deps.models)
    return deps.models.get(
        MODEL_NAME,
        lambda stored: build(stored, live),
        depends_on=(stamps.CATALOGUE, stamp_name(EMBEDDINGS_MODEL)),
    )


def offline_metrics(
    deps: ServingDeps, ks: Sequence[int] = DEFAULT_KS, seed: int | None = None
) -> dict:
    """Test metrics of the live NCF as served (see base/scoring.py); each user's history is
    their training positives, as in the pipeline's evaluation."""
    return offline_test_metrics(deps, component(deps), "NCF", ks, seed)


def explanations(user_known: bool, service_known: np.ndarray) -> tuple[list[str], list[str]]:
    if not user_known:
        return [LONG_NEW_USER] * len(service_known), [SHORT_NEW_USER] * len(service_known)
    long = pick(service_known, LONG_KNOWN, LONG_NEW_SERVICE)
    return long, pick(service_known, SHORT_KNOWN, SHORT_NEW_SERVICE)


class NCF(TrainedEngine):
    def __init__(self, deps: ServingDeps):
        self.deps = deps

    def component(self) -> NCFComponent | None:
        return component(self.deps)

    def scored(self, context: RecommendationContext) -> Scored:
        model = self.component()
        if model is None or context.user_id is None or len(context.candidates) == 0:
            return Scored.empty()
        candidates = np.asarray(context.candidates, dtype=np.int64)
        accessed = np.asarray(context.accessed_services, dtype=np.int64)
        scores, user_known, service_known = model.scores(context.user_id, candidates, accessed)
        return Scored(
            candidates, scores, lambda order: explanations(user_known, service_known[order])
        )

    def recommend(self, context: RecommendationContext, k: int) -> EngineResult:
        return self.scored(context).top(k)


def build_engine(deps: ServingDeps) -> NCF:
    return NCF(deps)
