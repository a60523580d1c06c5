"""The engagement simulator that scores counterfactual recommendations, fit on TRAINING data only.

What a recommended service earned (0, 0.3 mild interest, 0.7 interest, 1.0 order) is modelled
as an ordinal outcome: three logistic regressions give P(value >= 0.3), P(value >= 0.7) and
P(value >= 1.0) from features of the (visitor, service) pair that no engine optimises directly:
- interest overlap: categories and scientific domains the user and the service share;
- history similarity: cosine between the service and the mean of the visitor's history;
- popularity: the service's log-scaled clicks and orders in the training data.
A recommendation's simulated value is drawn per slot from those probabilities with common
random numbers (the same uniform draws for every engine on a session), so engines are compared
on equal luck, and combined by root mean square as real rewards are.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from sklearn.linear_model import LogisticRegression

from recommender.sessions.rewards import combine

LEVELS = np.array([0.3, 0.7, 1.0], dtype=np.float32)
MAX_OVERLAP = 6.0


def facet_matrix(rows_of: Iterable[Iterable], vocabulary: dict) -> sparse.csr_matrix:
    """Rows of tokens -> a 0/1 sparse matrix (tokens missing from `vocabulary` are added)."""
    indptr, indices = [0], []
    for tokens in rows_of:
        indices.extend(vocabulary.setdefault(t, len(vocabulary)) for t in set(tokens))
        indptr.append(len(indices))
    data = np.ones(len(indices), dtype=np.float32)
    return sparse.csr_matrix((data, indices, indptr), shape=(len(indptr) - 1, len(vocabulary)))


@dataclass(frozen=True)
class Facets:
    """Interest facets per user row and service row (row 0: nobody / padding)."""

    users: sparse.csr_matrix
    services: sparse.csr_matrix

    @classmethod
    def build(
        cls,
        user_ids: np.ndarray,
        service_ids: np.ndarray,
        user_docs: Mapping[int, Mapping],
        service_docs: Mapping[int, Mapping],
    ) -> Facets:
        def tokens(doc: Mapping | None) -> list:
            doc = doc or {}
            return [("c", c) for c in doc.get("categories") or ()] + [
                ("d", d) for d in doc.get("scientific_domains") or ()
            ]

        vocabulary: dict = {}
        users = facet_matrix([[], *(tokens(user_docs.get(int(u))) for u in user_ids)], vocabulary)
        services = facet_matrix(
            [[], *(tokens(service_docs.get(int(s))) for s in service_ids)], vocabulary
        )
        width = len(vocabulary)
        users.resize((users.shape[0], width))
        return cls(users, services)

    def overlap(self, user_rows: np.ndarray, service_rows: np.ndarray) -> np.ndarray:
        products = self.users[user_rows].multiply(self.services[service_rows])
        return np.asarray(products.sum(axis=1), dtype=np.float32).ravel()


def pair_features(
    facets: Facets,
    features: np.ndarray,
    popularity: np.ndarray,
    user_rows: np.ndarray,
    history_rows: np.ndarray,
    service_rows: np.ndarray,
) -> np.ndarray:
    """[n, 5] features of n (visitor, service) pairs; history_rows [n, N] (0: padding)."""
    overlap = np.minimum(facets.overlap(user_rows, service_rows), MAX_OVERLAP)
    history = features[history_rows].sum(axis=1)
    norms = np.linalg.norm(history, axis=1)
    has_history = norms > 0
    target = features[service_rows]
    similarity = np.where(
        has_history, (history * target).sum(axis=1) / np.maximum(norms, 1e-12), 0.0
    )
    return np.stack(
        [overlap, overlap > 0, similarity, has_history, popularity[service_rows]], axis=1
    ).astype(np.float32)


class EngagementModel:
    """P(value >= level) for the three levels, one logistic regression each."""

    def __init__(self, seed: int):
        self.seed = seed
        self.models: list[LogisticRegression | float] = []

    def fit(self, x: np.ndarray, values: np.ndarray) -> EngagementModel:
        self.mean, self.std = x.mean(axis=0), x.std(axis=0) + 1e-6
        z = (x - self.mean) / self.std
        self.models = []
        for level in LEVELS:
            y = values >= level - 1e-6
            if y.all() or not y.any():  # one class: a constant rate
                self.models.append(float(y.mean()) if len(y) else 0.0)
            else:
                model = LogisticRegression(C=1.0, max_iter=500, random_state=self.seed)
                self.models.append(model.fit(z, y))
        return self

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """[n, 3] P(value >= 0.3, 0.7, 1.0), non-increasing along the levels."""
        z = (x - self.mean) / self.std
        columns = [
            np.full(len(x), m, dtype=np.float64)
            if isinstance(m, float)
            else m.predict_proba(z)[:, 1]
            for m in self.models
        ]
        return np.minimum.accumulate(np.stack(columns, axis=1), axis=1)


def sampled_rewards(probabilities: np.ndarray, valid: np.ndarray, uniforms: np.ndarray):
    """Mean simulated reward per session.

    probabilities: [B, k, 3] per chosen slot; valid: bool [B, k] (False: no service in the
    slot, worth 0); uniforms: [B, M, k], the common random numbers. Returns float [B].
    """
    levels = (uniforms[..., None] < probabilities[:, None, :, :]).sum(axis=-1)  # [B, M, k]
    values = np.concatenate([[0.0], LEVELS])[levels] * valid[:, None, :]
    return combine(values).mean(axis=1)
