"""`iALS` (top K) and `iALSRanking` (every candidate) for logged-in users: the user's factors
solved from the services they accessed, dotted with the candidates' (model.py)."""

from __future__ import annotations

from collections.abc import Sequence

from recommender.engines.base.engine import ServingDeps
from recommender.engines.base.scoring import ScoringEngine, offline_test_metrics
from recommender.engines.ials import MODEL_NAME
from recommender.engines.ials.model import IALSComponent, Setting, component
from recommender.evaluation.metrics import DEFAULT_KS
from recommender.model_store.versions import StoredModel


def build(stored: StoredModel) -> IALSComponent:
    return component(
        stored.version,
        stored.tensors["service_ids"].numpy(),
        stored.tensors["factors"].numpy(),
        stored.tensors["counts"].numpy(),
        Setting(**stored.config["setting"]),
    )


def live_component(deps: ServingDeps) -> IALSComponent | None:
    return deps.models.get(MODEL_NAME, build)


def offline_metrics(deps: ServingDeps, ks: Sequence[int] = DEFAULT_KS, seed=None) -> dict:
    """Test metrics of the live iALS as served (see base/scoring.py)."""
    return offline_test_metrics(deps, live_component(deps), "iALS", ks, seed)


class IALS(ScoringEngine):
    long = "Matches the pattern of the services you ordered, learnt from every user's orders."
    short = "Fits your orders"

    def component(self) -> IALSComponent | None:
        return live_component(self.deps)


def build_engine(deps: ServingDeps) -> IALS:
    return IALS(deps)
