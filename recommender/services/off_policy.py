"""Off-policy estimates of every served top-K engine's reward, from stored recommendations that
carry their propensities (`policy`, `propensities`) and the user actions that followed them.

What is estimated: for a target engine, the expected slate reward per logged request, V = sum
over shown positions of the value of the service there (`recommender.sessions.rewards`: order
1.0, interest 0.7, mild interest 0.3, else 0; 0 when not clicked), the reward the logged slates
are scored with too. The estimators are those of `recommender.evaluation.offpolicy` (IPS,
self-normalised IPS, doubly robust; per position, with bootstrap intervals).

One report:
1. reads the newest OFF_POLICY_MAX_LOGGED stored recommendations with propensities once
   (projected); those without are counted, not read, and those that cannot be used (a ranking,
   propensities that do not match the slate) are counted as invalid;
2. reads the actions of their journeys, level by level from the panel clicks on their pages
   (`source.visit_id` = the recommendation's visit), and scores each shown position with the
   sessions code (`Journeys.rewards`), the same rewards SARS get;
3. rebuilds each request's context (its stored candidates, user, search data, the panel's K)
   and asks every target engine for its per-position probabilities on it
   (`Engine.slate_marginals`: 1 on its slate for a deterministic engine, 1/n for Random);
4. fits the doubly robust estimator's reward model on the logged slates;
5. estimates per engine, on the requests it can answer (an engine that does not serve anonymous
   visitors is judged on the logged-in users' requests only).

The candidates: the stored ones (the set the logging policy chose from), minus the services the
user has accessed by now, except those the logged slate showed (a service ordered from that very
slate stays: excluding it would make the logged reward impossible for any target). Services
accessed since the request that were not shown are left out, which the serving policy would
have been free to show: a small bias toward targets that would not have shown them.

The reward model (DR only): logistic in two features that exist for any (request, candidate) —
the service's popularity (log of 1 + how many users accessed it, scaled to [0, 1]) and whether
it shares a category or scientific domain with the user's declared interests — plus one
intercept per position (position bias). Logged scores cannot be features: a target engine's
candidates have none. The model is small on purpose: it is fit on the logged clicks only and
must not be able to memorise them; DR stays unbiased when the model is wrong (the propensities
correct it) and narrows the interval when it is roughly right.

Support: IPS and SNIPS cannot see what a target would show where the logging policy never shows
anything. `unsupported_mass` is the target's expected number of positions per request on items
the logging policy could not have shown there, averaged over the requests where the logging
policy's support is known: everywhere for epsilon > 0, the logged slate itself for a
deterministic log, and the Plackett-Luce pool when the logging engine's current model is the one
that served (its scores, `Engine.scored`, are replayed); otherwise it is unknown for that request.

A target is the engine's greedy top K (what it answers with exploration off): the policy one
would switch to. The serving policy's exploration around it is not part of the estimate.

Computing a report asks every engine once per logged request, so reports are cached per process
for OFF_POLICY_CACHE_SECONDS, keyed by the request's options, the catalogue version and the
targets' model versions (a new model or dump is never served a stale report).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from recommender.catalogue import Catalogue, int64_ids
from recommender.engines.base.engine import RecommendationContext
from recommender.engines.registry import Registry, Served
from recommender.evaluation import offpolicy
from recommender.models.activity import Recommendation, UserAction
from recommender.models.marketplace import User
from recommender.panels import PANEL_K, PANEL_ROOT_SPELLINGS
from recommender.services.runtime import runtime
from recommender.sessions.journeys import ACTION_FIELDS, ActionRecord, Journeys, RecRecord
from recommender.sessions.rewards import service_values
from recommender.store import get_db

logger = logging.getLogger(__name__)

ESTIMATORS = {"ips": offpolicy.ips, "snips": offpolicy.snips, "dr": offpolicy.dr}
CONFIDENCE = 0.95
RESAMPLES = 1000
SEED = 0  # the bootstrap's: the same log always gives the same intervals
BATCH = 10_000  # ids per `$in` query (far below MongoDB's 16 MB per query)
# A journey is read level by level (each level one query); this bounds pathological chains.
MAX_JOURNEY_DEPTH = 100
REWARD_MODEL_L2 = 1.0
LOGGED_FIELDS = {
    "user": 1,
    "unique_id": 1,
    "visit_id": 1,
    "timestamp": 1,
    "panel_id": 1,
    "services": 1,
    "candidates": 1,
    "search_data": 1,
    "propensities": 1,
    "policy": 1,
}
HAS_PROPENSITIES = {"propensities.0": {"$exists": True}}

OK = "ok"
NOT_TRAINED = "not trained"
NO_DATA = "no data"
FAILED = "failed"


@dataclass
class Logged:
    """One usable logged request: its record (for the journeys), context, and what was logged."""

    rec: RecRecord
    context: RecommendationContext
    k: int  # the panel's K: what a target is asked for
    shown: np.ndarray  # [len(services)] row of each shown service in `context.candidates`, -1: none
    propensities: np.ndarray  # [len(services)] logging P(service at its position)
    policy: dict


@dataclass
class EngineReport:
    status: str
    n: int = 0
    estimates: dict[str, offpolicy.Estimate] = field(default_factory=dict)
    unsupported_mass: float | None = None
    support_unknown: int = 0
    reason: str | None = None

    def as_json(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            name: (
                {"value": self.estimates[name].value,
                 "ci": [self.estimates[name].ci_low, self.estimates[name].ci_high]}
                if name in self.estimates else None
            )
            for name in ESTIMATORS
        }  # fmt: skip
        result.update(status=self.status, n=self.n, unsupported_mass=self.unsupported_mass)
        result["support_unknown"] = self.support_unknown
        if self.reason:
            result["reason"] = self.reason
        return result


@dataclass
class OffPolicyReport:
    logged: int  # logged recommendations used
    skipped: dict[str, int]  # not used, by why
    engines: dict[str, EngineReport]
    seconds: float = 0.0

    def as_json(self, details: bool = False) -> dict[str, Any]:
        """`{"logged": n, "engines": {...}}` (GET /evaluation/off-policy); `details` adds the
        skipped documents and the time the report took."""
        report: dict[str, Any] = {
            "logged": self.logged,
            "engines": {name: engine.as_json() for name, engine in self.engines.items()},
        }
        if details:
            report.update(skipped=dict(self.skipped), seconds=round(self.seconds, 3))
        return report


class UnknownEngineError(ValueError):
    """A requested target is not an enabled top-K engine."""


def top_k_engines(registry: Registry) -> dict[str, Served]:
    """The enabled top-K served names (ENGINES order): the possible targets."""
    return {name: served for name, served in registry.served.items() if not served.ranking}


def targets_of(registry: Registry, names: Sequence[str] | None) -> dict[str, Served]:
    """The named targets (all top-K engines when None), matched case-insensitively."""
    available = top_k_engines(registry)
    if not names:
        return available
    by_lower = {name.lower(): name for name in available}
    unknown = [name for name in names if name.strip().lower() not in by_lower]
    if unknown:
        raise UnknownEngineError(
            f"not enabled top-K engines: {', '.join(unknown)} (enabled: {', '.join(available)})"
        )
    chosen = dict.fromkeys(by_lower[name.strip().lower()] for name in names)
    return {name: available[name] for name in chosen}


# --- reading the log ---


def _collection(document) -> Any:
    return get_db()[document._get_collection_name()]


def read_logged(max_logged: int) -> tuple[list[dict], int]:
    """(the newest `max_logged` recommendations with propensities, how many have none)."""
    collection = _collection(Recommendation)
    docs = list(
        collection.find(HAS_PROPENSITIES, LOGGED_FIELDS)
        .sort([("timestamp", -1), ("_id", -1)])
        .limit(max_logged)
    )
    without = collection.count_documents({"propensities.0": {"$exists": False}})
    return docs, without


def read_journey_actions(visits: Iterable[str]) -> list[ActionRecord]:
    """The panel clicks made on `visits` and every action after them, following each action's
    target visit (one batched query per level; each visit read once)."""
    collection = _collection(UserAction)
    actions: list[ActionRecord] = []
    seen: set[str] = set()
    frontier = sorted({visit for visit in visits if visit})
    panel_only = {"source.root.type": {"$in": sorted(PANEL_ROOT_SPELLINGS)}}
    for depth in range(MAX_JOURNEY_DEPTH):
        seen.update(frontier)
        found: list[ActionRecord] = []
        for start in range(0, len(frontier), BATCH):
            query: dict = {"source.visit_id": {"$in": frontier[start : start + BATCH]}}
            if depth == 0:
                query.update(panel_only)
            found += [ActionRecord.from_doc(doc) for doc in collection.find(query, ACTION_FIELDS)]
        actions += found
        frontier = sorted({a.target_visit for a in found if a.target_visit} - seen)
        if not frontier:
            break
    return actions


def logged_rewards(recs: Sequence[RecRecord], actions: Sequence[ActionRecord]) -> list[np.ndarray]:
    """Per recommendation, the value of each shown position (`sessions.rewards`)."""
    journeys = Journeys(actions)
    return [service_values(journeys.rewards(rec)).astype(np.float64) for rec in recs]


def declared_interests(user_ids: Iterable[int]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """user id -> (declared categories, declared scientific domains)."""
    wanted = sorted(set(user_ids))
    found: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    fields = {"categories": 1, "scientific_domains": 1}
    for start in range(0, len(wanted), BATCH):
        query = {"_id": {"$in": wanted[start : start + BATCH]}}
        for doc in _collection(User).find(query, fields):
            found[doc["_id"]] = (
                int64_ids(doc.get("categories")),
                int64_ids(doc.get("scientific_domains")),
            )
    return found


# --- the requests ---


def valid_propensities(doc: Mapping) -> np.ndarray | None:
    """The logged propensities when they fit the slate (one in (0, 1] per shown service)."""
    services, values = doc.get("services") or [], doc.get("propensities") or []
    if len(values) != len(services) or not services:
        return None
    try:
        propensities = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if not np.isfinite(propensities).all() or (propensities <= 0).any() or (propensities > 1).any():
        return None
    return propensities


def build_logged(doc: Mapping, catalogue: Catalogue) -> Logged | None:
    """The request `doc` logged, rebuilt (see the module doc); None when it cannot be used: a
    ranking (more services than the panel's K), bad propensities, an unknown panel."""
    propensities = valid_propensities(doc)
    k = PANEL_K.get(doc.get("panel_id") or "")
    services = int64_ids(doc.get("services"))
    if propensities is None or k is None or len(services) > k:
        return None
    user_id = doc.get("user")
    profile = catalogue.user(user_id, None) if user_id is not None else None
    accessed = profile.accessed_services if profile else int64_ids(None)
    exclude = accessed[~np.isin(accessed, services)]
    candidates = catalogue.eligible(int64_ids(doc.get("candidates")), exclude)
    index = {service: i for i, service in enumerate(candidates.tolist())}
    context = RecommendationContext(
        candidates=candidates,
        panel_id=doc["panel_id"],
        user_id=user_id,
        search_data=dict(doc.get("search_data") or {}),
        accessed_services=tuple(accessed.tolist()),
        unique_id=doc.get("unique_id"),
        timestamp=doc.get("timestamp"),
    )
    shown = np.array([index.get(s, -1) for s in services.tolist()], dtype=np.intp)
    return Logged(RecRecord.from_doc(doc), context, k, shown, propensities, doc.get("policy") or {})


# --- the reward model's features ---


class Features:
    """Per (request, candidate): [scaled log popularity, shares a declared interest]."""

    def __init__(self, catalogue: Catalogue, interests: Mapping[int, tuple]):
        self.catalogue = catalogue
        self.interests = interests
        accessed = [ids for ids in catalogue.users.values() if len(ids)]
        counts = np.zeros(len(catalogue.ids))
        if accessed:
            rows, found = catalogue.rows(np.concatenate(accessed))
            counts = np.bincount(rows[found], minlength=len(catalogue.ids)).astype(np.float64)
        scale = math.log1p(counts.max()) if len(counts) and counts.max() > 0 else 1.0
        self.popularity = np.log1p(counts) / scale

    def of(self, context: RecommendationContext) -> np.ndarray:
        """[n, 2] features of the request's candidates."""
        rows, found = self.catalogue.rows(context.candidates)
        popularity = np.where(found, self.popularity[rows] if len(rows) else 0.0, 0.0)
        shares = np.zeros(len(self.catalogue.ids), dtype=bool)
        categories, domains = self.interests.get(context.user_id, (None, None))
        for key, ids in (("categories", categories), ("scientific_domains", domains)):
            if ids is not None and len(ids) and key in self.catalogue.facets:
                shares |= self.catalogue.facets[key].matches(ids)
        interest = np.where(found, shares[rows] if len(rows) else False, False)
        return np.column_stack([popularity, interest.astype(np.float64)])


# --- the logging policy's support ---


def logging_support(item: Logged, registry: Registry, width: int) -> np.ndarray | None:
    """[n, width] True where the logging policy could show candidate c at position j; None
    when that cannot be known (see the module doc)."""
    n = len(item.context.candidates)
    support = np.zeros((n, width), dtype=bool)
    exploration = item.policy.get("exploration") or {}
    method = exploration.get("method", "off" if np.all(item.propensities == 1.0) else None)
    if method == "epsilon" and float(exploration.get("epsilon", 0.0)) > 0:
        support[:, : min(item.k, n)] = True
        return support
    if method in ("off", "epsilon"):
        positions = np.flatnonzero(item.shown >= 0)
        support[item.shown[positions], positions] = True
        return support
    if method == "plackett_luce":
        return _replayed_pool(item, registry, support)
    return None


def _replayed_pool(item: Logged, registry: Registry, support: np.ndarray) -> np.ndarray | None:
    """The Plackett-Luce pool (the `pool` best of the logging engine's scores, NaN last, ties
    to the earlier candidate, as the serving policy draws it), when the engine that served
    still serves the same model version; each pool member can be drawn at every position. For
    an engine without `scored`, its ranking's order stands for its scores (ties at the pool's
    edge may then be cut differently)."""
    served = registry.find(item.policy.get("engine"))
    if served is None or not served.engine.is_ready()[0]:
        return None
    if served.engine.model_version() != item.policy.get("model_version"):
        return None
    ids, scores = _logging_scores(served, item.context)
    if len(ids) == 0:
        return None
    shown = min(item.k, len(scores))
    size = min(max(int(item.policy["exploration"].get("pool", 1)), shown), len(scores))
    pool = ids[np.argsort(-scores, kind="stable")[:size]]
    index = {service: i for i, service in enumerate(item.context.candidates.tolist())}
    rows = [index[service] for service in pool.tolist() if service in index]
    support[rows, :shown] = True
    return support


def _logging_scores(
    served: Served, context: RecommendationContext
) -> tuple[np.ndarray, np.ndarray]:
    """(ids, scores, NaN as -inf) the logging engine explores over: its `scored` answer, else
    its ranking's order (an engine that only ranks explores over its ranking)."""
    scored = served.engine.scored(context)
    if scored is not None:
        scores = np.asarray(scored.scores, dtype=np.float64)
        return np.asarray(scored.ids, dtype=np.int64), np.nan_to_num(scores, nan=-np.inf)
    ranked = np.asarray(served.engine.rank(context).services, dtype=np.int64)
    return ranked, -np.arange(len(ranked), dtype=np.float64)


# --- the report ---


@dataclass
class TargetRows:
    """One target's per-request rows, filled request by request."""

    used: np.ndarray  # [N] bool
    target: np.ndarray  # [N, W] P_target(logged item at j)
    model_target: np.ndarray  # [N, W] reward model expectation under the target
    unsupported: list[float] = field(default_factory=list)
    support_unknown: int = 0
    failure: str | None = None


def _reward_model(
    items: Sequence[Logged], rewards: np.ndarray, features: Features
) -> tuple[offpolicy.PositionRewardModel, np.ndarray]:
    """The fitted model and its [N, W] predictions for the logged items."""
    n, width = rewards.shape
    logged_features = np.zeros((n, width, 2))
    for i, item in enumerate(items):
        shown = np.flatnonzero(item.shown >= 0)
        logged_features[i, shown] = features.of(item.context)[item.shown[shown]]
    model = offpolicy.fit_position_reward_model(logged_features, rewards, l2=REWARD_MODEL_L2)
    return model, np.where(np.isnan(rewards), np.nan, model.predict(logged_features))


def _fill_target(
    rows: TargetRows,
    i: int,
    item: Logged,
    served: Served,
    predictions: np.ndarray,
    support: np.ndarray | None,
) -> None:
    """Row `i` of one target: its probabilities of the logged items and the model's
    expectation under it; `predictions`: [n, W] reward model predictions of the candidates."""
    if item.context.anonymous and not served.anonymous:
        return
    rows.used[i] = True
    n, width = len(item.context.candidates), rows.target.shape[1]
    if n == 0:  # nothing left to show: the target shows nothing (its rows stay 0)
        return
    target = np.zeros((n, width))
    answer = served.engine.slate_marginals(item.context, item.k)
    target[:, : min(answer.shape[1], width)] = answer[:, :width]
    slate, found = len(item.shown), item.shown >= 0
    at_logged = target[np.maximum(item.shown, 0), np.arange(slate)]
    rows.target[i, :slate] = np.where(found, at_logged, 0.0)
    rows.model_target[i, :slate] = offpolicy.target_expected_reward(target, predictions)[:slate]
    if support is None:
        rows.support_unknown += 1
    else:
        rows.unsupported.append(offpolicy.unsupported_mass(target, support.astype(np.float64)))


def _engine_report(
    rows: TargetRows,
    rewards: np.ndarray,
    logging: np.ndarray,
    model_logged: np.ndarray,
) -> EngineReport:
    if rows.failure:
        return EngineReport(FAILED, reason=rows.failure)
    used = rows.used
    n = int(used.sum())
    if n == 0:
        return EngineReport(NO_DATA, reason="no logged request this engine can answer")
    logged = offpolicy.LoggedSlates(
        rewards=rewards[used],
        logging_propensities=logging[used],
        target_propensities=rows.target[used],
        reward_model_logged=model_logged[used],
        reward_model_target=rows.model_target[used],
    )
    estimates = {
        name: estimator(logged, CONFIDENCE, RESAMPLES, SEED)
        for name, estimator in ESTIMATORS.items()
    }
    mass = float(np.mean(rows.unsupported)) if rows.unsupported else None
    return EngineReport(OK, n, estimates, mass, rows.support_unknown)


def compute_report(
    registry: Registry,
    catalogue: Catalogue,
    targets: Mapping[str, Served],
    max_logged: int,
) -> OffPolicyReport:
    """The report over the newest `max_logged` logged recommendations (see the module doc)."""
    started = time.perf_counter()
    docs, without = read_logged(max_logged)
    built = [build_logged(doc, catalogue) for doc in docs]
    items = [item for item in built if item is not None]
    skipped = {"without_propensities": without, "invalid": len(built) - len(items)}
    engines: dict[str, EngineReport] = {}
    ready = {}
    for name, served in targets.items():
        is_ready, why = served.engine.is_ready()
        if is_ready:
            ready[name] = served
        else:
            engines[name] = EngineReport(NOT_TRAINED, reason=why or "not ready")
    if not items:
        for name in ready:
            engines[name] = EngineReport(
                NO_DATA, reason="no logged recommendation with propensities"
            )
        return OffPolicyReport(
            0, skipped, _ordered(engines, targets), time.perf_counter() - started
        )

    width = max(len(item.shown) for item in items)
    rewards = np.full((len(items), width), np.nan)
    logging = np.full((len(items), width), np.nan)
    values = logged_rewards(
        [item.rec for item in items], read_journey_actions(item.rec.visit_id for item in items)
    )
    for i, (item, value) in enumerate(zip(items, values, strict=True)):
        rewards[i, : len(value)] = value
        logging[i, : len(value)] = item.propensities
    users = (item.context.user_id for item in items if item.context.user_id is not None)
    features = Features(catalogue, declared_interests(users))
    model, model_logged = _reward_model(items, rewards, features)

    rows = {
        name: TargetRows(np.zeros(len(items), bool), np.zeros_like(rewards), np.zeros_like(rewards))
        for name in ready
    }
    for i, item in enumerate(items):
        candidate_features = features.of(item.context)
        predictions = model.predict(np.repeat(candidate_features[:, None, :], width, axis=1))
        support = logging_support(item, registry, width)
        for name, served in ready.items():
            if rows[name].failure:
                continue
            try:
                _fill_target(rows[name], i, item, served, predictions, support)
            except Exception as error:  # one broken engine must not hide the others' numbers
                logger.exception("Off-policy evaluation of %s failed", name)
                rows[name].failure = repr(error)
    for name in ready:
        engines[name] = _engine_report(rows[name], rewards, logging, model_logged)
    return OffPolicyReport(
        len(items), skipped, _ordered(engines, targets), time.perf_counter() - started
    )


def _ordered(engines: dict[str, EngineReport], targets: Mapping[str, Served]) -> dict:
    return {name: engines[name] for name in targets}


# --- the cached entry point ---

_cache: dict[tuple, tuple[float, OffPolicyReport]] = {}  # key -> (computed at, report)
_cache_lock = threading.Lock()


def off_policy_report(
    engines: Sequence[str] | None = None, max_logged: int | None = None, fresh: bool = False
) -> OffPolicyReport:
    """The report for the current app: `engines` (default: every top-K engine), over the newest
    `max_logged` (default OFF_POLICY_MAX_LOGGED) logged recommendations; cached (module doc)
    unless `fresh`. UnknownEngineError names a target that is not an enabled top-K engine."""
    current = runtime()
    settings = current.settings
    targets = targets_of(current.engines, engines)
    limit = max_logged or settings.OFF_POLICY_MAX_LOGGED
    catalogue = current.catalogue()
    versions = tuple((name, served.engine.model_version()) for name, served in targets.items())
    key = (id(current.app), versions, limit, catalogue.version)
    ttl = settings.OFF_POLICY_CACHE_SECONDS
    with _cache_lock:  # one report at a time: a second caller waits for the first's result
        cached = _cache.get(key)
        if cached and not fresh and time.monotonic() - cached[0] < ttl:
            return cached[1]
        report = compute_report(current.engines, catalogue, targets, limit)
        _cache.clear()  # only the newest report is kept
        _cache[key] = (time.monotonic(), report)
        return report
