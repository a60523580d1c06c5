"""`EASE` (top K) and `EASERanking` (every candidate) for logged-in users: the sum of B's rows
of the services the user accessed, over the candidates (model.py). Built once per version."""

from __future__ import annotations

from collections.abc import Sequence

from recommender.engines.base.engine import ServingDeps
from recommender.engines.base.scoring import ScoringEngine, offline_test_metrics
from recommender.engines.ease import MODEL_NAME
from recommender.engines.ease.model import EASEComponent, component
from recommender.evaluation.metrics import DEFAULT_KS
from recommender.model_store.versions import StoredModel


def build(stored: StoredModel) -> EASEComponent:
    return component(
        stored.version,
        stored.tensors["service_ids"].numpy(),
        stored.tensors["weights"].numpy(),
        stored.tensors["counts"].numpy(),
    )


def live_component(deps: ServingDeps) -> EASEComponent | None:
    return deps.models.get(MODEL_NAME, build)


def offline_metrics(deps: ServingDeps, ks: Sequence[int] = DEFAULT_KS, seed=None) -> dict:
    """Test metrics of the live EASE as served (see base/scoring.py)."""
    return offline_test_metrics(deps, live_component(deps), "EASE", ks, seed)


class EASE(ScoringEngine):
    long = "Users who ordered the services you ordered also ordered this one."
    short = "Often ordered with yours"

    def component(self) -> EASEComponent | None:
        return live_component(self.deps)


def build_engine(deps: ServingDeps) -> EASE:
    return EASE(deps)
