"""What the Hybrid's item-neighbourhood parts share (the co-visits of covisits.py and the text
similarity of text.py): a sparse [services, services] weight matrix with at most a few hundred
neighbours per service, a user's score for a candidate summed from the services they accessed
last, and the arrays a stored version holds."""

from __future__ import annotations

import numpy as np
from scipy import sparse

from recommender.engines.base.scoring import IdLists, latest_entries
from recommender.id_index import IdIndex

MAX_NEIGHBOURS = 500  # per service: bounds the stored model and a request's sparse product


def history_scores(
    services: IdIndex,
    weights: sparse.csr_matrix,
    histories: IdLists,
    candidates: np.ndarray,
    decay: float,
    window: int | None = None,
) -> np.ndarray:
    """[users, m]: per candidate, the sum of its weights from each history's services, the
    latest weighing 1 and each older one `decay` times the one after it (a service listed twice
    counts once, at its latest place; with `window`, only the last `window` count)."""
    rows = services.rows(candidates).reshape(candidates.shape)
    owners, history, after = latest_entries(histories, services.rows(histories.ids))
    if window is not None:
        recent = after < window
        owners, history, after = owners[recent], history[recent], after[recent]
    # In the weights' dtype: a product of mixed dtypes would copy every weight each call.
    profile = sparse.csr_matrix(
        ((decay**after).astype(weights.dtype), (owners, history)),
        shape=(len(histories), services.rows_total),
    )
    return np.take_along_axis((profile @ weights).toarray(), rows, axis=1)


def top_per_row(matrix: sparse.csr_matrix, keep: int = MAX_NEIGHBOURS) -> sparse.csr_matrix:
    """`matrix` with each row's `keep` largest values kept (ties: the lower column), float32."""
    rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    order = np.lexsort((matrix.indices, -matrix.data, rows))
    rank = np.arange(len(order)) - matrix.indptr[rows[order]]
    kept = np.sort(order[rank < keep])
    return sparse.csr_matrix(
        (matrix.data[kept].astype(np.float32), (rows[kept], matrix.indices[kept])),
        shape=matrix.shape,
    )


def top_per_dense_row(block: np.ndarray, keep: int = MAX_NEIGHBOURS) -> sparse.csr_matrix:
    """`top_per_row` of a dense [rows, width] block of non-negative values, zeros dropped: a
    partition per row instead of a sort of every value, for blocks with few zeros."""
    keep = min(keep, block.shape[1])
    kth = -np.partition(-block, keep - 1, axis=1)[:, keep - 1 : keep]  # each row's keep-th
    above = block > kth
    tied = block == kth
    # Of the values equal to the keep-th largest, the lowest columns fill the rest.
    room = keep - above.sum(axis=1, keepdims=True)
    kept = (above | (tied & (np.cumsum(tied, axis=1) <= room))) & (block > 0)
    return sparse.csr_matrix(np.where(kept, block, 0).astype(np.float32))


def arrays(weights: sparse.csr_matrix) -> dict[str, np.ndarray]:
    """`weights` as the arrays a stored version holds (see `from_arrays`)."""
    return {
        "indptr": weights.indptr.astype(np.int64),
        "indices": weights.indices.astype(np.int64),
        "data": weights.data.astype(np.float32),
    }


def from_arrays(stored: dict[str, np.ndarray], width: int) -> sparse.csr_matrix:
    """The [width, width] weights of `arrays`, in float64 (summed in float64 when serving)."""
    return sparse.csr_matrix(
        (stored["data"].astype(np.float64), stored["indices"], stored["indptr"]),
        shape=(width, width),
    )
