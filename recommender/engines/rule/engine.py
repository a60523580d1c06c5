"""`InterestRule` / `InterestRuleRanking` served from the in-memory catalogue.

A request costs one count of the visitor's declared categories and scientific domains over the
catalogue's facet index (a gather and a bincount per facet) and a partial sort of the
candidates. Popularity (how many users accessed each service) is counted once per catalogue
version.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from recommender.catalogue import DECLARED, Catalogue, Facet, int64_ids
from recommender.engines.base.engine import (
    Engine,
    EngineResult,
    RecommendationContext,
    ServingDeps,
    pick,
    top,
)
from recommender.engines.rule.scoring import rule_scores

LONG = "Often accessed by Marketplace users."
LONG_SHARED = "It shares your interests (categories or scientific domains), and it is popular."
SHORT = "Popular"
SHORT_SHARED = "Shares your interests"


def facet_counts(facet: Facet, values: np.ndarray) -> np.ndarray:
    """Per catalogue row: how many of the distinct `values` (attribute ids) it carries."""
    values = np.unique(values)
    cols = np.searchsorted(facet.columns, values)
    inside = cols < len(facet.columns)
    cols = cols[inside]
    cols = cols[facet.columns[cols] == values[inside]]
    lengths = facet.starts[cols + 1] - facet.starts[cols]
    # Positions of every selected column's rows, without a Python loop.
    offsets = np.repeat(facet.starts[cols] - np.cumsum(lengths) + lengths, lengths)
    return np.bincount(facet.rows[offsets + np.arange(lengths.sum())], minlength=facet.n_rows)


def accessed_counts(catalogue: Catalogue) -> np.ndarray:
    """Per catalogue row: how many users accessed the service."""
    if not catalogue.users:
        return np.zeros(len(catalogue.ids), dtype=np.int64)
    accessed = np.concatenate([np.unique(ids) for ids in catalogue.users.values()])
    rows, found = catalogue.rows(accessed)
    return np.bincount(rows[found], minlength=len(catalogue.ids))


class InterestRule(Engine):
    def __init__(self, deps: ServingDeps):
        self.deps = deps
        # (catalogue version, accessed counts): replaced whole, so a reader never sees a mix.
        self._popularity: tuple[int, np.ndarray] | None = None

    def is_ready(self) -> tuple[bool, str | None]:
        return True, None

    def popularity(self, catalogue: Catalogue) -> np.ndarray:
        cached = self._popularity
        if cached is None or cached[0] != catalogue.version:
            cached = self._popularity = (catalogue.version, accessed_counts(catalogue))
        return cached[1]

    def recommend(self, context: RecommendationContext, k: int) -> EngineResult:
        catalogue = self.deps.catalogue()
        rows, found = catalogue.rows(context.candidates)
        ids, rows = context.candidates[found], rows[found]
        shared = np.zeros(len(catalogue.ids), dtype=np.int64)
        for key, values in interests(catalogue, context).items():
            if len(values):
                shared += facet_counts(catalogue.facets[key], values)
        popularity = self.popularity(catalogue)
        scores = rule_scores(shared[rows], popularity[rows], most=popularity.max(initial=0))
        order = top(ids, scores, k)
        matched = shared[rows[order]] > 0
        return EngineResult(
            ids[order].tolist(),
            scores[order].tolist(),
            pick(matched, LONG_SHARED, LONG),
            pick(matched, SHORT_SHARED, SHORT),
        )


def interests(catalogue: Catalogue, context: RecommendationContext) -> Mapping[str, np.ndarray]:
    """The visitor's side of the overlap: a user's declared interests, else the search's
    category and domain filters."""
    if context.user_id is not None:
        return catalogue.declared.get(context.user_id, {})
    return {key: int64_ids(context.search_data.get(key)) for key in DECLARED}


def build(deps: ServingDeps) -> InterestRule:
    return InterestRule(deps)
