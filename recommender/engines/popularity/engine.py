"""`Popularity` inference: stored counts turned into one score array over the catalogue.

Built once per model version and catalogue version (model_cache); a request then costs a few
index gathers (which services carry the search filters) and a partial sort of the candidates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recommender.catalogue import FACETS, Catalogue
from recommender.engines.base.engine import (
    EngineResult,
    RecommendationContext,
    Scored,
    ServingDeps,
    TrainedEngine,
    pick,
)
from recommender.engines.popularity import MODEL_NAME
from recommender.model_store.versions import StoredModel
from recommender.store import stamps

ORDER_WEIGHT = 1.0
CLICK_WEIGHT = 0.25  # a click in a recommendation panel is a weaker signal than an order
CONTEXT_BOOST = 0.5  # score multiplier added per matched search facet
LONG = "Often ordered and clicked by Marketplace users."
LONG_IN_CONTEXT = "Often ordered and clicked by Marketplace users, and it matches your search."
SHORT = "Popular"
SHORT_IN_CONTEXT = "Popular in your search"


@dataclass(frozen=True)
class PopularityModel:
    version: int
    catalogue: Catalogue
    # Per catalogue row, in (0, 1]: log-scaled popularity, smoothed so unseen services keep
    # an order among themselves (by context) instead of all tying at zero.
    base: np.ndarray


def build_model(stored: StoredModel, current: Catalogue) -> PopularityModel:
    ids = stored.tensors["service_ids"].numpy()
    counts = (
        ORDER_WEIGHT * stored.tensors["orders"].numpy()
        + CLICK_WEIGHT * stored.tensors["clicks"].numpy()
    )
    rows, found = current.rows(ids)
    popularity = np.zeros(len(current.ids), dtype=np.float64)
    popularity[rows[found]] = counts[found]
    logged = np.log1p(popularity)
    base = (logged + 1.0) / (logged.max(initial=0.0) + 1.0)
    return PopularityModel(stored.version, current, base)


class Popularity(TrainedEngine):
    def __init__(self, deps: ServingDeps):
        self.deps = deps

    def component(self) -> PopularityModel | None:
        current = self.deps.catalogue()  # read first: a build must not re-enter the cache
        return self.deps.models.get(
            MODEL_NAME, lambda stored: build_model(stored, current), depends_on=(stamps.CATALOGUE,)
        )

    def scored(self, context: RecommendationContext) -> Scored:
        model = self.component()
        if model is None:  # the selector checks readiness; a model dropped since then
            return Scored.empty()
        rows, found = model.catalogue.rows(context.candidates)
        ids, rows = context.candidates[found], rows[found]
        matches = model.catalogue.context_matches(context.search_data)[rows]
        facets = sum(1 for key in FACETS if context.search_data.get(key))
        scores = model.base[rows] * (1.0 + CONTEXT_BOOST * matches) / (1.0 + CONTEXT_BOOST * facets)
        return Scored(ids, scores, lambda order: explain(matches[order] > 0))

    def recommend(self, context: RecommendationContext, k: int) -> EngineResult:
        return self.scored(context).top(k)


def explain(in_context: np.ndarray) -> tuple[list[str], list[str]]:
    return pick(in_context, LONG_IN_CONTEXT, LONG), pick(in_context, SHORT_IN_CONTEXT, SHORT)


def build(deps: ServingDeps) -> Popularity:
    return Popularity(deps)
