"""`Auto` (top K) and `AutoRanking` (every candidate): answered by the champion's engine.

The champion (model "champion", written by the champion stage) names its engine's serve factory
("module:function"): Auto builds that engine once from the same `ServingDeps` (the model cache is
shared, so no model is loaded twice) and hands every request to it. Auto is ready while a
champion is recorded and its engine is ready; otherwise the selector moves on.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from recommender.engines.auto import MODEL_NAME
from recommender.engines.base.engine import (
    Engine,
    EngineResult,
    RecommendationContext,
    Scored,
    ServingDeps,
)
from recommender.engines.spec import resolve
from recommender.model_store.versions import StoredModel


@dataclass(frozen=True)
class Champion:
    version: int
    engine: str  # served name of its top-K variant, e.g. "EASE"
    serve: str  # its serve factory
    model: str
    model_version: int


def build(stored: StoredModel) -> Champion:
    config = stored.config
    return Champion(
        stored.version, config["engine"], config["serve"], config["model"], config["version"]
    )


class Auto(Engine):
    def __init__(self, deps: ServingDeps):
        self.deps = deps
        self._engines: dict[str, Engine] = {}
        self._lock = threading.Lock()

    def champion(self) -> Champion | None:
        return self.deps.models.get(MODEL_NAME, build)

    def engine(self) -> Engine | None:
        """The champion's engine (built once per serve factory), or None."""
        champion = self.champion()
        if champion is None:
            return None
        engine = self._engines.get(champion.serve)
        if engine is None:
            with self._lock:
                engine = self._engines.get(champion.serve)
                if engine is None:
                    engine = self._engines[champion.serve] = resolve(champion.serve)(self.deps)
        return engine

    def is_ready(self) -> tuple[bool, str | None]:
        engine = self.engine()
        if engine is None:
            return False, "No champion recorded yet"
        ready, reason = engine.is_ready()
        return (True, None) if ready else (False, f"Champion {self.champion().engine}: {reason}")

    def recommend(self, context: RecommendationContext, k: int) -> EngineResult:
        engine = self.engine()
        return EngineResult.empty() if engine is None else engine.recommend(context, k)

    def rank(self, context: RecommendationContext) -> EngineResult:
        engine = self.engine()
        return EngineResult.empty() if engine is None else engine.rank(context)

    def scored(self, context: RecommendationContext) -> Scored | None:
        engine = self.engine()
        return Scored.empty() if engine is None else engine.scored(context)

    def model_version(self) -> int | None:
        champion = self.champion()
        return None if champion is None else champion.version


def build_engine(deps: ServingDeps) -> Auto:
    return Auto(deps)
