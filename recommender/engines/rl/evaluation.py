"""Evaluation on logged sessions (validation or held out): RL against NCF, Popularity, Random
and the interest-overlap rule, on the same requests and candidates.

Every policy picks K of each request's candidates (the logged ones minus the user's accessed
services). Two kinds of evidence of a policy's expected slate reward (sum over positions of
what the shown service earns, contract C2):
- simulator: the position-aware reward model (offpolicy.PositionRewardModel on the candidate
  features, fit on the logs of the split evaluated, never on RL's training split) summed
  over the policy's K picks;
- off-policy: IPS, SNIPS and DR (offpolicy.py) from the logged slates and their logging
  propensities; a deterministic policy's propensity of the logged service at j is 1 when it
  picks that service at j, else 0. DR's reward model is the simulator's.
Per policy: the value with its bootstrap interval; per baseline: RL's margin over it with a
paired bootstrap interval (same sessions resampled for both). Also hr@K, the share of
sessions with a clicked service where the policy's picks include one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from recommender.engines.base.engine import RecommendationContext
from recommender.engines.rl.candidates import (
    FEATURES,
    ServiceTable,
    candidate_features,
    features_at,
    overlap_counts,
    scores,
    state_vector,
)
from recommender.engines.rl.data import Requests, ServiceSpace, UserSpace
from recommender.engines.rl.networks import Actor
from recommender.engines.rule.scoring import rule_scores
from recommender.evaluation import offpolicy
from recommender.panels import PANEL_OF_K

CHUNK = 256
RESAMPLES = 500
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Sessions:
    """Logged requests of one panel size with what the baselines need besides the rows."""

    requests: Requests
    user_ids: np.ndarray
    accessed: list[Sequence[int]]

    def __len__(self) -> int:
        return len(self.requests)


# A policy for evaluation: (batch of requests) -> columns [b, k] into their candidates, -1: none.
Chooser = Callable[[np.ndarray, Requests], np.ndarray]


def top_k(scores_: np.ndarray, candidates: np.ndarray, k: int) -> np.ndarray:
    """Columns of the k best scores per row among real candidates (row > 0), -1 when fewer."""
    masked = np.where(candidates > 0, scores_, -np.inf)
    order = np.argsort(-masked, axis=1, kind="stable")[:, :k]
    return np.where(np.isfinite(np.take_along_axis(masked, order, axis=1)), order, -1)


def actor_scores(
    actor: Actor, table: ServiceTable, users: UserSpace, batch: Requests
) -> np.ndarray:
    with torch.no_grad():
        states = batch.states(users)
        weights = actor(state_vector(table, states))
        return scores(candidate_features(table, states, batch.candidates), weights).numpy()


def rl_chooser(actor: Actor, table: ServiceTable, users: UserSpace, k: int) -> Chooser:
    def pick(index: np.ndarray, batch: Requests) -> np.ndarray:
        return top_k(actor_scores(actor, table, users, batch), batch.candidates.numpy(), k)

    return pick


def popularity_chooser(table: ServiceTable, k: int) -> Chooser:
    # Ties (unseen services) go to the lower id: rows follow the ids' order.
    popularity = table.popularity.numpy().astype(np.float64)
    score = popularity - 1e-9 * np.arange(len(popularity))

    def pick(index: np.ndarray, batch: Requests) -> np.ndarray:
        rows = batch.candidates.numpy()
        return top_k(score[rows], rows, k)

    return pick


def rule_chooser(table: ServiceTable, users: UserSpace, accessed: np.ndarray, k: int) -> Chooser:
    """The interest-overlap rule (engines/rule/scoring.py): shared declared interests, then how
    many users accessed the service, then the lower id; used when no InterestRule engine is
    served."""
    tie = -1e-9 * np.arange(len(accessed) + 1)

    def pick(index: np.ndarray, batch: Requests) -> np.ndarray:
        rows = batch.candidates.numpy()
        overlaps = overlap_counts(table, batch.states(users), batch.candidates).numpy()
        popularity = np.concatenate([[0.0], accessed])[rows]
        score = rule_scores(overlaps, popularity, most=float(accessed.max(initial=0.0)))
        return top_k(score + tie[rows], rows, k)

    return pick


def random_chooser(k: int, seed: int) -> Chooser:
    rng = np.random.default_rng(seed)

    def pick(index: np.ndarray, batch: Requests) -> np.ndarray:
        rows = batch.candidates.numpy()
        return top_k(rng.random(rows.shape), rows, k)

    return pick


def engine_chooser(engine, sessions: Sessions, services: ServiceSpace, k: int) -> Chooser:
    """A live serving engine (NCF, the rule), asked one request at a time as serving would."""

    def pick(index: np.ndarray, batch: Requests) -> np.ndarray:
        rows = batch.candidates.numpy()
        out = np.full((len(index), k), -1, dtype=np.int64)
        for row, i in enumerate(index.tolist()):
            real = rows[row][rows[row] > 0]
            context = RecommendationContext(
                candidates=services.ids[real - 1],
                panel_id=PANEL_OF_K.get(k, "v1"),
                user_id=int(sessions.user_ids[i]),
                accessed_services=tuple(int(s) for s in sessions.accessed[i]),
            )
            chosen = services.rows(np.asarray(engine.recommend(context, k).services, np.int64))
            for slot, service in enumerate(chosen[:k].tolist()):
                column = np.flatnonzero(rows[row] == service)
                out[row, slot] = column[0] if len(column) and service > 0 else -1
        return out

    return pick


def fit_simulator(
    requests: Requests, users: UserSpace, table: ServiceTable
) -> offpolicy.PositionRewardModel:
    """The reward model of the logged positions' candidate features."""
    features, shown = [], []
    for start in range(0, len(requests), CHUNK):
        batch = requests.batch(torch.arange(start, min(start + CHUNK, len(requests))))
        features.append(
            features_at(
                candidate_features(table, batch.states(users), batch.candidates),
                batch.shown.numpy(),
            )
        )
        shown.append(batch.shown.numpy())
    x = np.concatenate(features) if features else np.zeros((0, 1, len(FEATURES)))
    rewards = np.where(np.concatenate(shown) >= 0, requests.values.numpy(), np.nan)
    return offpolicy.fit_position_reward_model(x, rewards)


@dataclass
class PolicyValues:
    """Per session: simulated value, the logged positions' OPE inputs, hits."""

    simulated: list[np.ndarray]
    target: list[np.ndarray]  # [b, K] P_target(logged service at j): 0 or 1
    model_target: list[np.ndarray]  # [b, K] rhat of the policy's pick at j
    hits: list[np.ndarray]
    seconds: float = 0.0


def evaluate(
    sessions: Sessions,
    choosers: dict[str, Chooser],
    simulator: offpolicy.PositionRewardModel,
    users: UserSpace,
    table: ServiceTable,
    k: int,
    seed: int,
    off_policy: bool,
) -> dict:
    """Per policy (plus "logged"): value (the evidence's estimate), its interval, hr@k and the
    time per request; with `off_policy` also ips, snips and dr."""
    n = len(sessions)
    values = {name: PolicyValues([], [], [], []) for name in [*choosers, "logged"]}
    logged_model, rewards, propensities, clicked_any = [], [], [], []
    for start in range(0, n, CHUNK):
        index = np.arange(start, min(start + CHUNK, n))
        batch = sessions.requests.batch(torch.from_numpy(index))
        features = candidate_features(table, batch.states(users), batch.candidates)
        shown = batch.shown.numpy()
        clicked = (batch.values.numpy() > 0) & (shown >= 0)
        picks = {}
        for name, chooser in choosers.items():
            started = time.perf_counter()
            picks[name] = chooser(index, batch)
            values[name].seconds += time.perf_counter() - started
        picks["logged"] = shown
        logged_model.append(simulator.predict(features_at(features, shown)) * (shown >= 0))
        rewards.append(np.where(shown >= 0, batch.values.numpy(), np.nan))
        propensities.append(batch.propensities.numpy())
        clicked_any.append(clicked.any(axis=1))
        for name, columns in picks.items():
            predicted = simulator.predict(features_at(features, columns)) * (columns >= 0)
            v = values[name]
            v.simulated.append(predicted.sum(axis=1))
            v.model_target.append(predicted)
            v.target.append(((columns == shown) & (shown >= 0)).astype(np.float64))
            hit = (columns[:, :, None] == np.where(clicked, shown, -2)[:, None, :]).any(axis=(1, 2))
            v.hits.append(hit)
    out = {}
    per_session = {}
    with_clicks = max(int(np.concatenate(clicked_any).sum()) if n else 0, 1)
    logged = None
    if n and off_policy:
        logged = (
            np.concatenate(rewards),
            np.concatenate(propensities),
            np.concatenate(logged_model),
        )
    for name, v in values.items():
        simulated = np.concatenate(v.simulated) if n else np.zeros(0)
        entry = {
            "simulated": _interval(simulated, seed),
            f"hr@{k}": float(np.concatenate(v.hits).sum() / with_clicks) if n else 0.0,
            "ms_per_session": 1000 * v.seconds / max(n, 1),
        }
        per_session[name] = simulated
        if logged is not None:
            slates = offpolicy.LoggedSlates(
                rewards=logged[0],
                logging_propensities=logged[1],
                target_propensities=np.concatenate(v.target),
                reward_model_logged=logged[2],
                reward_model_target=np.concatenate(v.model_target),
            )
            for estimator in (offpolicy.ips, offpolicy.snips, offpolicy.dr):
                entry[estimator.__name__] = estimator(slates, CONFIDENCE, RESAMPLES, seed).as_dict()
            per_session[name] = _dr_per_slate(slates)
        entry["reward"] = entry["dr" if logged is not None else "simulated"]["value"]
        out[name] = entry
    return {"policies": out, "per_session": per_session}


def _dr_per_slate(slates: offpolicy.LoggedSlates) -> np.ndarray:
    shown = slates.shown
    residuals = np.where(shown, slates.rewards - slates.reward_model_logged, 0.0)
    direct = np.where(shown, slates.reward_model_target, 0.0)
    return (direct + slates.weights() * residuals).sum(axis=1)


def _interval(values: np.ndarray, seed: int) -> dict:
    """Mean with a percentile bootstrap interval over sessions."""
    if len(values) == 0:
        return {"value": 0.0, "ci": [0.0, 0.0], "n": 0}
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), (RESAMPLES, len(values)))].mean(axis=1)
    tail = (1 - CONFIDENCE) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return {"value": float(values.mean()), "ci": [float(low), float(high)], "n": len(values)}


def margins(per_session: dict[str, np.ndarray], baselines: Sequence[str], seed: int) -> dict:
    """RL's margin over each baseline: mean paired difference with its bootstrap interval, and
    the ratio of the two means."""
    rl = per_session["rl"]
    out = {}
    for name in baselines:
        other = per_session[name]
        entry = _interval(rl - other, seed)
        base = float(other.mean()) if len(other) else 0.0
        entry["ratio"] = float(rl.mean() / base) if base > 0 else None
        out[name] = entry
    return out
