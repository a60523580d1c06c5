"""Stand-in engines for registry and selector tests: no model, readiness set by the test."""

from __future__ import annotations

from recommender.engines.base.engine import Engine, EngineResult, ServingDeps
from recommender.engines.spec import EngineSpec

# Family name -> ready; tests set it.
READY: dict[str, bool] = {}


class Stub(Engine):
    def __init__(self, family: str):
        self.family = family

    def is_ready(self):
        ready = READY.get(self.family, True)
        return ready, None if ready else "Missing model in db"

    def recommend(self, context, k):
        return EngineResult.empty()


def spec(name: str, top_k=None, ranking=None, anonymous=False, floor=False, stages=()):
    return EngineSpec(
        name=name,
        top_k=top_k,
        ranking=ranking,
        serve=f"{__name__}:build_{name}",
        anonymous=anonymous,
        floor=floor,
        stages=stages,
    )


def build_ncf(deps: ServingDeps) -> Stub:
    return Stub("ncf")


def build_rl(deps: ServingDeps) -> Stub:
    return Stub("rl")


def build_random(deps: ServingDeps) -> Stub:
    return Stub("random")


def build_popularity(deps: ServingDeps) -> Stub:
    return Stub("popularity")


SPECS = [
    spec("ncf", "NCF", "NCFRanking"),
    spec("rl", "RL"),
    spec("random", "Random", "RandomRanking", anonymous=True, floor=True),
    spec("popularity", "Popularity", anonymous=True),
]
