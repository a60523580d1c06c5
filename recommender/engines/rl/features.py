"""The service feature space the RL actors score in (shared by serving and training).

A service is its unit embedding (the live "embeddings" model) with one more coordinate, its
popularity (log of panel clicks and orders in the training data, scaled to [0, 1]), renormalised
to unit length. Services unknown at training time get their embedding from their catalogue
features (EmbeddingTable.rows) and popularity 0.
"""

from __future__ import annotations

import numpy as np


def log_popularity(counts: np.ndarray) -> np.ndarray:
    """Counts -> [0, 1]: log1p scaled by the largest (all zeros stay zeros)."""
    logged = np.log1p(np.asarray(counts, dtype=np.float64))
    top = logged.max(initial=0.0)
    return (logged / top if top > 0 else logged).astype(np.float32)


def service_features(embeddings: np.ndarray, popularity: np.ndarray) -> np.ndarray:
    """[n, SE] unit embeddings + [n] popularity in [0, 1] -> [n, SE + 1] unit rows."""
    joined = np.concatenate([embeddings, popularity[:, None]], axis=1).astype(np.float32)
    norms = np.linalg.norm(joined, axis=1, keepdims=True)
    return joined / np.maximum(norms, 1e-12)
