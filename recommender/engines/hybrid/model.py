"""The Hybrid's component: per (user, candidate), one feature per part (the scores of NCF, EASE
and iALS as they serve, the similarity of the candidate's content embedding to the mean of the
user's services', the log of the candidate's training popularity, and where the pipeline keeps
them EASE's score from the recency-weighted history, `RecentHistory`, the co-visits of
covisits.py and the text similarity of text.py). Each feature is standardised per user over
that user's candidates (EASE's sums grow with the history, so raw scales differ from user to
user) and the features are summed with weights learnt on validation.

The weights are chosen on a small grid (`WEIGHT_GRID` per part) for the best NDCG@10 on the tune
users' sampled candidates: the metric itself, by coordinate ascent as in learning to rank. From
equal weights, each part's weight in turn is set to the grid value that scores best, pass after
pass until no weight changes; a handful of passes costs a few dozen evaluations where the whole
grid would cost 4 ** parts. A pairwise logistic regression over every (positive, negative) pair
was tried first and blended worse than its best part: a loss over all pairs mostly rewards
separating the easy negatives, which popularity does, while NDCG@10 is decided among the few
best-scored candidates. A linear blend keeps serving to one small product over the parts'
scores.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from recommender.engines.autoencoders.embeddings import EmbeddingTable
from recommender.engines.base.scoring import IdLists, ScoringComponent
from recommender.engines.ease.model import EASEComponent
from recommender.evaluation.metrics import positive_ranks, ranking_metrics
from recommender.id_index import IdIndex

MAX_TUNE_USERS = 2000  # the weights are chosen on at most this many tune users
WEIGHT_GRID = (0.0, 0.25, 0.5, 1.0)  # per part; the blend is scale-free, so relative weights
MAX_PASSES = 10  # of coordinate ascent; it stops sooner when a pass changes nothing
RECENCY_DECAYS = (0.7, 0.85, 0.95)  # the recent-history part's decay is chosen among these


@dataclass(frozen=True)
class ContentSimilarity:
    """Dot product of the candidate's service embedding with the mean embedding of the
    services the user accessed (unit rows: a cosine-like similarity)."""

    table: EmbeddingTable
    version: int = 0

    def batch_scores(
        self, user_ids: np.ndarray, histories: IdLists, candidates: np.ndarray
    ) -> np.ndarray:
        rows = self.table.rows(candidates.reshape(-1)).reshape(*candidates.shape, -1)
        return (rows @ self.mean_rows(histories)[:, :, None])[..., 0]

    def mean_rows(self, histories: IdLists) -> np.ndarray:
        """[users, dim] float32: each history's mean embedding (zeros for an empty one)."""
        if len(histories) == 1:  # serving: a plain sum, not a sparse product
            total = self.table.rows(histories.ids).sum(axis=0, dtype=np.float64)
            return (total / max(len(histories.ids), 1)).astype(np.float32)[None]
        lengths = np.maximum(histories.lengths(), 1)
        mean = sparse.csr_matrix(
            (
                1.0 / lengths[histories.owners()],
                (histories.owners(), np.arange(len(histories.ids))),
            ),
            shape=(len(histories), len(histories.ids)),
        ) @ self.table.rows(histories.ids)
        return np.asarray(mean, dtype=np.float32)


@dataclass(frozen=True)
class Popularity:
    """log(1 + training positives) of the candidate."""

    services: IdIndex
    log_counts: np.ndarray  # [n + 1], row 0 (unknown) zero
    version: int = 0

    def batch_scores(
        self, user_ids: np.ndarray, histories: IdLists, candidates: np.ndarray
    ) -> np.ndarray:
        return self.log_counts[self.services.rows(candidates).reshape(candidates.shape)]


@dataclass(frozen=True)
class RecentHistory:
    """EASE's scores from the user's history weighted by recency: the latest service weighs 1
    and each older one `decay` times the one after it (a history lists services oldest first,
    the time order). Users access related services in runs, so what they accessed last says
    more about what comes next than the whole history's sum does. A service listed twice counts
    once, at its latest place."""

    ease: EASEComponent
    decay: float

    @property
    def version(self) -> int:
        return self.ease.version

    def batch_scores(
        self, user_ids: np.ndarray, histories: IdLists, candidates: np.ndarray
    ) -> np.ndarray:
        rows = self.ease.services.rows(candidates).reshape(candidates.shape)
        return self.ease.history_sums(histories, rows, self.decay)


def popularity(ids: np.ndarray, counts: np.ndarray) -> Popularity:
    log_counts = np.zeros(len(ids) + 1, dtype=np.float64)
    log_counts[1:] = np.log1p(counts)
    return Popularity(IdIndex(ids), log_counts)


def standardised(features: np.ndarray) -> np.ndarray:
    """`features` [users, candidates, parts] (or one part's [users, candidates]) centred and
    scaled per user and part over the candidates (a constant feature becomes zeros)."""
    # np.mean and np.std's own arithmetic (sum, then divide by the count), without their
    # Python wrappers and with the centred values computed once: the same results.
    count = features.shape[1]
    centred = features - np.add.reduce(features, axis=1, keepdims=True) / count
    spread = np.sqrt(np.add.reduce(centred * centred, axis=1, keepdims=True) / count)
    return centred / np.where(spread > 0, spread, 1.0)


@dataclass(frozen=True)
class HybridComponent:
    version: int
    parts: Mapping[str, ScoringComponent]  # in feature order
    weights: np.ndarray  # per part, on standardised features

    def features(
        self, user_ids: np.ndarray, histories: IdLists, candidates: np.ndarray
    ) -> np.ndarray:
        """[users, m, parts], standardised per user."""
        columns = [
            part.batch_scores(user_ids, histories, candidates) for part in self.parts.values()
        ]
        return standardised(np.stack(columns, axis=-1).astype(np.float64))

    def batch_scores(
        self, user_ids: np.ndarray, histories: IdLists, candidates: np.ndarray
    ) -> np.ndarray:
        """`features` @ `weights`, one part at a time: a part weighted 0 is not computed."""
        scores = np.zeros(candidates.shape)
        for part, weight in zip(self.parts.values(), self.weights, strict=True):
            if weight != 0:
                column = part.batch_scores(user_ids, histories, candidates)
                scores += weight * standardised(column.astype(np.float64))
        return scores


def fit_weights(
    features: np.ndarray, rng: np.random.Generator, max_users: int = MAX_TUNE_USERS
) -> tuple[np.ndarray, float]:
    """(weights, their NDCG@10) from `features` [users, 1 + negatives, parts] of the tune
    users (standardised, the positive first, padded negatives -inf): the coordinate ascent of
    the module doc; a value only replaces the current weight when it scores strictly better,
    and all-zero weights are never tried."""
    if len(features) > max_users:
        features = features[np.sort(rng.choice(len(features), max_users, replace=False))]
    padded = ~np.isfinite(features).all(axis=-1)
    features = np.where(padded[..., None], 0.0, features)

    def ndcg(weights: np.ndarray) -> float:
        scores = np.where(padded, -np.inf, features @ weights)
        return ranking_metrics(positive_ranks(scores[:, 0], scores[:, 1:]), (10,))["ndcg@10"]

    weights = np.ones(features.shape[-1])
    best = ndcg(weights)
    for _ in range(MAX_PASSES):
        changed = False
        for part in range(len(weights)):
            for value in WEIGHT_GRID:
                trial = weights.copy()
                trial[part] = value
                if value == weights[part] or not trial.any():
                    continue
                score = ndcg(trial)
                if score > best:
                    best, weights, changed = score, trial, True
        if not changed:
            break
    return weights, best
