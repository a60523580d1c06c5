"""The EASE weights and the component that scores with them (training and serving alike).

EASE learns an item-item matrix B with a zero diagonal minimising ||X - XB||^2 + lambda ||B||^2
over the binary user x service matrix X; the closed form is P = (X'X + lambda I)^-1,
B = -P / diag(P) (column-wise), diag(B) = 0. A user's score for a service is the sum of B's rows
of the services the user accessed. Written here rather than taken from a library: it is a few
lines of linear algebra, and no maintained package serves it.

Cost: X'X is sparse-by-sparse; the inverse is a float32 Cholesky factorisation and inversion
(LAPACK spotrf + spotri), O(n^3) time and two n x n float32 matrices (4 n^2 bytes each) for n
modelled services. Services beyond `max_services` (the least accessed ones) are not modelled:
they score only their popularity prior (see `EASEComponent`), as do services nobody accessed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.linalg import lapack

from recommender.engines.base.scoring import IdLists, latest_entries
from recommender.id_index import IdIndex

PRIOR_WEIGHT = 1e-4  # popularity only breaks ties (users without history, unmodelled services)


def modelled_rows(counts: np.ndarray, max_services: int) -> np.ndarray:
    """The service rows EASE models: accessed in training, at most `max_services` of the most
    accessed (ties: the lower row), sorted."""
    rows = np.flatnonzero(counts > 0)
    if len(rows) > max_services:
        rows = rows[np.lexsort((rows, -counts[rows]))[:max_services]]
    return np.sort(rows)


def gram(users: np.ndarray, columns: np.ndarray, n_users: int, n_columns: int) -> np.ndarray:
    """X'X as a dense float32 matrix, X the binary users x columns matrix of the pairs."""
    x = sparse.csr_matrix(
        (np.ones(len(users), np.float32), (users, columns)), shape=(n_users, n_columns)
    )
    x.data[:] = 1.0  # repeated pairs count once
    return (x.T @ x).toarray().astype(np.float32)


def ease_weights(gram_matrix: np.ndarray, lam: float) -> np.ndarray:
    """B for one lambda (`gram_matrix` is left unchanged)."""
    g = gram_matrix.copy()
    g[np.diag_indices_from(g)] += lam
    factor, info = lapack.spotrf(g, lower=1, overwrite_a=1, clean=0)
    if info != 0:
        raise np.linalg.LinAlgError(f"EASE: X'X + {lam} I is not positive definite ({info})")
    p, info = lapack.spotri(factor, lower=1, overwrite_c=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"EASE: inversion failed ({info})")
    # LAPACK returns the lower triangle in Fortran order: its transpose is a C-ordered view
    # whose upper triangle is P (symmetric), which `symmetrise` copies below the diagonal.
    p = symmetrise(p.T)
    diagonal = np.diag(p).copy()
    p /= -diagonal[None, :]
    p[np.diag_indices_from(p)] = 0.0
    return p


def symmetrise(upper: np.ndarray, block: int = 512) -> np.ndarray:
    """Copy the upper triangle of a square C-ordered matrix below its diagonal, in place, a
    block of rows at a time (index arrays over the whole triangle would cost more than B)."""
    for start in range(0, len(upper), block):
        stop = min(start + block, len(upper))
        upper[start:stop, :start] = upper[:start, start:stop].T
        square = upper[start:stop, start:stop]
        square[np.tril_indices(stop - start, -1)] = square.T[np.tril_indices(stop - start, -1)]
    return upper


@dataclass(frozen=True)
class EASEComponent:
    """B over the modelled services, with an all-zero row and column 0 for every other id."""

    version: int
    services: IdIndex  # the modelled service ids (sorted): rows 1..n of `weights`
    weights: np.ndarray  # [n + 1, n + 1] float32
    prior: np.ndarray  # [n + 1]: PRIOR_WEIGHT x normalised training popularity

    def batch_scores(
        self, user_ids: np.ndarray, histories: IdLists, candidates: np.ndarray
    ) -> np.ndarray:
        """Per user, the sum of B's rows of their history over the candidates (service ids
        [users, m]), plus the popularity prior."""
        rows = self.services.rows(candidates).reshape(candidates.shape)
        return self.history_sums(histories, rows) + self.prior[rows]

    def history_sums(self, histories: IdLists, rows: np.ndarray, decay: float = 1.0) -> np.ndarray:
        """Per list, the sum of B's rows of its services over candidate `rows` [lists, m], each
        service weighted decay ** (entries after its latest place): 1 for all when decay is 1,
        the plain sum EASE scores with; a service listed twice counts once."""
        history_rows = self.services.rows(histories.ids)
        if len(histories) == 1 and decay == 1.0:  # serving EASE: each service once, unweighted
            block = self.weights[np.ix_(np.unique(history_rows), rows[0])]
            return block.sum(axis=0, dtype=np.float64)[None]
        owners, history, after = latest_entries(histories, history_rows)
        if len(histories) == 1:  # serving: gather the few rows, not a product with all of B
            block = self.weights[np.ix_(history, rows[0])]
            return (decay ** after.astype(np.float64) @ block.astype(np.float64))[None]
        matrix = sparse.csr_matrix(
            ((decay ** after.astype(np.float64)).astype(np.float32), (owners, history)),
            shape=(len(histories), len(self.services) + 1),
        )
        return np.take_along_axis(np.asarray(matrix @ self.weights), rows, axis=1)


def component(version: int, ids: np.ndarray, weights: np.ndarray, counts: np.ndarray):
    """The component of modelled `ids` (sorted), their B (fitted with column 0 empty, so row
    and column 0 are zeros) and training counts."""
    prior = np.zeros(len(ids) + 1, dtype=np.float32)
    prior[1:] = PRIOR_WEIGHT * counts / max(float(counts.max(initial=0.0)), 1.0)
    return EASEComponent(version, IdIndex(ids), weights, prior)
