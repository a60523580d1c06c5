"""`Popularity` inference: stored counts turned into one score array over the catalogue.

Built once per model version and catalogue version (model_cache); a request then costs a few
index gathers (which services carry the search filters) and a partial sort of the candidates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recommender import stamps
from recommender.engines.base.engine import (
    EngineResult,
    RecommendationContext,
    TrainedEngine,
    pick,
    top,
)
from recommender.engines.base.model_cache import model_cache
from recommender.engines.base.model_store import StoredModel
from recommender.engines.popularity.pipeline import MODEL_NAME
from recommender.services.catalogue import FACETS, Catalogue, catalogue

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


def build(stored: StoredModel) -> PopularityModel:
    current = catalogue()
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


def component() -> PopularityModel | None:
    return model_cache().get(MODEL_NAME, build, depends_on=(stamps.CATALOGUE,))


class Popularity(TrainedEngine):
    name = "Popularity"

    def component(self):
        return component()

    def recommend(self, context: RecommendationContext, k: int) -> EngineResult:
        model = component()
        if model is None:  # the selector checks readiness; a model dropped since then
            return EngineResult.empty()
        rows, found = model.catalogue.rows(context.candidates)
        ids, rows = context.candidates[found], rows[found]
        matches = model.catalogue.context_matches(context.search_data)[rows]
        facets = sum(1 for key in FACETS if context.search_data.get(key))
        scores = model.base[rows] * (1.0 + CONTEXT_BOOST * matches) / (1.0 + CONTEXT_BOOST * facets)
        order = top(ids, scores, k)
        in_context = matches[order] > 0
        return EngineResult(
            ids[order].tolist(),
            scores[order].tolist(),
            pick(in_context, LONG_IN_CONTEXT, LONG),
            pick(in_context, SHORT_IN_CONTEXT, SHORT),
        )
