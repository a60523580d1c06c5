"""Measuring the engines: the hitrate of served panels, and offline HR@K / NDCG@K.

Hitrate (the original's `flask hitrate`): among the visits where a selected recommendation was
served, the share of user actions that started in the recommendation panel. Each action of such
a visit counts once, even when several recommendations were served in it.

Offline metrics: every served engine whose spec names an evaluator (`EngineSpec.evaluate`,
"module:function(deps, ks)") returns its metrics on held-out data of the current database, e.g.
`{"users": 120, "hr@10": 0.41, "ndcg@10": 0.22}` (see recommender.evaluation.metrics); it
raises NoModelError when the engine has no trained model.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from recommender.engines.spec import resolve
from recommender.model_store.versions import NoModelError
from recommender.models.activity import Recommendation, UserAction
from recommender.panels import PANEL_ROOT_SPELLINGS
from recommender.services.runtime import runtime
from recommender.store import get_db

logger = logging.getLogger(__name__)
VISIT_BATCH = 10_000  # visit ids per `$in` query (keeps each query far below 16 MB)


@dataclass(frozen=True)
class Hitrate:
    recommendations: int
    visits: int
    panel_clicks: int
    other_clicks: int

    @property
    def hitrate(self) -> float | None:
        """Panel clicks in % of all clicks of those visits; None when there is no click."""
        clicks = self.panel_clicks + self.other_clicks
        return round(100.0 * self.panel_clicks / clicks, 2) if clicks else None

    def as_dict(self) -> dict:
        return {**asdict(self), "hitrate": self.hitrate}


def _served_visits(engine: str | None, panel: str | None) -> tuple[int, set[str]]:
    query: dict = {}
    if engine:
        query["engine_version"] = engine
    if panel:
        query["panel_id"] = panel
    rows = list(get_db()[Recommendation._get_collection_name()].find(query, {"visit_id": 1}))
    # A first page view has no visit id: it counts as served, but no click can refer to it.
    return len(rows), {row["visit_id"] for row in rows if row.get("visit_id")}


def panel_hitrate(engine: str | None = None, panel: str | None = None) -> Hitrate:
    """Hitrate of the recommendations served by `engine` in `panel` (all when None)."""
    count, visits = _served_visits(engine, panel)
    actions = get_db()[UserAction._get_collection_name()]
    ordered = sorted(visits)
    panel_clicks = other_clicks = 0
    for start in range(0, len(ordered), VISIT_BATCH):
        rows = actions.find(
            {"source.visit_id": {"$in": ordered[start : start + VISIT_BATCH]}},
            {"source.root.type": 1, "_id": 0},
        )
        for row in rows:
            root = row["source"].get("root") or {}
            if root.get("type") in PANEL_ROOT_SPELLINGS:
                panel_clicks += 1
            else:
                other_clicks += 1
    return Hitrate(count, len(visits), panel_clicks, other_clicks)


def offline_metrics(ks: Sequence[int]) -> dict[str, dict]:
    """Per engine with an evaluator: `{"status": "ok", **metrics}`, or status "not trained" /
    "failed" with a `reason`."""
    current = runtime()
    results = {}
    for name, evaluator in current.engines.evaluators().items():
        try:
            results[name] = {"status": "ok", **resolve(evaluator)(current.deps, tuple(ks))}
        except NoModelError as error:
            results[name] = {"status": "not trained", "reason": str(error)}
        except Exception as error:  # one broken engine must not hide the others' numbers
            logger.exception("Offline evaluation of %s failed", name)
            results[name] = {"status": "failed", "reason": repr(error)}
    return results
