"""A hand-made log for the off-policy report tests: a small catalogue, stored recommendations
with propensities, the user actions after them, and stand-in target engines.

Catalogue: services 1..5 published (1 and 2 in category 7), user 10 declares category 7 and has
accessed nothing. Three v1 recommendations (K = 3, candidates 1..5) of user 10:

- A: shows [1, 2, 3] with propensities [0.5, 0.5, 0.25]; the visitor clicks 1 in the panel
  (/services -> /services/1: mild interest) and orders it from there (order): r = [1, 0, 0].
- B: shows [2, 1, 4] with propensities [0.25, 0.5, 0.2]; a click on 1: r = [0, 0.3, 0].
- C: no propensities (served before they were logged): skipped.

Targets: "First" (deterministic: the first K candidates, i.e. [1, 2, 3]), "Random" (the real
Random engine: 1/5 everywhere), "Untrained" (never ready), "Named" (logged-in users only).
"""

from __future__ import annotations

import datetime as dt
import uuid

import numpy as np

from recommender.engines.base.engine import (
    Engine,
    EngineResult,
    RecommendationContext,
    Scored,
    same,
)
from recommender.engines.registry import Registry
from recommender.engines.spec import EngineSpec
from recommender.models.marketplace import Service, User
from recommender.services.runtime import runtime
from recommender.store import get_db, stamps

USER = 10
CANDIDATES = [1, 2, 3, 4, 5]
START = dt.datetime(2024, 2, 21, 15, 0)


class First(Engine):
    """The first K candidates, in the candidates' order."""

    def is_ready(self):
        return True, None

    def recommend(self, context: RecommendationContext, k: int) -> EngineResult:
        shown = context.candidates[:k]
        return EngineResult.build(shown, np.ones(len(shown)), "first", "first")

    def scored(self, context: RecommendationContext) -> Scored:
        """Scores falling with the candidates' order (what the serving policy explores)."""
        scores = -np.arange(len(context.candidates), dtype=np.float64)
        return Scored(context.candidates, scores, same("first", "first"))


class Untrained(First):
    def is_ready(self):
        return False, "Missing model in db"


def build_first(deps) -> First:
    return First()


def build_untrained(deps) -> Untrained:
    return Untrained()


SPECS = [
    EngineSpec("first", top_k="First", serve=f"{__name__}:build_first", anonymous=True),
    EngineSpec("named", top_k="Named", serve=f"{__name__}:build_first"),
    EngineSpec("untrained", top_k="Untrained", serve=f"{__name__}:build_untrained"),
    EngineSpec(
        "random",
        top_k="Random",
        ranking="RandomRanking",
        serve="recommender.engines.random.engine:build",
        anonymous=True,
        floor=True,
    ),
]
TARGETS = ["First", "Named", "Untrained", "Random"]


def use_targets(monkeypatch) -> None:
    """Make the current app's engines the stand-ins above (plus RandomRanking, not a target)."""
    current = runtime()
    registry = Registry(SPECS, [*TARGETS, "RandomRanking"], current.deps)
    monkeypatch.setattr(current, "engines", registry)


def load_catalogue() -> None:
    for service_id in CANDIDATES:
        categories = [7] if service_id in (1, 2) else [8]
        Service(
            id=service_id, name=f"s{service_id}", status="published", categories=categories
        ).save()
    User(id=USER, categories=[7], scientific_domains=[], accessed_services=[]).save()
    stamps.bump(stamps.CATALOGUE)


EPSILON = {"method": "epsilon", "epsilon": 0.5, "temperature": 1.0, "pool": 20}
GREEDY = {"method": "off", "epsilon": 0.0, "temperature": 1.0, "pool": 20}


def recommendation(
    services, propensities, minutes: int, user=USER, visit=None, exploration=EPSILON
) -> dict:
    document = {
        "user": user,
        "unique_id": str(uuid.uuid4()),
        "visit_id": visit or str(uuid.uuid4()),
        "timestamp": START + dt.timedelta(minutes=minutes),
        "page_id": "/services",
        "panel_id": "v1",
        "engine_version": "Logging",
        "services": list(services),
        "scores": [0.5] * len(services),
        "candidates": list(CANDIDATES),
        "search_data": {},
    }
    if propensities is not None:
        document["propensities"] = list(propensities)
        document["policy"] = {
            "engine": "Logging",
            "model_version": None,
            "exploration": exploration,
            "seed": 1,
        }
        document["slate_propensity"] = None
    get_db().recommendation.insert_one(document)
    return document


def action(source_visit, source_page, target_page, minutes, root_service=None, order=False):
    """A stored user action; returns its target visit (where the journey goes on)."""
    target_visit = str(uuid.uuid4())
    root = (
        {"type": "recommendation_panel", "panel_id": "v1", "service": root_service}
        if root_service is not None
        else {"type": "other", "service": None}
    )
    get_db().user_action.insert_one(
        {
            "_id": uuid.uuid4().hex,
            "user": USER,
            "unique_id": str(uuid.uuid4()),
            "timestamp": START + dt.timedelta(minutes=minutes),
            "source": {"visit_id": source_visit, "page_id": source_page, "root": root},
            "target": {"visit_id": target_visit, "page_id": target_page},
            "action": {"type": "button", "text": "", "order": order},
        }
    )
    return target_visit


def prepare(monkeypatch) -> None:
    """The catalogue, the target engines and the logged traffic of the module doc."""
    load_catalogue()
    use_targets(monkeypatch)
    store_log()


def store_log() -> None:
    """The three recommendations and their actions of the module doc."""
    a = recommendation([1, 2, 3], [0.5, 0.5, 0.25], minutes=0)
    on_service = action(a["visit_id"], "/services", "/services/1", 1, root_service=1)
    action(on_service, "/services/1", "/services/1", 2, order=True)
    b = recommendation([2, 1, 4], [0.25, 0.5, 0.2], minutes=10)
    action(b["visit_id"], "/services", "/services/1", 11, root_service=1)
    recommendation([3, 4, 5], None, minutes=20)


# By hand (module doc). First shows [1, 2, 3]: A's weights 1/0.5, 1/0.5, 1/0.25 = [2, 2, 4],
# B's [0, 0, 0] (every logged item differs from First's at its position).
FIRST_IPS = (2 * 1.0 + 0.0) / 2
# SNIPS per position: (2 * 1) / 2 + 0 / 2 + 0 / 4.
FIRST_SNIPS = 1.0
# Random: 0.2 everywhere, so A's weights [0.4, 0.4, 0.8], B's [0.8, 0.4, 1.0].
RANDOM_IPS = (0.4 * 1.0 + 0.4 * 0.3) / 2
# SNIPS: position 0: 0.4 * 1 / (0.4 + 0.8); position 1: 0.4 * 0.3 / (0.4 + 0.4); position 2: 0.
RANDOM_SNIPS = 0.4 / 1.2 + 0.12 / 0.8
