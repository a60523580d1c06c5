"""An experiment's results: counts per variant, kept up to date incrementally, and statistics.

What counts (docs/api.md says it in plain words):
- an **impression** is a served recommendation of the experiment with at least one service (only
  those are stored);
- a **click** is a user action from the recommendation panel (`source.root.type`) on a service
  that an impression showed (`source.root.service`), in that impression's visit
  (`source.visit_id`); it goes to the latest such impression served before it, so a page shown
  twice does not count a click twice;
- an **order** is an order action reached from such a click by following the visit (each action's
  `source.visit_id` is the `target.visit_id` of the one before it), or the click itself when it
  ordered.

Incremental: each refresh reads only the recommendations served (`served_at`) and the user
actions stored (`received_at`) since the last one, up to `settle` seconds ago (the deferred
writers of every API process have landed them by then), and adds their counts to the
experiment's tallies. A
lease keeps two refreshes of one experiment from counting the same window twice. The tallies and
the new read marks are written in one document update; the per-impression click counts (for the
clicks' variance) after it, so a crash between the two only under-counts that variance.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from bson import ObjectId

from recommender.evaluation.statistics import (
    Counts,
    always_valid_count_comparison,
    count_rate_interval,
    sample_ratio_mismatch,
)
from recommender.metrics import EXPERIMENT_CLICKS
from recommender.models.activity import Recommendation, UserAction
from recommender.models.experiments import RUNNING, STOPPED, Experiment, Tally
from recommender.models.ops import utcnow
from recommender.panels import PANEL_ROOT
from recommender.store import leases

SETTLE = dt.timedelta(seconds=60)
LEASE_TTL_S = 600.0
MAX_PATH = 50  # actions followed back from an order to its panel click
EPOCH = dt.datetime(1970, 1, 1)


@dataclass
class Impression:
    id: ObjectId
    variant: str
    visit_id: str
    timestamp: dt.datetime
    services: frozenset[int]
    clicks: int  # attributed so far


def refresh(experiment: Experiment, settle: dt.timedelta | None = None) -> Experiment:
    """Count what was stored since the last refresh (up to `settle` ago), recompute the results
    and save them. Another refresh of the same experiment running: it is left to finish."""
    holder = f"refresh:{ObjectId()}"
    if not leases.acquire(f"experiment:{experiment.id}", holder, LEASE_TTL_S):
        return experiment
    try:
        experiment.reload()
        _count_new(experiment, utcnow() - (SETTLE if settle is None else settle))
        experiment.results, experiment.results_at = results(experiment), utcnow()
        experiment.save()
    finally:
        leases.release(f"experiment:{experiment.id}", holder)
    return experiment


def refresh_running(settle: dt.timedelta | None = None) -> int:
    """Refresh every running experiment, and each stopped one once more after its last actions
    have settled (the periodic task); how many were refreshed."""
    settle = SETTLE if settle is None else settle
    due = [
        experiment
        for experiment in Experiment.objects(status__in=[RUNNING, STOPPED])
        if experiment.status == RUNNING
        or (experiment.read_actions_to or EPOCH) < experiment.stopped_at + settle
    ]
    for experiment in due:
        refresh(experiment, settle)
    return len(due)


def _count_new(experiment: Experiment, until: dt.datetime) -> None:
    tallies = {v.name: experiment.tallies.get(v.name) or Tally() for v in experiment.variants}
    since_rec = experiment.read_recommendations_to or EPOCH
    since_act = experiment.read_actions_to or EPOCH
    for variant, count in _new_impressions(experiment, since_rec, until).items():
        tallies[variant].impressions += count
    clicks = list(_new_actions(since_act, until, clicks=True))
    orders = list(_new_actions(since_act, until, clicks=False))
    added, per_variant = _attribute_clicks(str(experiment.id), clicks, tallies)
    for variant in _attribute_orders(str(experiment.id), orders):
        tallies[variant].orders += 1
    experiment.tallies = tallies
    experiment.read_recommendations_to = experiment.read_actions_to = until
    experiment.save()
    by_increment: dict[int, list[ObjectId]] = defaultdict(list)
    for impression, count in added.items():
        by_increment[count].append(impression)
    for count, impressions in by_increment.items():  # one update per distinct increment
        Recommendation._get_collection().update_many(
            {"_id": {"$in": impressions}}, {"$inc": {"experiment_clicks": count}}
        )
    for variant, count in per_variant.items():
        EXPERIMENT_CLICKS.labels(str(experiment.id), variant).inc(count)


def _new_impressions(experiment: Experiment, since: dt.datetime, until: dt.datetime) -> Counter:
    found = Recommendation._get_collection().find(
        {"experiment": str(experiment.id), "served_at": {"$gte": since, "$lt": until}},
        {"variant": 1, "_id": 0},
    )
    return Counter(doc.get("variant") for doc in found)


def _new_actions(since: dt.datetime, until: dt.datetime, clicks: bool) -> Iterable[dict]:
    """Panel clicks on a service (`clicks`), else orders, stored in [since, until)."""
    query: dict = {"received_at": {"$gte": since, "$lt": until}}
    if clicks:
        query |= {"source.root.type": PANEL_ROOT, "source.root.service": {"$ne": None}}
    else:
        query["action.order"] = True
    fields = {"timestamp": 1, "source": 1, "target.visit_id": 1, "action.order": 1}
    return UserAction._get_collection().find(query, fields)


def _impressions_in(experiment_id: str, visits: Iterable[str]) -> dict[str, list[Impression]]:
    """The experiment's impressions of these visits, by visit, oldest first."""
    found = Recommendation._get_collection().find(
        {"visit_id": {"$in": sorted(set(visits))}, "experiment": experiment_id},
        {"variant": 1, "visit_id": 1, "timestamp": 1, "services": 1, "experiment_clicks": 1},
    )
    by_visit: dict[str, list[Impression]] = defaultdict(list)
    for doc in found:
        by_visit[doc["visit_id"]].append(
            Impression(
                doc["_id"],
                doc.get("variant"),
                doc["visit_id"],
                doc["timestamp"],
                frozenset(doc.get("services") or ()),
                doc.get("experiment_clicks") or 0,
            )
        )
    for impressions in by_visit.values():
        impressions.sort(key=lambda impression: (impression.timestamp, impression.id))
    return by_visit


def _shown_before(impressions: list[Impression], click: dict) -> Impression | None:
    """The latest impression of the click's visit that showed its service before it."""
    service, when = click["source"]["root"]["service"], click["timestamp"]
    shown = [i for i in impressions if service in i.services and i.timestamp <= when]
    return shown[-1] if shown else None


def _attribute_clicks(
    experiment_id: str, clicks: list[dict], tallies: dict[str, Tally]
) -> tuple[Counter, Counter]:
    """Add the clicks to their impressions' variants; the clicks added per impression (id) and
    per variant."""
    by_visit = _impressions_in(experiment_id, (c["source"].get("visit_id") for c in clicks))
    added: Counter = Counter()
    per_variant: Counter = Counter()
    for click in clicks:
        impression = _shown_before(by_visit.get(click["source"].get("visit_id"), []), click)
        if impression is None or impression.variant not in tallies:
            continue
        tally = tallies[impression.variant]
        tally.clicks += 1
        tally.clicks_sq += 2 * impression.clicks + 1  # (c + 1)^2 - c^2
        impression.clicks += 1
        added[impression.id] += 1
        per_variant[impression.variant] += 1
    return added, per_variant


def _attribute_orders(experiment_id: str, orders: list[dict]) -> list[str]:
    """The variant each order goes to (orders reached from no experiment click are left out).

    All orders are followed back together, one step (one query) at a time: an action's parent
    is the action whose `target.visit_id` is its `source.visit_id`."""
    actions = UserAction._get_collection()
    variants: list[str] = []
    pending = {order["_id"]: order for order in orders}  # order id -> the action reached
    seen: dict[object, set] = {order_id: set() for order_id in pending}
    for _ in range(MAX_PATH):
        if not pending:
            break
        clicks = {i: a for i, a in pending.items() if _is_panel_click(a)}
        by_visit = _impressions_in(
            experiment_id, (a["source"]["visit_id"] for a in clicks.values())
        )
        for order_id, click in clicks.items():
            impression = _shown_before(by_visit.get(click["source"]["visit_id"], []), click)
            if impression is not None:
                variants.append(impression.variant)
                del pending[order_id]
        visits = {a["source"].get("visit_id") for a in pending.values()} - {None}
        parents = {
            doc["target"]["visit_id"]: doc
            for doc in actions.find(
                {"target.visit_id": {"$in": sorted(visits)}},
                {"timestamp": 1, "source": 1, "target.visit_id": 1},
            )
        }
        for order_id, reached in list(pending.items()):
            parent = parents.get(reached["source"].get("visit_id"))
            if parent is None or parent["_id"] in seen[order_id]:  # the path ends, or loops
                del pending[order_id]
            else:
                seen[order_id].add(parent["_id"])
                pending[order_id] = parent
    return variants


def _is_panel_click(action: dict) -> bool:
    root = action["source"].get("root") or {}
    return (
        root.get("type") == PANEL_ROOT
        and root.get("service") is not None
        and bool(action["source"].get("visit_id"))
    )


def results(experiment: Experiment) -> dict:
    """Counts, rates and intervals per variant; each treatment against the first variant with
    an always-valid test; the sample-ratio check of the impressions against the shares."""
    variants, counts = [], {}
    for variant in experiment.variants:
        tally = experiment.tallies.get(variant.name) or Tally()
        counts[variant.name] = Counts(tally.impressions, tally.clicks, tally.clicks_sq)
        ctr_low, ctr_high = count_rate_interval(counts[variant.name])
        variants.append(
            {
                "name": variant.name,
                "engine": variant.engine,
                "share": variant.share,
                "impressions": tally.impressions,
                "clicks": tally.clicks,
                "ctr": _rate(tally.clicks, tally.impressions),
                "ctr_ci": [ctr_low, ctr_high],
                "orders": tally.orders,
                "order_rate": _rate(tally.orders, tally.impressions),
            }
        )
    control = experiment.variants[0].name
    comparison = [
        {
            "variant": variant.name,
            "against": control,
            **always_valid_count_comparison(counts[control], counts[variant.name]).as_dict(),
        }
        for variant in experiment.variants[1:]
    ]
    impressions = [counts[v.name].units for v in experiment.variants]
    shares = [v.share for v in experiment.variants]
    return {
        "variants": variants,
        "comparison": comparison,
        "sample_ratio": sample_ratio_mismatch(impressions, shares).as_dict(),
    }


def _rate(count: int, impressions: int) -> float:
    return count / impressions if impressions else 0.0
