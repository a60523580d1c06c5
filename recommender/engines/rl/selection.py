"""From K weight vectors to K distinct services: masked scoring over the candidates only.

Slot i takes the service best aligned with weight vector `i % K` among those still allowed.
Everything not allowed (not a candidate, already accessed, already chosen, padding) is set to
-inf before the argmax, so it can never win, whatever the scores underflow to. The Python loop
runs over the K slots (2 or 3), never over services.
"""

from __future__ import annotations

import numpy as np


def choose(
    weights: np.ndarray, features: np.ndarray, allowed: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Pick `k` distinct allowed services per row.

    weights: [B, K, D] unit vectors; features: [S, D] unit service rows (shared by the batch)
    or [B, S, D]; allowed: bool [B, S]. Returns (columns [B, k] into S, -1 where fewer than
    `k` are allowed; scores [B, k] in [0, 1], the cosine mapped to (1 + cos) / 2, 0 for -1).
    """
    batch, heads, width = weights.shape
    if features.ndim == 2:  # one [S, D] x [D, B * K] product: the shape BLAS is fastest at
        cosine = (features @ weights.reshape(-1, width).T).T.reshape(batch, heads, len(features))
    else:  # [B, S, D] x [B, D, K], then [B, K, S]
        cosine = np.swapaxes(features @ np.swapaxes(weights, 1, 2), 1, 2)
    taken = ~allowed.copy()
    columns = np.full((batch, k), -1, dtype=np.int64)
    scores = np.zeros((batch, k), dtype=np.float32)
    rows = np.arange(batch)
    for slot in range(k):
        masked = np.where(taken, -np.inf, cosine[:, slot % heads, :])
        best = masked.argmax(axis=1) if masked.shape[1] else np.zeros(batch, dtype=np.int64)
        value = masked[rows, best] if masked.shape[1] else np.full(batch, -np.inf)
        ok = np.isfinite(value)
        columns[ok, slot] = best[ok]
        scores[ok, slot] = (1.0 + value[ok]) / 2.0
        taken[rows[ok], best[ok]] = True
    return columns, scores
