"""iALS with the field's implementation, `implicit`'s CPU AlternatingLeastSquares (Hu, Koren and
Volinsky, 2008): confidence alpha per accessed service, 1 elsewhere.

Only the service factors are kept: a user's factors are always solved from their accessed
services by implicit's own `recalculate_user` (the exact least-squares step of the training),
for users known at training time as for newcomers, in serving as in evaluation. Item i of the
factorisation is service row i of the training data's `IdIndex`; row 0 (unknown ids) has no
interactions, so its factors are zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from implicit.cpu.als import AlternatingLeastSquares
from scipy import sparse

from recommender.engines.base.scoring import IdLists
from recommender.id_index import IdIndex

PRIOR_WEIGHT = 1e-4  # popularity only breaks ties (users without history)
ITERATIONS = 15


@dataclass(frozen=True)
class Setting:
    factors: int
    regularization: float
    alpha: float


def als(setting: Setting, seed: int = 0, threads: int = 1) -> AlternatingLeastSquares:
    return AlternatingLeastSquares(
        factors=setting.factors,
        regularization=setting.regularization,
        alpha=setting.alpha,
        iterations=ITERATIONS,
        random_state=seed,
        num_threads=threads,
    )


def fit(
    users: np.ndarray,
    rows: np.ndarray,
    n_users: int,
    n_rows: int,
    setting: Setting,
    seed: int,
    threads: int,
) -> np.ndarray:
    """Service factors [n_rows, factors] fitted on the (user row, service row) pairs, with
    `threads` threads (each solves its own users' or services' rows: the factors do not depend
    on the number of threads)."""
    matrix = sparse.csr_matrix(
        (np.ones(len(users), np.float32), (users, rows)), shape=(n_users, n_rows)
    )
    matrix.data[:] = 1.0
    model = als(setting, seed, threads)
    model.fit(matrix, show_progress=False)
    return np.ascontiguousarray(model.item_factors, dtype=np.float32)


@dataclass(frozen=True)
class IALSComponent:
    version: int
    services: IdIndex  # rows 1..n of `factors`
    model: AlternatingLeastSquares  # holds the service factors [n + 1, f]
    prior: np.ndarray  # [n + 1]

    def batch_scores(
        self, user_ids: np.ndarray, histories: IdLists, candidates: np.ndarray
    ) -> np.ndarray:
        """User factors solved from each history, dotted with the candidates' factors."""
        matrix = self.accessed(histories)
        users = self.model.recalculate_user(np.arange(len(histories)), matrix)
        users = np.asarray(users, dtype=np.float32).reshape(len(histories), -1)
        candidate_rows = self.services.rows(candidates).reshape(candidates.shape)
        factors = np.take(self.model.item_factors, candidate_rows, axis=0)
        return (factors @ users[:, :, None])[..., 0] + self.prior[candidate_rows]

    def accessed(self, histories: IdLists) -> sparse.csr_matrix:
        """The binary users x service rows matrix of the histories, sorted rows per user;
        unknown services (row 0) say nothing."""
        rows = self.services.rows(histories.ids)
        shape = (len(histories), len(self.prior))
        if len(histories) == 1:  # serving: the one row directly, no sparse conversion
            known = np.unique(rows[rows != 0])
            indptr = np.array([0, len(known)], dtype=np.int32)
            data = np.ones(len(known), np.float32)
            return sparse.csr_matrix((data, known.astype(np.int32), indptr), shape=shape)
        matrix = sparse.csr_matrix(
            (np.ones(len(rows), np.float32), (histories.owners(), rows)), shape=shape
        )
        matrix.data[:] = 1.0
        matrix.data[matrix.indices == 0] = 0.0
        matrix.eliminate_zeros()
        return matrix


def component(
    version: int, ids: np.ndarray, factors: np.ndarray, counts: np.ndarray, setting: Setting
) -> IALSComponent:
    """The component of `ids` (sorted), their factors [n, f] and training counts; row 0 of the
    model's factors (unknown ids) is zeros."""
    model = als(setting)  # one thread: a served request solves one user
    padded = np.zeros((len(ids) + 1, factors.shape[1]), dtype=np.float32)
    padded[1:] = factors
    model.item_factors = padded
    prior = np.zeros(len(ids) + 1, dtype=np.float32)
    prior[1:] = PRIOR_WEIGHT * counts / max(float(counts.max(initial=0.0)), 1.0)
    return IALSComponent(version, IdIndex(ids), model, prior)
