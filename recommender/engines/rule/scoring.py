"""The interest-overlap rule as pure numpy: how many declared interests a service shares with
the visitor, ties broken by popularity. No Flask, no database: serving, RL's training pipeline,
the synthetic world's logging policy and the benchmark all score with these functions."""

from __future__ import annotations

import numpy as np
from scipy import sparse


def overlap(visitor_facets: sparse.spmatrix, service_facets: sparse.spmatrix) -> np.ndarray:
    """[visitors, services] number of facet values (declared categories and scientific domains,
    one column each) a visitor and a service share; rows are 0/1 incidence vectors."""
    shared = (
        sparse.csr_matrix(visitor_facets, dtype=np.float64)
        @ sparse.csr_matrix(service_facets, dtype=np.float64).T
    )
    return np.asarray(shared.todense())


def popularity_tiebreak(popularity: np.ndarray, most: float | None = None) -> np.ndarray:
    """Popularity (how many users accessed a service) mapped into [0, 1): the fraction a rule
    score adds to its integer overlap, so that it only ever breaks ties. `most`: the highest
    popularity of the catalogue (default: of `popularity`), so that scores of different
    requests share one scale."""
    popularity = np.maximum(np.asarray(popularity, dtype=np.float64), 0.0)
    top = float(popularity.max(initial=0.0)) if most is None else float(most)
    return np.log1p(popularity) / (np.log1p(max(top, 0.0)) + 1.0)


def rule_scores(
    overlaps: np.ndarray, popularity: np.ndarray, most: float | None = None
) -> np.ndarray:
    """The rule's score of each service: its overlap (an integer count, any shape) plus its
    popularity tie-break (same shape, broadcast). Ordering by score is ordering by overlap, then
    popularity; equal scores are left to the caller's tie rule (serving: the lower id)."""
    return np.asarray(overlaps, dtype=np.float64) + popularity_tiebreak(popularity, most)
